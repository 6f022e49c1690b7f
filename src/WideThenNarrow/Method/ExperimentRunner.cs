using WideThenNarrow.Data;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Models;
using WideThenNarrow.Reporting;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// <c>wtn run</c>: every stage and baseline the experiment declares, for every seed, in
/// runs/EXPERIMENT/seed-S/STAGE/. A stage with stage.json is done and skipped; an interrupted one resumes from its
/// checkpoints. Then results.json, report.md and the plots are written to runs/EXPERIMENT/.
/// </summary>
public sealed class ExperimentRunner
{
    readonly ExperimentConfig config;
    readonly string runsRoot;
    readonly string dataDir;
    readonly Device device;
    readonly IProgress<TrainingProgress>? progress;
    readonly IProgress<string>? log;

    public ExperimentRunner(ExperimentConfig config, string runsRoot, string dataDir, Device device,
        IProgress<TrainingProgress>? progress = null, IProgress<string>? log = null)
    {
        if (string.IsNullOrWhiteSpace(config.Name) || config.Name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            throw new WtnException($"name: '{config.Name}' is not a valid folder name");
        if (config.Seeds < 1) throw new WtnException($"seeds must be at least 1, got {config.Seeds}");
        bool needsWide = config.Imitation is not null || config.Kd is not null || config.Fitnets is not null || config.Finetune is { Alpha: > 0 };
        if (needsWide && config.Wide is null) throw new WtnException("imitation, kd and fitnets need the wide network: add a 'wide' section (train or import)");
        if (config.Imitation is { BnRecalibrationBatches: < 0 } im)
            throw new WtnException($"imitation.bn_recalibration_batches must be 0 (off) or more, got {im.BnRecalibrationBatches}");
        if (config.Finetune is not null && config.Imitation is null) throw new WtnException("finetune continues stage 2: add an 'imitation' section");
        if (config.Downstream is not null && config.Data.Text is null) throw new WtnException("downstream fine-tunes pretrained text encoders: it needs data.text");
        this.config = config;
        this.runsRoot = runsRoot;
        this.dataDir = dataDir;
        this.device = device;
        this.progress = progress;
        this.log = log;
    }

    public string ExperimentDir => Path.Combine(runsRoot, config.Name);

    /// <summary>runs/EXPERIMENT/seed-S: one seed's stage folders.</summary>
    public static string SeedDir(string experimentDir, long seed) => Path.Combine(experimentDir, $"seed-{seed}");

    /// <summary>The "wide" entry of an imported network: not a stage of its own, its weights are the file.</summary>
    static StageSummary Imported(string file) => new() { Stage = "wide", Model = "wide", Weights = Path.GetFullPath(file) };

    /// <summary>
    /// The stages <c>wtn run</c> executes for every seed, in order (downstream_S only for declared pretraining stages S).
    /// An imported wide network is not a stage.
    /// </summary>
    public static IReadOnlyList<string> DeclaredStages(ExperimentConfig c)
    {
        var s = new List<string>();
        if (c.Wide is { Import: null }) s.Add("wide");
        if (c.Imitation is not null)
        {
            s.Add("imitation");
            if (c.Finetune is not null) s.Add("finetune");
        }
        if (c.Standard is not null) s.Add("standard");
        if (c.StandardLong is not null) s.Add("standard_long");
        if (c.Kd is not null) s.Add("kd");
        if (c.Fitnets is not null) s.Add("fitnets");
        if (c.Deeper is not null) s.Add("deeper");
        if (c.Downstream is not null)
            s.AddRange(DownstreamStage.Pretrained.Where(p => s.Contains(p.Stage)).Select(p => DownstreamStage.NameFor(p.Stage)).ToList());
        return s;
    }

    /// <summary>
    /// Runs <paramref name="seeds"/> seeds (default: the config's) and writes the report. The report is also rewritten
    /// after every finished stage, with the stages still to come, so a run of days shows its results as they arrive.
    /// </summary>
    public ExperimentResult Run(int? seeds = null, CancellationToken cancel = default)
    {
        int n = seeds ?? config.Seeds;
        if (n < 1) throw new WtnException($"--seeds must be at least 1, got {n}");
        using var runLock = RunLock.Acquire(ExperimentDir);
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        var perSeed = new List<IReadOnlyDictionary<string, StageSummary>>();
        for (int i = 0; i < n; i++)
        {
            long seed = config.SeedBase + i;
            var seedProgress = n > 1 && progress is not null ? new SeedProgress(seed, progress) : progress;
            var ctx = new StageContext(config, seed, SeedDir(ExperimentDir, seed), device, dataset, seedProgress, log);
            var done = new Dictionary<string, StageSummary>();
            perSeed.Add(done);
            RunSeed(ctx, done, () =>
            {
                var interim = WriteReport(perSeed, n, dataset);
                if (interim.Partial)
                    log?.Report($"interim report: {Path.Combine(ExperimentDir, "report.md")} ({interim.StagesDone} of {interim.Status.Count} stages done)");
            }, cancel);
        }
        return WriteReport(perSeed, n, dataset);
    }

    /// <summary>
    /// <c>wtn report</c>: the report of whatever stages have finished, without running anything (and without the run's
    /// lock: a run may be going on; its files are only read). Costs are measured afresh.
    /// </summary>
    public ExperimentResult Report(int? seeds = null)
    {
        int n = seeds ?? config.Seeds;
        if (n < 1) throw new WtnException($"--seeds must be at least 1, got {n}");
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        var perSeed = new List<IReadOnlyDictionary<string, StageSummary>>();
        for (int i = 0; i < n; i++)
        {
            var seedDir = SeedDir(ExperimentDir, config.SeedBase + i);
            var done = new Dictionary<string, StageSummary>();
            foreach (var stage in DeclaredStages(config))
                if (StageSummary.TryLoad(Path.Combine(seedDir, stage)) is { } s) done[stage] = s;
            if (config.Wide?.Import is { } file) done["wide"] = Imported(file);
            perSeed.Add(done);
        }
        return WriteReport(perSeed, n, dataset);
    }

    IReadOnlyDictionary<string, ModelCostRow>? costs;

    ExperimentResult WriteReport(IReadOnlyList<IReadOnlyDictionary<string, StageSummary>> perSeed, int seeds, IExperimentDataset dataset)
    {
        costs ??= ModelCost.Measure(config, dataset, device, config.Report.LatencyRepeats);
        var result = ExperimentResult.Build(config, perSeed, costs, ExperimentDir, dataset) with
        {
            Seeds = seeds,
            Status = ExperimentStatus.Read(config, ExperimentDir, seeds),
        };
        ExperimentReport.Write(result, ExperimentDir);
        return result;
    }

    void RunSeed(StageContext ctx, Dictionary<string, StageSummary> done, Action stageFinished, CancellationToken cancel)
    {
        StagedModel? wide = null;
        StagedModel Wide() => wide ??= WideModel(ctx, done, stageFinished, cancel);
        void Run(string stage, StagedModel model, Func<StageSummary> run) => Stage(ctx, done, stage, model, run, stageFinished);

        if (config.Wide is not null) Wide();
        if (config.Imitation is { } im)
        {
            var thin = ctx.Build("thin");
            Run("imitation", thin, () => ImitationStage.Run(ctx, thin, Wide(), im, cancel));
            if (config.Finetune is { } ft)
                Run("finetune", thin, () => DistillStage.Run(ctx, "finetune", thin, ft.Alpha > 0 ? Wide() : null, ft, cancel));
        }
        if (config.Standard is { } st)
        {
            var m = ctx.Build("thin");
            Run("standard", m, () => StandardStage.Run(ctx, "standard", "thin", m, st.Train, cancel));
        }
        if (config.StandardLong is { } sl)
        {
            var m = ctx.Build("thin");
            Run("standard_long", m, () => StandardStage.Run(ctx, "standard_long", "thin", m, sl.Train, cancel));
        }
        if (config.Kd is { } kd)
        {
            var m = ctx.Build("thin");
            Run("kd", m, () => DistillStage.Run(ctx, "kd", m, Wide(), kd, cancel));
        }
        if (config.Fitnets is { } fn)
        {
            var m = ctx.Build("thin");
            Run("fitnets", m, () => FitNetsStage.Run(ctx, m, Wide(), fn, cancel));
        }
        if (config.Deeper is { } dp)
        {
            var m = ctx.Build("deeper");
            if (m.BlockCount <= ctx.Build("thin").BlockCount)
                throw new WtnException($"models.deeper ({config.Models.Deeper!.Name}) must have more blocks than models.thin ({config.Models.Thin.Name})");
            Run("deeper", m, () => StandardStage.Run(ctx, "deeper", "deeper", m, dp.Train, cancel));
        }
        if (config.Downstream is { } ds) RunDownstream(ctx, done, ds, stageFinished, cancel);
    }

    /// <summary>
    /// Text experiments: every pretrained thin/deeper network (from its finished stage's weights) fine-tuned on IMDB
    /// as stage downstream_STAGE, with the same recipe for all.
    /// </summary>
    void RunDownstream(StageContext ctx, Dictionary<string, StageSummary> done, DownstreamStageConfig c, Action stageFinished, CancellationToken cancel)
    {
        var text = (MaskedLmExperimentDataset)ctx.Dataset;
        var down = new StageContext(config, ctx.Seed, ctx.SeedDir, device, text.Downstream(), ctx.Progress, log);
        foreach (var (stage, key) in DownstreamStage.Pretrained)
        {
            if (!done.TryGetValue(stage, out var pretrainedStage)) continue;
            var name = DownstreamStage.NameFor(stage);
            var classifier = down.Build(key);
            Stage(down, done, name, classifier, () =>
            {
                using var pretrained = ctx.Build(key);
                pretrained.load(Path.Combine(ctx.StageDir(stage), pretrainedStage.Weights));
                return DownstreamStage.Run(down, name, key, classifier, pretrained, c, cancel);
            }, stageFinished);
        }
    }

    /// <summary>The wide network: trained (stage 1), imported, or loaded from its finished stage.</summary>
    StagedModel WideModel(StageContext ctx, Dictionary<string, StageSummary> done, Action stageFinished, CancellationToken cancel)
    {
        var c = config.Wide!;
        var wide = ctx.Build("wide");
        if (c.Import is { } file)
        {
            if (!File.Exists(file)) throw new WtnException($"wide.import: {file} does not exist");
            Weights.Load(wide, file); // torchvision / HuggingFace names, .pth/.pt/.bin or .safetensors, strict
            done["wide"] = Imported(file);
            return wide;
        }
        Stage(ctx, done, "wide", wide, () => StandardStage.Run(ctx, "wide", "wide", wide, c.Train, cancel), stageFinished);
        return wide;
    }

    /// <summary>
    /// Skips a finished stage (loading its final weights into <paramref name="model"/>) or runs it, marks it done and
    /// calls <paramref name="finished"/> (the interim report). Either way the summary goes into <paramref name="done"/>.
    /// </summary>
    void Stage(StageContext ctx, Dictionary<string, StageSummary> done, string stage, StagedModel model, Func<StageSummary> run, Action finished)
    {
        var dir = ctx.StageDir(stage);
        if (StageSummary.TryLoad(dir) is { } previous)
        {
            log?.Report($"seed {ctx.Seed}: {stage} already done, skipped");
            model.load(Path.Combine(dir, previous.Weights));
            done[stage] = previous;
            return;
        }
        var summary = run();
        summary.Save(dir, model);
        done[stage] = summary;
        log?.Report($"seed {ctx.Seed}: {stage} done in {summary.WallSeconds:F0} s" +
                    (summary.LastTop1 is { } t ? $", test top-1 {100 * t:F2}%" : ""));
        finished();
    }

    /// <summary>Prefixes progress stage names with the seed when several seeds run (checkpoints keep the plain name).</summary>
    sealed class SeedProgress(long seed, IProgress<TrainingProgress> inner) : IProgress<TrainingProgress>
    {
        readonly Dictionary<string, string> names = [];

        public void Report(TrainingProgress p)
        {
            if (!names.TryGetValue(p.Stage, out var name)) names[p.Stage] = name = $"seed {seed} {p.Stage}";
            inner.Report(p with { Stage = name });
        }
    }
}
