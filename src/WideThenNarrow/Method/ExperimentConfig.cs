using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Models;

namespace WideThenNarrow.Method;

/// <summary>
/// One experiment file (<c>wtn run EXPERIMENT.yaml</c>): the data, the three networks, and the stages and
/// baselines to run, each a named section with its own trainer settings (optimiser, schedule, budget). A
/// section left out (or set to null) is not run. Keys are strict (see <see cref="ConfigLoader"/>); any key can be
/// overridden with <c>--set section.key=value</c>. A <c>train:</c> section written in the file starts from the
/// engine's trainer defaults; the defaults below apply when the section is absent. The method's sections (and the
/// standard baseline's) are properties; every other baseline's section is declared by its stage and held in
/// <see cref="Baselines"/>, with the same YAML.
/// </summary>
public sealed record ExperimentConfig : IValidatedConfig
{
    /// <summary>Folder name under runs/.</summary>
    public string Name { get; init; } = "experiment";

    /// <summary>Seeds to run when --seeds is not given; seed i uses the value SeedBase + i.</summary>
    public int Seeds { get; init; } = 1;
    public long SeedBase { get; init; }

    /// <summary>When positive, every trainer run stops after at most this many steps (smoke runs).</summary>
    public long MaxSteps { get; init; }

    public DataConfig Data { get; init; } = new();
    public ExperimentModels Models { get; init; } = new();

    /// <summary>Stage 1: the wide network, trained with the standard recipe or imported.</summary>
    public WideStageConfig? Wide { get; init; }

    /// <summary>Stage 2: layerwise imitation of the wide network by the thin one.</summary>
    public ImitationStageConfig? Imitation { get; init; }

    /// <summary>Stage 3: fine-tuning the imitation-initialised thin network, optionally distilling.</summary>
    public DistillStageConfig? Finetune { get; init; }

    /// <summary>Baseline: the thin network from scratch, standard recipe.</summary>
    public StandardStageConfig? Standard { get; init; }

    /// <summary>
    /// The baselines' and ablations' sections (standard_long, standard_matched, finetune_no_kd, kd, kd_finetune_recipe,
    /// fitnets, deeper, ...): each a top-level key of the experiment file named as its stage, read as the record its
    /// stage declares (<see cref="Stages.BaselineStage{TSection}"/>), keyed by that name. A section left out or set to
    /// null has no entry. The keys are the <see cref="Stages.StageCatalogue"/>'s, so a new baseline needs no property here.
    /// </summary>
    [Sections(typeof(Stages.StageCatalogue), nameof(Stages.StageCatalogue.BaselineSections))]
    public IReadOnlyDictionary<string, object> Baselines { get; init; } = new Dictionary<string, object>();

    /// <summary>
    /// Text experiments (data.text): after pretraining, every finished thin/deeper encoder is fine-tuned on IMDB
    /// sentiment (or data.text.train_file) with this recipe and its test accuracy reported. Left out, nothing is fine-tuned.
    /// </summary>
    public DownstreamStageConfig? Downstream { get; init; }

    public ReportConfig Report { get; init; } = new();

    /// <summary>
    /// The depth experiment instead of the stages above: thin (models.thin) and wide (models.wide) MLPs at each depth,
    /// the thin one obtained by layerwise imitation and end to end (<see cref="Method.DepthStudy"/>).
    /// </summary>
    public DepthStudyConfig? DepthStudy { get; init; }

    /// <summary>
    /// <c>wtn demo</c>'s experiment: experiments/demo.yaml as built into the library (so it runs from any folder), with
    /// <paramref name="overrides"/> (<c>key=value</c>) applied.
    /// </summary>
    public static ExperimentConfig Demo(IEnumerable<string>? overrides = null)
    {
        using var stream = typeof(ExperimentConfig).Assembly.GetManifestResourceStream("WideThenNarrow.demo.yaml")
            ?? throw new InvalidOperationException("experiments/demo.yaml is not embedded in the library");
        using var reader = new StreamReader(stream);
        return ConfigLoader.Parse<ExperimentConfig>(reader.ReadToEnd(), "wtn demo (experiments/demo.yaml)", overrides);
    }

