using System.Globalization;
using WideThenNarrow.Config;
using WideThenNarrow.Models;

namespace WideThenNarrow.Method.Stages;

/// <summary>One stage of one seed as the scheduler sees it: the stages it needs, and how to build its model and run it.</summary>
internal sealed record PlannedStage(
    StageContext Ctx,
    string Name,
    IReadOnlyList<string> Needs,
    double Cost,
    Func<(StagedModel Model, Func<StageSummary> Run)> Prepare
)
{
    /// <summary>What determines its result (<see cref="StageFingerprint"/>).</summary>
    public required SortedDictionary<string, string> Settings { get; init; }
    public string Fingerprint => StageFingerprint.Hash(Settings);

    /// <summary>Where the finished network is tested: the downstream task's context, else the seed's.</summary>
    public Func<StageContext>? TestIn { get; init; }

    /// <summary>
    /// The stage tests its own networks and returns their numbers in its summary (a downstream stage in units: only the
    /// chosen learning rate's networks see the test split); the scheduler then does not test the stage's model again.
    /// </summary>
    public bool TestsItself { get; init; }

    /// <summary>The networks its train run runs, e.g. "thin+wide": stages of one kind train at one pace per unit of work.</summary>
    public required string Kind { get; init; }

    /// <summary>Estimated work of the stage's last training run, the one named "train" (null: it has none).</summary>
    public double? TrainCost { get; init; } = Cost;

    /// <summary>
    /// Units that can train as separate processes, each on its own (a Slurm job array's tasks), before the stage
    /// itself assembles them: stage 2 with teacher input. 0: the stage runs as one.
    /// </summary>
    public int Units { get; init; }

    /// <summary>How to build the model for unit k of <see cref="Units"/> and train that unit alone.</summary>
    public Func<int, (StagedModel Model, Func<BlockSummary> Run)>? PrepareUnit { get; init; }
    public string Dir => Ctx.StageDir(Name);
    public bool Done => StageSummary.IsDone(Dir);
    public bool Ready => Needs.All(n => StageSummary.IsDone(Ctx.StageDir(n)));

    public override string ToString() => $"seed {Ctx.Seed}: {Name}";
}

/// <summary>
/// One seed's stages in declared order, planned by the <see cref="StageCatalogue"/>, and what the stages share while
/// planned: their settings, the model sizes behind the cost estimates, and the networks they start from. What a
/// stage starts from (the wide network, the imitation stage's thin network, a pretrained encoder) is loaded from the
/// finished stage's weights, so any process can run any stage once its prerequisites are done, with the same result.
/// Prerequisites are loaded before the stage's own model is built: the model's seeded initialisation is then the last
/// draw from the global generator before the stage, whichever process runs it.
/// </summary>
internal sealed class SeedPlan
{
    readonly List<PlannedStage> planned = [];
    readonly Dictionary<string, ModelSummary> sizes = [];
    StagedModel? wide;
    StageContext? downstream;

    SeedPlan(StageContext ctx, CancellationToken cancel)
    {
        Ctx = ctx;
        Cancel = cancel;
    }

    public StageContext Ctx { get; }
    public ExperimentConfig Config => Ctx.Config;
    public CancellationToken Cancel { get; }

    /// <summary>
    /// Every declared stage of the seed, in order. <paramref name="importHash"/> gives the SHA-256 of wide.import,
    /// which stands for the imported network in the settings of the stages starting from it.
    /// </summary>
    public static List<PlannedStage> Of(StageContext ctx, CancellationToken cancel, Func<string> importHash)
    {
        var p = new SeedPlan(ctx, cancel);
        if (ctx.Config.Wide?.Import is not null)
            ctx.StageSettings["wide"] = new SortedDictionary<string, string>(
                ConfigLoader.Flatten(ctx.Config.Models.Wide, "models.wide"),
                StringComparer.Ordinal
            )
            {
                ["wide.import.sha256"] = importHash(),
            };
        foreach (var stage in StageCatalogue.Declared(ctx.Config))
            p.planned.Add(stage.Plan(p));
        return p.planned;
    }

    /// <summary>A stage planned before this one (the plan follows the catalogue's order).</summary>
    public PlannedStage Planned(string name) => planned.Single(s => s.Name == name);

