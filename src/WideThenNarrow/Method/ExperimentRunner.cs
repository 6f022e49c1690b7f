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

    /// <summary>Runs <paramref name="seeds"/> seeds (default: the config's) and writes the report.</summary>
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
            var ctx = new StageContext(config, seed, Path.Combine(ExperimentDir, $"seed-{seed}"), device, dataset, seedProgress, log);
            perSeed.Add(RunSeed(ctx, cancel));
        }
        var costs = ModelCost.Measure(config, dataset, device, config.Report.LatencyRepeats);
        var result = ExperimentResult.Build(config, perSeed, costs, ExperimentDir, dataset);
        ExperimentReport.Write(result, ExperimentDir);
        return result;
    }

    IReadOnlyDictionary<string, StageSummary> RunSeed(StageContext ctx, CancellationToken cancel)
    {
        var done = new Dictionary<string, StageSummary>();
        StagedModel? wide = null;
        StagedModel Wide() => wide ??= WideModel(ctx, done, cancel);

        if (config.Wide is not null) Wide();
        if (config.Imitation is { } im)
        {
            var thin = ctx.Build("thin");
            done["imitation"] = Stage(ctx, "imitation", thin, () => ImitationStage.Run(ctx, thin, Wide(), im, cancel));
            if (config.Finetune is { } ft)
                done["finetune"] = Stage(ctx, "finetune", thin, () => DistillStage.Run(ctx, "finetune", thin, ft.Alpha > 0 ? Wide() : null, ft, cancel));
        }
        if (config.Standard is { } st)
        {
            var m = ctx.Build("thin");
            done["standard"] = Stage(ctx, "standard", m, () => StandardStage.Run(ctx, "standard", "thin", m, st.Train, cancel));
        }
        if (config.StandardLong is { } sl)
        {
            var m = ctx.Build("thin");
            done["standard_long"] = Stage(ctx, "standard_long", m, () => StandardStage.Run(ctx, "standard_long", "thin", m, sl.Train, cancel));
        }
        if (config.Kd is { } kd)
        {
            var m = ctx.Build("thin");
            done["kd"] = Stage(ctx, "kd", m, () => DistillStage.Run(ctx, "kd", m, Wide(), kd, cancel));
        }
        if (config.Fitnets is { } fn)
        {
            var m = ctx.Build("thin");
            done["fitnets"] = Stage(ctx, "fitnets", m, () => FitNetsStage.Run(ctx, m, Wide(), fn, cancel));
        }
        if (config.Deeper is { } dp)
        {
            var m = ctx.Build("deeper");
            if (m.BlockCount <= ctx.Build("thin").BlockCount)
                throw new WtnException($"models.deeper ({config.Models.Deeper!.Name}) must have more blocks than models.thin ({config.Models.Thin.Name})");
            done["deeper"] = Stage(ctx, "deeper", m, () => StandardStage.Run(ctx, "deeper", "deeper", m, dp.Train, cancel));
        }
        if (config.Downstream is { } ds) RunDownstream(ctx, done, ds, cancel);
        return done;
    }

    /// <summary>
    /// Text experiments: every pretrained thin/deeper network (from its finished stage's weights) fine-tuned on IMDB
    /// as stage downstream_STAGE, with the same recipe for all.
    /// </summary>
    void RunDownstream(StageContext ctx, Dictionary<string, StageSummary> done, DownstreamStageConfig c, CancellationToken cancel)
    {
        var text = (MaskedLmExperimentDataset)ctx.Dataset;
        var down = new StageContext(config, ctx.Seed, ctx.SeedDir, device, text.Downstream(), ctx.Progress, log);
        foreach (var (stage, key) in DownstreamStage.Pretrained)
        {
            if (!done.TryGetValue(stage, out var pretrainedStage)) continue;
            var name = DownstreamStage.NameFor(stage);
            var classifier = down.Build(key);
            done[name] = Stage(down, name, classifier, () =>
            {
                using var pretrained = ctx.Build(key);
                pretrained.load(Path.Combine(ctx.StageDir(stage), pretrainedStage.Weights));
                return DownstreamStage.Run(down, name, key, classifier, pretrained, c, cancel);
            });
        }
    }

    /// <summary>The wide network: trained (stage 1), imported, or loaded from its finished stage.</summary>
    StagedModel WideModel(StageContext ctx, Dictionary<string, StageSummary> done, CancellationToken cancel)
    {
        var c = config.Wide!;
        var wide = ctx.Build("wide");
        if (c.Import is { } file)
        {
            if (!File.Exists(file)) throw new WtnException($"wide.import: {file} does not exist");
            Weights.Load(wide, file); // torchvision / HuggingFace names, .pth/.pt/.bin or .safetensors, strict
            done["wide"] = new StageSummary { Stage = "wide", Model = "wide", Weights = Path.GetFullPath(file) };
            return wide;
        }
        done["wide"] = Stage(ctx, "wide", wide, () => StandardStage.Run(ctx, "wide", "wide", wide, c.Train, cancel));
        return wide;
    }

    /// <summary>Skips a finished stage (loading its final weights into <paramref name="model"/>) or runs it and marks it done.</summary>
    StageSummary Stage(StageContext ctx, string stage, StagedModel model, Func<StageSummary> run)
    {
        var dir = ctx.StageDir(stage);
        if (StageSummary.TryLoad(dir) is { } finished)
        {
            log?.Report($"seed {ctx.Seed}: {stage} already done, skipped");
            model.load(Path.Combine(dir, finished.Weights));
            return finished;
        }
        var summary = run();
        summary.Save(dir, model);
        log?.Report($"seed {ctx.Seed}: {stage} done in {summary.WallSeconds:F0} s" +
                    (summary.LastTop1 is { } t ? $", test top-1 {100 * t:F2}%" : ""));
        return summary;
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