    /// <summary>Baseline section <paramref name="key"/> (a stage's name) as <typeparamref name="T"/>, or null when left out.</summary>
    public T? Baseline<T>(string key)
        where T : class =>
        !Baselines.TryGetValue(key, out var section)
            ? null
            : section as T
                ?? throw new InvalidOperationException(
                    $"baseline section {key} is a {section.GetType().Name}, not the {typeof(T).Name} its stage reads"
                );

    /// <summary>This config with baseline section <paramref name="key"/> set to <paramref name="section"/> (null: left out).</summary>
    public ExperimentConfig WithBaseline(string key, object? section)
    {
        var baselines = new Dictionary<string, object>(Baselines);
        if (section is null)
            baselines.Remove(key);
        else
            baselines[key] = section;
        return this with { Baselines = baselines };
    }

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Seeds), Seeds, 1, 10_000);
        at.InRange(nameof(MaxSteps), MaxSteps, 0, long.MaxValue, "0 = no cap");
        var data = Data.Text is null ? $"data.dataset {Data.Dataset}" : "data.text (masked-LM text)";
        // An imported HuggingFace BERT's spec comes from its config.json (HuggingFaceImport.Resolve).
        bool wideFromFolder = Wide?.Import is { } import && HuggingFaceBert.IsFolder(import);
        foreach (
            var (key, spec) in new[]
            {
                ("thin", Models.Thin),
                ("wide", wideFromFolder ? null : Models.Wide),
                ("deeper", Models.Deeper),
            }
        )
            if (spec is not null && ModelData.Mismatch(spec.Name, Data.Text is not null, data) is { } problem)
                throw at.Nested(nameof(Models)).Nested(key).Error(nameof(ModelSpec.Name), problem);
    }
}

/// <summary>The networks: <c>thin</c> (S), <c>wide</c> (B, a widening of S) and optionally <c>deeper</c>.</summary>
public sealed record ExperimentModels
{
    public ModelSpec Thin { get; init; } = new();
    public ModelSpec Wide { get; init; } = new() { Widen = "inner=4" };
    public ModelSpec? Deeper { get; init; }

    /// <summary>The spec of model <paramref name="key"/>: thin, wide or deeper.</summary>
    public ModelSpec Spec(string key) =>
        key switch
        {
            "thin" => Thin,
            "wide" => Wide,
            "deeper" => Deeper ?? throw new WtnException("the deeper stage needs models.deeper"),
            _ => throw new ArgumentOutOfRangeException(nameof(key), key, "thin, wide or deeper"),
        };
}

public sealed record StandardStageConfig
{
    public TrainerSettings Train { get; init; } = new();
}

/// <summary>
/// A stage whose recipe is another stage's (written as an empty section, e.g. <c>finetune_no_kd: {}</c>). <see cref="Lr"/>
/// replaces only that recipe's learning rate, so an arm can run at the rate chosen for it on validation
/// (<c>finetune_no_kd: {lr: 0.1}</c>); the stage's settings are then those of a run whose recipe has that rate, and
/// <c>--reuse-from</c> finds it there.
/// </summary>
public sealed record DerivedStageConfig : IValidatedConfig
{
    /// <summary>The learning rate instead of the shared recipe's; null (the default) keeps the recipe's.</summary>
    public double? Lr { get; init; }

    public void Validate(ConfigKeys at)
    {
        if (Lr is { } lr)
            at.Positive(nameof(Lr), lr);
    }

    /// <summary>The shared recipe with this arm's learning rate.</summary>
    public DistillStageConfig Apply(DistillStageConfig recipe) =>
        Lr is { } lr
            ? recipe with
            {
                Train = recipe.Train with { Optimizer = recipe.Train.Optimizer with { Lr = lr } },
            }
            : recipe;
}

public sealed record WideStageConfig
{
    /// <summary>
    /// A trained wide network to import instead of training: a .pth/.pt state_dict or .safetensors file of models.wide,
    /// or a HuggingFace BERT folder (config.json, model.safetensors or pytorch_model.bin, vocab.txt), whose config.json
    /// then gives models.wide and whose vocab.txt the text's vocabulary (<see cref="Models.HuggingFaceBert"/>).
    /// </summary>
    public string? Import { get; init; }
    public TrainerSettings Train { get; init; } = new();
}