    /// <summary>
    /// The stage's entry: <paramref name="section"/> under <paramref name="sectionKey"/> in its settings, with the data,
    /// its networks' specs, the step cap, the seed, and the settings of the stages it starts from.
    /// </summary>
    public PlannedStage Add(
        ExperimentStage stage,
        string sectionKey,
        object section,
        string kind,
        double cost,
        Func<(StagedModel, Func<StageSummary>)> prepare
    )
    {
        var settings = ConfigLoader.Flatten(Config.Data, "data");
        settings["max_steps"] = Config.MaxSteps.ToString(CultureInfo.InvariantCulture);
        settings["seed"] = Ctx.Seed.ToString(CultureInfo.InvariantCulture);
        foreach (var (k, v) in ConfigLoader.Flatten(section, sectionKey))
            settings[k] = v;
        foreach (var m in stage.Networks)
        foreach (var (k, v) in ConfigLoader.Flatten(Config.Models.Spec(m), $"models.{m}"))
            settings[k] = v;
        // The user's text files by content: editing one changes every stage's settings.
        if (Ctx.Dataset is MaskedLmExperimentDataset { Data.UserFilesHash: { } files })
            settings["data.text.files.sha256"] = files;
        foreach (var f in stage.StartsFrom)
        foreach (var (k, v) in Ctx.StageSettings[f])
            settings[k] = v;
        Ctx.StageSettings[stage.Name] = settings;
        bool imported = Config.Wide?.Import is not null;
        var needs = stage.StartsFrom.Where(f => !(f == "wide" && imported)).ToList();
        return new PlannedStage(Ctx, stage.Name, needs, cost, prepare) { Kind = kind, Settings = settings };
    }

    /// <summary>The wide network: imported, or the finished stage 1's.</summary>
    public StagedModel Wide()
    {
        if (wide is not null)
            return wide;
        if (Config.Wide!.Import is not { } file)
            return wide = Load("wide", "wide");
        wide = Ctx.Build("wide");
        if (HuggingFaceBert.IsFolder(file))
            foreach (var note in HuggingFaceBert.Load(wide, file))
                Ctx.Log?.Report($"wide.import: {note}");
        else
            Weights.Load(wide, file); // torchvision / HuggingFace names, .pth/.pt/.bin or .safetensors, strict
        return wide;
    }

    /// <summary>A fresh <paramref name="key"/> model with the final weights of the finished <paramref name="stage"/>.</summary>
    public StagedModel Load(string stage, string key)
    {
        var dir = Ctx.StageDir(stage);
        var summary = StageSummary.TryLoad(dir) ?? throw new WtnException($"{dir}: stage {stage} is not done");
        var m = Ctx.Build(key);
        try
        {
            summary.LoadWeights(dir, m);
        }
        catch
        {
            m.Dispose();
            throw;
        }
        return m;
    }

    /// <summary>Text experiments: the seed's context on the downstream task's data (sharing the stages' settings).</summary>
    public StageContext Downstream() =>
        downstream ??= new StageContext(
            Config,
            Ctx.Seed,
            Ctx.SeedDir,
            Ctx.Device,
            ((MaskedLmExperimentDataset)Ctx.Dataset).Downstream(),
            Ctx.Progress,
            Ctx.Log
        )
        {
            StageSettings = Ctx.StageSettings,
        };

    /// <summary>The size (multiply-accumulates, blocks) of network <paramref name="key"/>.</summary>
    public ModelSummary Size(string key)
    {
        if (sizes.TryGetValue(key, out var m))
            return m;
        return sizes[key] = ModelSummary.Of(Ctx.Dataset.ModelConfig(Config.Models.Spec(key), key));
    }

    /// <summary>Training steps of a run with settings <paramref name="t"/> (the step cap applied).</summary>
    public double Steps(TrainerSettings t, StageContext? on = null) =>
        (on ?? Ctx).Settings(t) is var x && x.Steps > 0
            ? x.Steps
            : (double)x.Epochs * (on ?? Ctx).TrainData.BatchesPerEpoch;

    /// <summary>Estimated work: training steps x (3 x the trained network's MACs + the teacher's forward MACs), per example.</summary>
    public double Cost(TrainerSettings t, string trained, string? teacher = null, StageContext? on = null) =>
        Steps(t, on) * (3.0 * Size(trained).Macs + (teacher is null ? 0 : Size(teacher).Macs));
}
