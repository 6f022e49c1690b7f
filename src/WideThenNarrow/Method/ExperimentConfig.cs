using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Models;

namespace WideThenNarrow.Method;

/// <summary>
/// One experiment file (<c>wtn run EXPERIMENT.yaml</c>): the data, the three networks, and the stages and
/// baselines to run, each a named section with its own trainer settings (optimiser, schedule, budget). A
/// section left out (or set to null) is not run. Keys are strict (see <see cref="ConfigLoader"/>); any key can be
/// overridden with <c>--set section.key=value</c>. A <c>train:</c> section written in the file starts from the
/// engine's trainer defaults; the defaults below apply when the section is absent.
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

    public ExperimentData Data { get; init; } = new();
    public ExperimentModels Models { get; init; } = new();

    /// <summary>Stage 1: the wide network, trained with the standard recipe or imported.</summary>
    public WideStageConfig? Wide { get; init; }
    /// <summary>Stage 2: layerwise imitation of the wide network by the thin one.</summary>
    public ImitationStageConfig? Imitation { get; init; }
    /// <summary>Stage 3: fine-tuning the imitation-initialised thin network, optionally distilling.</summary>
    public DistillStageConfig? Finetune { get; init; }

    /// <summary>Baseline: the thin network from scratch, standard recipe.</summary>
    public StandardStageConfig? Standard { get; init; }
    /// <summary>Baseline: the thin network from scratch with a longer budget.</summary>
    public StandardStageConfig? StandardLong { get; init; }
    /// <summary>
    /// Baseline: the thin network from scratch, standard recipe, for the epochs whose training compute matches stages
    /// 2 + 3 together (multiply-accumulates; the section's own epochs and steps are replaced by that number).
    /// </summary>
    public StandardStageConfig? StandardMatched { get; init; }
    /// <summary>Ablation: stage 3 with the fine-tuning recipe but no distillation (a = 0), to separate imitation's share from KD's.</summary>
    public DerivedStageConfig? FinetuneNoKd { get; init; }
    /// <summary>Baseline: the thin network from scratch with stage 3's loss (Hinton et al. 2015).</summary>
    public DistillStageConfig? Kd { get; init; }
    /// <summary>Ablation: kd from scratch under stage 3's exact recipe (finetune's section), so only the warm start differs from the method.</summary>
    public DerivedStageConfig? KdFinetuneRecipe { get; init; }
    /// <summary>Baseline: FitNets hint stage, then kd (Romero et al. 2015).</summary>
    public FitNetsStageConfig? Fitnets { get; init; }
    /// <summary>Baseline: the deeper thin network (models.deeper), standard recipe.</summary>
    public StandardStageConfig? Deeper { get; init; }

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
    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Seeds), Seeds, 1, 10_000);
        at.InRange(nameof(MaxSteps), MaxSteps, 0, long.MaxValue, "0 = no cap");
        var data = Data.Text is null ? $"data.dataset {Data.Dataset}" : "data.text (masked-LM text)";
        // An imported HuggingFace BERT's spec comes from its config.json (HuggingFaceImport.Resolve).
        bool wideFromFolder = Wide?.Import is { } import && HuggingFaceBert.IsFolder(import);
        foreach (var (key, spec) in new[] { ("thin", Models.Thin), ("wide", wideFromFolder ? null : Models.Wide), ("deeper", Models.Deeper) })
            if (spec is not null && ModelData.Mismatch(spec.Name, Data.Text is not null, data) is { } problem)
                throw at.Nested(nameof(Models)).Nested(key).Error(nameof(ModelSpec.Name), problem);
    }
}