/// <summary>Stage 2: the imitation options (inherited, so their keys sit in this section) plus the stage's own settings.</summary>
public sealed record ImitationStageConfig : ImitationOptions, IValidatedConfig
{
    /// <summary>Copy the wide network's head into the thin one when the shapes allow (inner widening).</summary>
    public bool CopyHead { get; init; } = true;

    /// <summary>
    /// Disk cache of the wide network's activations, at most this many MiB (0 = recompute them every step). Every
    /// block's run sees the same batches, so the wide network then runs once per batch instead of once per batch and block.
    /// </summary>
    public int WideCacheMb { get; init; }

    /// <summary>
    /// After the last unit, recompute the thin network's batch-norm statistics from up to this many training
    /// batches (forward only; 0 = keep the statistics stage 2 left). No effect on networks without batch norm.
    /// </summary>
    public int BnRecalibrationBatches { get; init; } = 100;

    /// <summary>Budget, optimiser and schedule of every block's run (SGD momentum 0.9, no weight decay, cosine to 0).</summary>
    public TrainerSettings Train { get; init; } =
        new()
        {
            Optimizer = new OptimizerConfig
            {
                Name = OptimizerKind.Sgd,
                Lr = 0.05,
                Momentum = 0.9,
                WeightDecay = 0,
            },
            Schedule = new ScheduleConfig { Name = ScheduleKind.Cosine },
            Epochs = 1,
            Eval = new EvalConfig { EveryEpochs = 0 },
        };

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(AttentionWeight), AttentionWeight, 0, double.PositiveInfinity, meaning: "0 = off");
        at.InRange(
            nameof(EarlierBlocksLrFactor),
            EarlierBlocksLrFactor,
            0,
            double.PositiveInfinity,
            meaning: "0 = frozen"
        );
        at.InRange(nameof(WideCacheMb), WideCacheMb, 0, int.MaxValue, "0 = no cache");
        at.InRange(nameof(BnRecalibrationBatches), BnRecalibrationBatches, 0, int.MaxValue, "0 = keep the statistics");
    }
}

/// <summary>Loss <c>(1 - a) task + a T^2 KL(softmax(z_B/T) || softmax(z_S/T))</c>.</summary>
public sealed record DistillStageConfig : IValidatedConfig
{
    public double Alpha { get; init; } = 0.5;
    public double Temperature { get; init; } = 4;
    public TrainerSettings Train { get; init; } = new();

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Alpha), Alpha, 0, 1);
        at.Positive(nameof(Temperature), Temperature);
    }
}

public sealed record FitNetsStageConfig : IValidatedConfig
{
    /// <summary>The hint stage: thin blocks up to the middle point plus the regressor.</summary>
    public TrainerSettings Hint { get; init; } =
        new()
        {
            Epochs = 1,
            Optimizer = new OptimizerConfig { WeightDecay = 0, Lr = 0.05 },
        };
    public double Alpha { get; init; } = 0.5;
    public double Temperature { get; init; } = 4;
    public TrainerSettings Train { get; init; } = new();

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Alpha), Alpha, 0, 1);
        at.Positive(nameof(Temperature), Temperature);
    }
}

/// <summary>
/// Fine-tuning of pretrained encoders on the downstream task (IMDB or data.text.train_file), the same recipe for every
/// encoder. With <see cref="Seeds"/> above 1 or a learning-rate grid (<see cref="Lrs"/>), each encoder is fine-tuned
/// several times (<see cref="Stages.DownstreamStage"/>): every lr of the grid on fine-tuning seed 0, the lr with the
/// best validation top-1 chosen, fine-tuning seeds 1 to Seeds - 1 at that lr; only the chosen lr's networks are tested.
/// </summary>
public sealed record DownstreamStageConfig : IValidatedConfig
{
    public TrainerSettings Train { get; init; } =
        new()
        {
            Optimizer = new OptimizerConfig
            {
                Name = OptimizerKind.AdamW,
                Lr = 5e-5,
                WeightDecay = 0.01,
                DecayNormsAndBiases = false,
            },
            Schedule = new ScheduleConfig
            {
                Name = ScheduleKind.Linear,
                WarmupEpochs = 0.1,
                WarmupStartFactor = 0,
            },
            Epochs = 2,
        };

