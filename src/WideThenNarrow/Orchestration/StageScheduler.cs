using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Reporting;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Orchestration;

/// <summary>
/// Runs the stages of an experiment's seeds in this process, in declared order (<see cref="Schedule"/>), or one stage
/// of them (<see cref="RunOne"/>: a <c>wtn run --only</c> process of <c>--jobs</c> or a Slurm job). A stage is trained
/// under its lock, so no two processes train it at once. <paramref name="afterStage"/> is called after every stage
/// <see cref="Schedule"/> finishes, with the seed count and the data.
/// </summary>
internal sealed class StageScheduler(
    ExperimentConfig config,
    string experimentDir,
    Device device,
    IProgress<TrainingProgress>? progress,
    IProgress<string>? log,
    Action<int, IExperimentDataset> afterStage
)
{
    string? importHash; // SHA-256 of wide.import, read once

    /// <summary>
    /// Refuses a finished stage whose recorded settings differ from the config's now, and a started one whose settings
    /// changed since it started, naming the keys: its weights would describe another experiment than the report says.
    /// </summary>
    public static void Verify(PlannedStage s)
    {
        string? diff = null,
            what = null;
        var path = Path.Combine(s.Dir, ExperimentRunner.StartedSettingsFile);
        // A setting added to wtn after the stage ran is no change while it keeps its default.
        static string? Changed(IReadOnlyDictionary<string, string> was, IReadOnlyDictionary<string, string> now) =>
            ConfigLoader.Changes(was, now, ConfigLoader.DefaultOf<ExperimentConfig>) is { Count: > 0 } changes
                ? ConfigLoader.Describe(changes)
                : null;
        if (StageSummary.TryLoad(s.Dir) is { } done)
        {
            if (done.Fingerprint != s.Fingerprint)
                (what, diff) = (
                    "was trained",
                    done.Settings is null ? "it records none" : Changed(done.Settings, s.Settings)
                );
        }
        else if (File.Exists(path))
        {
            var started = ConfigLoader.FlattenYaml(File.ReadAllText(path), path);
            if (StageFingerprint.Hash(started) != s.Fingerprint)
                (what, diff) = ("was started", Changed(started, s.Settings));
        }
        if (diff is null)
            what = null;
        if (what is not null)
            throw new WtnException(
                $"{s}: {s.Dir} {what} under other settings than the config gives now ({diff}); "
                    + $"run the new settings under another name (--set name=NEW), or delete {s.Dir} and the stages that start from it to train them again"
            );
    }

    /// <summary>
    /// Runs every stage of every seed not done, in declared order (a stage's prerequisites come before it). A stage
    /// another process is training (its lock, STAGE/.lock, is held: a <c>wtn run --only</c> beside this run) stops the
    /// run with a line naming that process (<see cref="RunLock.Acquire"/>); the stages before it are kept.
    /// </summary>
    public void Schedule(int seeds, IExperimentDataset dataset, CancellationToken cancel)
    {
        var plan = Pending(seeds, dataset, cancel);
        foreach (var s in plan)
            Verify(s);
        foreach (var s in plan.Where(s => s.Done))
            log?.Report($"{s} already done, skipped");
        foreach (var s in plan.Where(s => !s.Done).ToList())
        {
            cancel.ThrowIfCancellationRequested();
            using var stageLock = RunLock.Acquire(s.Dir);
            if (s.Done)
                log?.Report($"{s} done by another process");
            else
                Execute(s, seeds, dataset);
        }
    }

    /// <summary>
    /// One stage of one seed in this process and nothing else (<c>wtn run --only</c>, a Slurm job), or with
    /// <paramref name="unit"/> one unit of a stage whose units train on their own (<see cref="PlannedStage.Units"/>, a
    /// job array's task). No interim report: other processes may be running other stages of the run. Returns what it did.
    /// </summary>
    public string RunOne(long seed, string stage, int? unit, IExperimentDataset dataset, CancellationToken cancel)
    {
        var ctx = new StageContext(
            config,
            seed,
            StageCatalogue.SeedDir(experimentDir, seed),
            device,
            dataset,
            progress,
            log
        );
        var s = Plan(ctx, cancel).Single(p => p.Name == stage);
        Verify(s);
        if (s.Done)
            return $"{s} already done";
        var missing = s.Needs.Where(n => !StageSummary.IsDone(ctx.StageDir(n))).ToList();
        if (missing.Count > 0)
            throw new WtnException(
                $"--only seed-{seed}/{stage}: it starts from {string.Join(", ", missing)}, which {(missing.Count == 1 ? "is" : "are")} not done; run {(missing.Count == 1 ? "that stage" : "those stages")} first"
            );
        Directory.CreateDirectory(s.Dir);
        var started = Path.Combine(s.Dir, ExperimentRunner.StartedSettingsFile);
        if (!File.Exists(started))
            ExperimentRunner.WriteAtomically(started, ConfigLoader.FlatToYaml(s.Settings));
        if (unit is { } k)
        {
            if (s.Units == 0)
                throw new WtnException(
                    $"--unit: {s} does not train in separate units (only imitation with input: teacher and wide_cache_mb: 0 does); leave --unit out"
                );
            if (k < 0 || k >= s.Units)
                throw new WtnException($"--unit {k}: {s} has units 0 to {s.Units - 1}");
            var (model, run) = s.PrepareUnit!(k);
            using (model)
                run();
            return $"{s}: unit {k} done";
        }
        using var stageLock = RunLock.TryAcquire(s.Dir)
            ?? throw new WtnException(
                $"{s.Dir}: another process holds this stage ({RunLock.Holder(s.Dir)}); wait for it or stop it"
            );
        if (s.Done)
            return $"{s} done by another process";
        Execute(s, 1, dataset, report: false);
        return $"{s} done";
    }

    /// <summary>The live processes on this machine holding a stage lock of this run: the ones training.</summary>
    public IEnumerable<int> Training(int seeds)
    {
        foreach (var (_, _, dir) in StageCatalogue.StageDirs(config, experimentDir, seeds))
            if (RunLock.HolderProcess(dir) is { } pid)
                yield return pid;
    }

    /// <summary>Every stage of every seed, seed after seed, in declared order.</summary>
    public List<PlannedStage> Pending(int seeds, IExperimentDataset dataset, CancellationToken cancel)
    {
        var pending = new List<PlannedStage>();
        for (int i = 0; i < seeds; i++)
        {
            long seed = config.SeedBase + i;
            var seedProgress = seeds > 1 && progress is not null ? new SeedProgress(seed, progress) : progress;
            pending.AddRange(
                Plan(
                    new StageContext(
                        config,
                        seed,
                        StageCatalogue.SeedDir(experimentDir, seed),
                        device,
                        dataset,
                        seedProgress,
                        log
                    ),
                    cancel
                )
            );
        }
        return pending;
    }

    public static StageWork Work(PlannedStage s) =>
        new(s.Ctx.Seed, s.Name, s.Cost, s.TrainCost, s.Kind) { Needs = s.Needs };

    /// <summary>Runs one stage (this process holds its lock), saves its weights and summary, and calls back (the interim report).</summary>
    void Execute(PlannedStage s, int seeds, IExperimentDataset dataset, bool report = true)
    {
        Directory.CreateDirectory(s.Dir);
        var started = Path.Combine(s.Dir, ExperimentRunner.StartedSettingsFile);
        if (!File.Exists(started))
            ExperimentRunner.WriteAtomically(started, ConfigLoader.FlatToYaml(s.Settings));
        var (model, run) = s.Prepare();
        using (model)
        {
            var summary = run();
            // The finished network's one look at the test split; every choice before it was made on validation.
            var where = s.TestIn?.Invoke() ?? s.Ctx;
            if (!s.TestsItself)
            {
                var (testLoss, testTop1, correct) = where.Test(model);
                summary = summary with
                {
                    TestTop1 = testTop1,
                    TestLoss = testLoss is { } l && double.IsFinite(l) ? l : null,
                    TestCorrect = correct is null ? null : StageSummary.PackBits(correct),
                };
            }
            summary = summary with
            {
                TrainMacs = s.Cost * where.TrainData.BatchSize,
                Fingerprint = s.Fingerprint,
                Settings = s.Settings,
            };
            summary.Save(s.Dir, model);
            log?.Report(
                $"{s} done in {summary.WallSeconds:F0} s"
                    + (summary.ValTop1 is { } v ? $", validation top-1 {100 * v:F2}%" : "")
                    + (summary.TestTop1 is { } t ? $", test top-1 {100 * t:F2}%" : "")
            );
        }
        if (report)
            afterStage(seeds, dataset);
    }

    /// <summary>One seed's stages in declared order (<see cref="SeedPlan"/>).</summary>
    public List<PlannedStage> Plan(StageContext ctx, CancellationToken cancel) =>
        SeedPlan.Of(ctx, cancel, () =>
            importHash ??=
                config.Wide!.Import is { } import && Models.HuggingFaceBert.IsFolder(import)
                    ? Models.HuggingFaceBert.Hash(import)
                    : StageFingerprint.FileHash(config.Wide!.Import!)
        );

    /// <summary>Prefixes progress stage names with the seed when several seeds run (checkpoints keep the plain name).</summary>
    sealed class SeedProgress(long seed, IProgress<TrainingProgress> inner) : IProgress<TrainingProgress>
    {
        readonly Dictionary<string, string> names = [];

        public void Report(TrainingProgress p)
        {
            if (!names.TryGetValue(p.Stage, out var name))
                names[p.Stage] = name = $"seed {seed} {p.Stage}";
            inner.Report(p with { Stage = name });
        }
    }
}