/// <summary>The dataset every stage of the experiment trains and tests on: images, or (with <see cref="Text"/>) masked-LM text.</summary>
public sealed record ExperimentData : IValidatedConfig
{
    /// <summary>
    /// BERT track: masked-LM pretraining on SOTU + Brown + IMDB-train text (or data.text.corpus) with these settings (vocabulary, lengths,
    /// batch sizes, subsets); the image keys below are then unused.
    /// </summary>
    public WideThenNarrow.Data.Text.TextDataOptions? Text { get; init; }
    /// <summary>fashion-mnist, cifar-10, cifar-100, cifar-100-coarse, or by path a folder of IDX files or with train/ and test/.</summary>
    public string Dataset { get; init; } = "fashion-mnist";
    public int BatchSize { get; init; } = 128;
    /// <summary>0 = the training batch size.</summary>
    public int EvalBatchSize { get; init; } = 256;
    /// <summary>Random crop after zero-padding this many pixels (0 = off).</summary>
    public int CropPadding { get; init; } = 2;
    public bool HorizontalFlip { get; init; } = true;
    /// <summary>Stratified subset: the first N training examples of each class (0 = all).</summary>
    public int TrainPerClass { get; init; }
    /// <summary>Stratified subset of the test split (0 = all).</summary>
    public int TestPerClass { get; init; }
    /// <summary>
    /// Validation split carved from the training split before <see cref="TrainPerClass"/> applies: this fraction of each
    /// class, chosen by <see cref="ValSeed"/> (the same for every seed and arm). Every in-run evaluation and every "best"
    /// is on it; the test split is scored once per finished network. An image folder's own val/ replaces it.
    /// </summary>
    public double ValFraction { get; init; } = 0.1;
    /// <summary>At most this many validation examples per class (0 = no cap).</summary>
    public int ValPerClass { get; init; }
    public long ValSeed { get; init; }
    /// <summary>An image folder's images resized to this many pixels square as they are read (0 = as they are).</summary>
    public int Resize { get; init; }

    public ValidationSplit ValidationSplit() => new(ValFraction, ValPerClass, ValSeed);

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(BatchSize), BatchSize, 1, int.MaxValue);
        at.InRange(nameof(EvalBatchSize), EvalBatchSize, 0, int.MaxValue, "0 = the training batch size");
        at.InRange(nameof(CropPadding), CropPadding, 0, ModelConfig.MaxImageSize);
        at.InRange(nameof(TrainPerClass), TrainPerClass, 0, int.MaxValue, "0 = all");
        at.InRange(nameof(TestPerClass), TestPerClass, 0, int.MaxValue, "0 = all");
    }
}

/// <summary>The networks: <c>thin</c> (S), <c>wide</c> (B, a widening of S) and optionally <c>deeper</c>.</summary>
public sealed record ExperimentModels
{
    public ModelSpec Thin { get; init; } = new();
    public ModelSpec Wide { get; init; } = new() { Widen = "inner=4" };
    public ModelSpec? Deeper { get; init; }

    /// <summary>The spec of model <paramref name="key"/>: thin, wide or deeper.</summary>
    public ModelSpec Spec(string key) => key switch
    {
        "thin" => Thin,
        "wide" => Wide,
        "deeper" => Deeper ?? throw new WtnException("the deeper stage needs models.deeper"),
        _ => throw new ArgumentOutOfRangeException(nameof(key), key, "thin, wide or deeper"),
    };
}

/// <summary>A model of the zoo as an experiment file names it (see <see cref="ModelConfig"/> for the meaning).</summary>
public sealed record ModelSpec : IValidatedConfig
{
    public string Name { get; init; } = "cifar-resnet20";
    /// <summary>none, inner=K or full=K.</summary>
    public string Widen { get; init; } = "none";
    /// <summary>0 = the dataset's number of classes.</summary>
    public int Classes { get; init; }
    /// <summary>0 = the dataset's channels.</summary>
    public int InputChannels { get; init; }
    public bool ProjectionShortcuts { get; init; }
    /// <summary>CIFAR ResNets: stage widths w, 2w, 4w (default 16, He et al.'s).</summary>
    public int BaseWidth { get; init; } = ModelConfig.DefaultBaseWidth;
    public int Width { get; init; } = 256;
    public int Depth { get; init; } = 8;
    public bool Residual { get; init; }
    /// <summary>BERT: override the preset's sizes (plain "bert" needs layers, hidden and heads).</summary>
    public int? Layers { get; init; }
    public int? Hidden { get; init; }
    public int? Heads { get; init; }
    /// <summary>BERT feed-forward size (default 4 x hidden).</summary>
    public int? Intermediate { get; init; }
    /// <summary>BERT position and token-type table sizes (default: the data's longest sequence, and 2).</summary>
    public int? MaxPositions { get; init; }
    public int? TypeVocab { get; init; }