    /// <summary>
    /// Fine-tuning seeds per pretrained encoder (1: one fine-tuning, seeded by the experiment seed, as before the key
    /// existed). Fine-tuning seed k &gt; 0 initialises the pooler and classifier and shuffles the data with its own
    /// generator seed (<see cref="Stages.DownstreamStage.FineTuneSeed"/>).
    /// </summary>
    [AddedKey]
    public int Seeds { get; init; } = 1;

    /// <summary>
    /// Learning rates to choose among on validation (empty: train.optimizer.lr alone, as before the key existed; given,
    /// they replace it). Each is fine-tuned on fine-tuning seed 0; the best validation top-1 (the best epoch's; ties:
    /// the smaller lr) is chosen, and only its networks see the test split.
    /// </summary>
    [AddedKey]
    public List<double> Lrs { get; init; } = [];

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Seeds), Seeds, 1, 1000, "fine-tunings of each pretrained encoder, each its own seed");
        foreach (var lr in Lrs)
            if (!(double.IsFinite(lr) && lr > 0))
                throw at.Error(
                    nameof(Lrs),
                    $"must list positive learning rates (e.g. [1.0e-4, 2.0e-4, 5.0e-4]), got {lr.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}"
                );
        if (Lrs.GroupBy(lr => lr).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw at.Error(
                nameof(Lrs),
                $"lists {twice.Key.ToString("R", System.Globalization.CultureInfo.InvariantCulture)} twice; give each learning rate once"
            );
    }
}

public sealed record ReportConfig : IValidatedConfig
{
    /// <summary>Timed forward passes per batch size for the latency columns (after 3 warm-up passes).</summary>
    public int LatencyRepeats { get; init; } = 20;

    public void Validate(ConfigKeys at) => at.InRange(nameof(LatencyRepeats), LatencyRepeats, 1, 100_000);
}

/// <summary>
/// The paper's depth claim as an experiment: per depth, the wide network (standard recipe), then the thin one by layerwise
/// imitation (each input mode) and end to end for the same total steps, and the discrepancy between them at every point.
/// </summary>
public sealed record DepthStudyConfig
{
    /// <summary>Blocks of both MLPs (the input layer plus depth - 1 residual blocks).</summary>
    public List<int> Depths { get; init; } = [2, 4, 8, 16, 32];

    /// <summary>Imitation input modes to run: teacher (the theory's setting) and student.</summary>
    public List<ImitationInput> Inputs { get; init; } = [ImitationInput.Teacher, ImitationInput.Student];

    /// <summary>The wide network's standard recipe.</summary>
    public TrainerSettings Wide { get; init; } =
        new()
        {
            Optimizer = new OptimizerConfig
            {
                Name = OptimizerKind.AdamW,
                Lr = 1e-3,
                WeightDecay = 0,
            },
            Schedule = new ScheduleConfig { Name = ScheduleKind.Cosine },
            Epochs = 5,
        };

    /// <summary>Every block's imitation run: its optimiser, schedule and budget (steps, which must be positive).</summary>
    public TrainerSettings Imitation { get; init; } = MatchingDefaults with { Steps = 200 };

    /// <summary>
    /// End-to-end matching of the top point: its optimiser and schedule; its budget is depth x imitation.steps (the
    /// same total), so steps stays 0 here.
    /// </summary>
    public TrainerSettings EndToEnd { get; init; } = MatchingDefaults;

    /// <summary>Validation batches the discrepancy is measured on (0 = the whole validation split).</summary>
    public int EvalBatches { get; init; }

    static TrainerSettings MatchingDefaults =>
        new()
        {
            Optimizer = new OptimizerConfig
            {
                Name = OptimizerKind.AdamW,
                Lr = 1e-3,
                WeightDecay = 0,
            },
            Schedule = new ScheduleConfig { Name = ScheduleKind.Cosine },
        };
}