    public ModelConfig ToModelConfig(int datasetClasses, int datasetChannels, int imageSize, string key) => new()
    {
        Name = Name,
        Widen = Widening.Parse(Widen, $"models.{key}.widen"),
        Classes = Classes > 0 ? Classes : datasetClasses,
        InputChannels = InputChannels > 0 ? InputChannels : datasetChannels,
        ImageSize = imageSize,
        InputDim = (InputChannels > 0 ? InputChannels : datasetChannels) * imageSize * imageSize,
        ProjectionShortcuts = ProjectionShortcuts,
        BaseWidth = BaseWidth,
        Width = Width,
        Depth = Depth,
        Residual = Residual,
        Layers = Layers,
        Hidden = Hidden,
        Heads = Heads,
        Intermediate = Intermediate,
        MaxPositions = MaxPositions ?? new ModelConfig { Name = Name }.MaxPositions,
        TypeVocab = TypeVocab ?? new ModelConfig { Name = Name }.TypeVocab,
    };

    /// <summary>The bounds of <see cref="ModelConfig"/>; 0 stands for the dataset's classes and channels, known later.</summary>
    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Classes), Classes, 0, ModelConfig.MaxClasses, "0 = the dataset's");
        at.InRange(nameof(InputChannels), InputChannels, 0, ModelConfig.MaxChannels, "0 = the dataset's");
        ToModelConfig(Math.Max(1, Classes), Math.Max(1, InputChannels), 1, at.Path[(at.Path.LastIndexOf('.') + 1)..]).Validate(at);
    }
}

public sealed record StandardStageConfig
{
    public TrainerSettings Train { get; init; } = new();
}

/// <summary>A stage whose recipe is another stage's (written as an empty section, e.g. <c>finetune_no_kd: {}</c>).</summary>
public sealed record DerivedStageConfig;

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
    public TrainerSettings Train { get; init; } = new()
    {
        Optimizer = new OptimizerConfig { Name = OptimizerKind.Sgd, Lr = 0.05, Momentum = 0.9, WeightDecay = 0 },
        Schedule = new ScheduleConfig { Name = ScheduleKind.Cosine },
        Epochs = 1,
        Eval = new EvalConfig { EveryEpochs = 0 },
    };

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(AttentionWeight), AttentionWeight, 0, double.PositiveInfinity, meaning: "0 = off");
        at.InRange(nameof(EarlierBlocksLrFactor), EarlierBlocksLrFactor, 0, double.PositiveInfinity, meaning: "0 = frozen");
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
    public TrainerSettings Hint { get; init; } = new() { Epochs = 1, Optimizer = new OptimizerConfig { WeightDecay = 0, Lr = 0.05 } };
    public double Alpha { get; init; } = 0.5;
    public double Temperature { get; init; } = 4;
    public TrainerSettings Train { get; init; } = new();

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Alpha), Alpha, 0, 1);
        at.Positive(nameof(Temperature), Temperature);
    }
}

/// <summary>Fine-tuning of pretrained encoders on the downstream task (IMDB or data.text.train_file), the same recipe for every encoder.</summary>
public sealed record DownstreamStageConfig
{
    public TrainerSettings Train { get; init; } = new()
    {
        Optimizer = new OptimizerConfig { Name = OptimizerKind.AdamW, Lr = 5e-5, WeightDecay = 0.01, DecayNormsAndBiases = false },
        Schedule = new ScheduleConfig { Name = ScheduleKind.Linear, WarmupEpochs = 0.1, WarmupStartFactor = 0 },
        Epochs = 2,
    };
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
    public TrainerSettings Wide { get; init; } = new()
    {
        Optimizer = new OptimizerConfig { Name = OptimizerKind.AdamW, Lr = 1e-3, WeightDecay = 0 },
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

    static TrainerSettings MatchingDefaults => new()
    {
        Optimizer = new OptimizerConfig { Name = OptimizerKind.AdamW, Lr = 1e-3, WeightDecay = 0 },
        Schedule = new ScheduleConfig { Name = ScheduleKind.Cosine },
    };
}
