using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Export;
using WideThenNarrow.Method;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Models;
using WideThenNarrow.Reporting;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Orchestration;

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

    public ExperimentRunner(
        ExperimentConfig config,
        string runsRoot,
        string dataDir,
        Device device,
        IProgress<TrainingProgress>? progress = null,
        IProgress<string>? log = null
    )
    {
        if (string.IsNullOrWhiteSpace(config.Name) || config.Name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            throw new WtnException($"name: '{config.Name}' is not a valid folder name");
        if (config.Seeds < 1)
            throw new WtnException($"seeds must be at least 1, got {config.Seeds}");
        config = HuggingFaceImport.Resolve(config);
        StageCatalogue.Validate(config);
        this.config = config;
        this.runsRoot = runsRoot;
        this.dataDir = dataDir;
        this.device = device;
        this.progress = progress;
        this.log = log;
    }

    public string ExperimentDir => Path.Combine(runsRoot, config.Name);

    /// <summary>runs/EXPERIMENT/seed-S: one seed's stage folders.</summary>
    public static string SeedDir(string experimentDir, long seed) => StageCatalogue.SeedDir(experimentDir, seed);

    /// <summary>Every declared stage of the first <paramref name="seeds"/> seeds with its folder: seed after seed, in declared order.</summary>
    public static IEnumerable<(long Seed, string Stage, string Dir)> StageDirs(
        ExperimentConfig config,
        string experimentDir,
        int seeds
    ) => StageCatalogue.StageDirs(config, experimentDir, seeds);

    /// <summary>The "wide" entry of an imported network: not a stage of its own, its weights are the file.</summary>
    static StageSummary Imported(string file) =>
        new()
        {
            Stage = "wide",
            Model = "wide",
            Weights = Path.GetFullPath(file),
        };

    /// <summary>The stages <c>wtn run</c> executes for every seed, in order (<see cref="StageCatalogue.Declared"/>).</summary>
    public static IReadOnlyList<string> DeclaredStages(ExperimentConfig c) =>
        [.. StageCatalogue.Declared(c).Select(s => s.Name)];

    /// <summary>Where <c>wtn report</c> asks the states of the jobs <c>wtn submit</c> recorded (default: Slurm's commands).</summary>
    public ISlurm Slurm { get; init; } = new SlurmCli();

    /// <summary>
    /// Run folders of earlier runs (RUNS_DIR/NAME) whose finished stages this run takes instead of training them again
    /// when their settings are this run's (<see cref="StageReuse"/>): <c>wtn run --reuse-from</c>.
    /// </summary>
    public IReadOnlyList<string> ReuseFrom { get; init; } = [];

    /// <summary>The resolved config and seed count of the last run (<see cref="ReadRunConfig"/>): what the stage processes of <c>--jobs</c> read.</summary>
    public const string RunConfigFile = "run-config.yaml";

    /// <summary>
    /// <c>wtn run --jobs N</c>: <see cref="Count"/> stage processes at once, started by <see cref="Launcher"/>, each on
    /// <see cref="Threads"/> threads.
    /// </summary>
    public sealed record LocalJobs(int Count, int Threads, IStageLauncher Launcher);

    /// <summary>
    /// Runs <paramref name="seeds"/> seeds (default: the config's) and writes the report. The report is also rewritten
    /// after every finished stage, with the stages still to come, so a run of days shows its results as they arrive.
    /// Alone, the stages run in this process in declared order; with <paramref name="jobs"/>, each stage is a process of
    /// its own (<see cref="LocalExecutor"/>), and this one writes the reports. The final report measures latency again
    /// when it was measured while another process of the run trained.
    /// </summary>
    public ExperimentResult Run(int? seeds = null, CancellationToken cancel = default, LocalJobs? jobs = null)
    {
        int n = Seeds(seeds);
        if (jobs is not null && config.DepthStudy is not null)
            throw new WtnException("--jobs: a depth_study runs as a whole in one process; leave --jobs out");
        var reuseFrom = ReuseFolders();
        using var runLock = RunLock.Acquire(ExperimentDir);
        WriteRunConfig(n);
        if (config.DepthStudy is not null)
            return DepthStudyRunner.Run(config, n, ExperimentDir, dataDir, device, progress, log, cancel);
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        // Before anything is planned for training: the stages reused are then done, like those this run finished.
        if (reuseFrom.Count > 0)
            StageReuse.Apply(Scheduler.Pending(n, dataset, cancel), reuseFrom, log);
        if (jobs is null)
            Scheduler.Schedule(n, dataset, cancel);
        else
            new LocalExecutor(jobs.Count, jobs.Launcher, log).Run(
                Graph(n, jobs.Threads, dataset),
                _ => InterimReport(n, dataset),
                cancel
            );
        // Latency measured while another process of the run trained is contended: measured again for the final report.
        if (jobs is not null || costs?.Values.Any(c => c.Contended) == true)
            costs = null;
        return WriteReport(n, dataset, replaceFinal: true);
    }

    /// <summary>
    /// <c>wtn run --only seed-S/STAGE [--unit K]</c>: that stage of that seed alone (or one unit of it), against the
    /// shared run folder, without the run's lock: a stage process of <c>wtn run --jobs</c> or a Slurm job of
    /// <c>wtn submit</c>, beside the processes of other stages.
    /// Skips a finished stage; refuses one whose prerequisites are not done. Returns what it did.
    /// </summary>
    public string RunOnly(string only, int? unit = null, CancellationToken cancel = default)
    {
        var (seed, stage) = ParseOnly(only);
        if (config.Wide?.Import is { } file && !File.Exists(file))
            throw new WtnException($"wide.import: {file} does not exist");
        if (config.DepthStudy is not null)
            throw new WtnException("--only: a depth_study runs as a whole; leave --only out");
        var reuseFrom = ReuseFolders();
        Directory.CreateDirectory(ExperimentDir);
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        if (reuseFrom.Count > 0 && unit is null)
        {
            var ctx = new StageContext(config, seed, SeedDir(ExperimentDir, seed), device, dataset, progress, log);
            if (StageReuse.Apply(Scheduler.Plan(ctx, cancel).Where(p => p.Name == stage), reuseFrom, log).Count > 0)
                return $"seed {seed}: {stage} reused";
        }
        return Scheduler.RunOne(seed, stage, unit, dataset, cancel);
    }

    /// <summary>Training multiply-accumulates per second and thread assumed for a stage of a kind nothing has measured: low, as a time limit must be.</summary>
    public const double DefaultMacsPerSecondPerThread = 2e9;

    /// <summary>
    /// <c>wtn submit</c>'s view of the experiment: every declared stage of every seed, in order, with what it starts
    /// from, its units that can run apart, whether it is done, and the resources to ask for on <paramref name="threads"/>
    /// threads. The time is the stage's estimated work at the pace measured in the run folder for its kind (else the
    /// median measured pace, else <see cref="DefaultMacsPerSecondPerThread"/>), with a margin
    /// (<see cref="SlurmSubmission.TimeLimit"/>). Memory is estimated: weights, gradients and optimiser state of its
    /// networks, their activations for one batch, and 2 GB for the runtime and the data, times 2.
    /// </summary>
    public IReadOnlyList<StageJobSpec> Graph(int? seeds, int threads)
    {
        int n = Seeds(seeds);
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        return Graph(n, threads, dataset);
    }

    IReadOnlyList<StageJobSpec> Graph(int n, int threads, IExperimentDataset dataset, bool verify = true)
    {
        var plan = Scheduler.Pending(n, dataset, default);
        if (verify)
            foreach (var s in plan)
                StageScheduler.Verify(s);
        var paces = Paces.Of(ExperimentStatus.Read(config, ExperimentDir, n), [.. plan.Select(StageScheduler.Work)]);
        var memory = new Dictionary<string, long>();
        return plan.Select(s =>
            {
                double? pace = paces.OfKind(s.Kind) ?? paces.Median;
                double seconds = pace is { } p
                    ? s.Cost * p
                    : s.Cost * s.Ctx.TrainData.BatchSize / (DefaultMacsPerSecondPerThread * threads);
                if (!memory.TryGetValue(s.Name, out var mb))
                    memory[s.Name] = mb = MemoryMb(s.Name, dataset, s.Ctx.TrainData.BatchSize);
                var unitsDone = Enumerable
                    .Range(0, s.Units)
                    .Where(k => File.Exists(Path.Combine(s.Dir, $"block-{k:D2}", "block.json")))
                    .ToHashSet();
                return new StageJobSpec(s.Ctx.Seed, s.Name, s.Needs, s.Units, s.Done)
                {
                    Seconds = seconds,
                    Time = SlurmSubmission.TimeLimit(seconds, pace is not null),
                    UnitTime =
                        s.Units > 0 ? SlurmSubmission.TimeLimit(seconds / s.Units, pace is not null) : TimeSpan.Zero,
                    MemoryMb = mb,
                    Measured = pace is not null,
                    UnitsDone = unitsDone,
                };
            })
            .ToList();
    }

    long MemoryMb(string stage, IExperimentDataset dataset, int batch)
    {
        double bytes = 0;
        foreach (var m in StageCatalogue.All.First(x => x.Name == stage).Networks)
        {
            var size = ModelSummary.Of(dataset.ModelConfig(config.Models.Spec(m), m));
            bytes +=
                4.0 * 4 * size.Parameters
                + 3.0 * 4 * batch * size.Blocks.Sum(b => b.Shape.Aggregate(1.0, (a, d) => a * d));
        }
        double mb = 2 * (2048 + bytes / (1 << 20));
        return (long)Math.Ceiling(mb / 256) * 256;
    }

    /// <summary>
    /// <c>wtn submit</c>: the stages not done as Slurm jobs (<see cref="SlurmSubmission"/>), skipping finished stages
    /// and those whose job is still queued or running. With <paramref name="dryRun"/> nothing is submitted: the jobs
    /// are returned with their scripts, dependencies named by job name.
    /// </summary>
    public (IReadOnlyList<SlurmSubmission.Job> Jobs, IReadOnlyList<SlurmRecord> Submitted) Submit(
        int? seeds,
        SlurmSettings settings,
        ISlurm slurm,
        bool dryRun
    )
    {
        int n = Seeds(seeds);
        // Stages another run finished under the same settings are brought in first, so no job is submitted for them
        // (with --dry-run nothing is brought, and the scripts list them).
        var reuseFrom = ReuseFolders();
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        if (reuseFrom.Count > 0 && !dryRun)
            StageReuse.Apply(Scheduler.Pending(n, dataset, default), reuseFrom, log);
        // The live jobs before the stages' state: a job that ends in between has written its stage, so it is done.
        var live = dryRun
            ? []
            : SlurmSubmission
                .Latest(ExperimentDir, slurm)
                .Where(kv => SlurmSubmission.Live(kv.Value.State))
                .ToDictionary(kv => kv.Key, kv => kv.Value.Record.JobId);
        var graph = Graph(n, settings.Threads, dataset);
        var submission = new SlurmSubmission(ExperimentDir, config.Name, n, settings);
        var jobs = submission.Plan(graph, live);
        if (dryRun || jobs.Count == 0)
            return (jobs, []);
        Directory.CreateDirectory(ExperimentDir);
        WriteRunConfig(n); // the run folder names its experiment (wtn export RUN_FOLDER) before the report job writes it again
        return (jobs, submission.Submit(jobs, slurm, RunConfigText(n)));
    }

    /// <summary>"seed-S/STAGE" checked against the experiment's stages.</summary>
    public (long Seed, string Stage) ParseOnly(string only)
    {
        var parts = only.Split('/');
        var declared = DeclaredStages(config);
        if (
            parts.Length != 2
            || !parts[0].StartsWith("seed-", StringComparison.Ordinal)
            || !long.TryParse(
                parts[0]["seed-".Length..],
                System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture,
                out var seed
            )
        )
            throw new WtnException(
                $"--only: '{only}' is not seed-S/STAGE (e.g. seed-{config.SeedBase}/{declared.FirstOrDefault() ?? "wide"})"
            );
        if (!declared.Contains(parts[1]))
            throw new WtnException(
                $"--only: '{parts[1]}' is not a stage of experiment {config.Name}; its stages: {string.Join(", ", declared)}"
            );
        return (seed, parts[1]);
    }

    /// <summary><see cref="ReuseFrom"/> as full paths, each checked to be another run's folder.</summary>
    List<string> ReuseFolders()
    {
        if (ReuseFrom.Count > 0 && config.DepthStudy is not null)
            throw new WtnException(
                "--reuse-from: a depth_study runs as a whole and reuses no stages; leave --reuse-from out"
            );
        return [.. ReuseFrom.Select(f => StageReuse.CheckFolder(f, ExperimentDir)).Distinct()];
    }

    /// <summary>The seed count to run (default: the config's), checked; and the imported wide network's file.</summary>
    int Seeds(int? seeds)
    {
        int n = SeedCount(seeds);
        if (config.Wide?.Import is { } file && !File.Exists(file) && !HuggingFaceBert.IsFolder(file))
            throw new WtnException($"wide.import: {file} does not exist");
        return n;
    }

    int SeedCount(int? seeds)
    {
        int n = seeds ?? config.Seeds;
        return n >= 1 ? n : throw new WtnException($"--seeds must be at least 1, got {n}");
    }

    /// <summary>The resolved config with the run's seed count: valid YAML that reproduces the run when given to wtn run.</summary>
    string RunConfigText(int seeds) => ConfigLoader.ToYaml(config with { Seeds = seeds });

    /// <summary>
    /// The experiment a run folder (runs/EXPERIMENT) holds, from its <see cref="RunConfigFile"/>: the resolved config
    /// the last <c>wtn run</c> (or <c>wtn demo</c>) used, so a finished run can be read without its experiment file.
    /// </summary>
    public static ExperimentConfig ReadRunConfig(string experimentDir)
    {
        var path = Path.Combine(experimentDir, RunConfigFile);
        if (!File.Exists(path))
            throw new WtnException(
                $"{experimentDir} is not a run folder of wtn run or wtn demo (it has no {RunConfigFile}); give the experiment file instead"
            );
        return ConfigLoader.Load<ExperimentConfig>(path);
    }

    void WriteRunConfig(int seeds) => WriteAtomically(Path.Combine(ExperimentDir, RunConfigFile), RunConfigText(seeds));

    internal static void WriteAtomically(string path, string text) =>
        WriteFailure.Replace(path, tmp => File.WriteAllText(tmp, text));

    /// <summary>
    /// <c>wtn report</c>: the report of whatever stages have finished, without running anything (and without the run's
    /// lock: a run may be going on; its files are only read). Refuses stages trained under other settings than the
    /// config's; costs are measured afresh. The final report a finished run wrote is never replaced: the result is
    /// returned with <see cref="ExperimentResult.Written"/> false.
    /// </summary>
    public ExperimentResult Report(int? seeds = null)
    {
        int n = SeedCount(seeds);
        if (config.DepthStudy is not null)
            throw new WtnException(
                "depth_study: wtn run rewrites this study's report.md after every finished depth; wtn report reads stage runs only"
            );
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        foreach (var s in Scheduler.Pending(n, dataset, default))
            StageScheduler.Verify(s);
        return WriteReport(n, dataset, replaceFinal: false);
    }

    /// <summary><c>wtn export</c> of this experiment's finished stages (<see cref="ExperimentExport"/>), each checked against the config's settings first.</summary>
    public ExperimentExport Exporter => new(config, ExperimentDir, dataDir, log, VerifyStage);

    /// <summary>Refuses to use a finished stage trained under other settings than the config's (<see cref="Verify"/>).</summary>
    void VerifyStage(long seed, string stage, IExperimentDataset dataset) =>
        StageScheduler.Verify(
            Scheduler
                .Plan(new StageContext(config, seed, SeedDir(ExperimentDir, seed), device, dataset, null, log), default)
                .Single(p => p.Name == stage)
        );

    /// <summary>Every seed's finished stages, as their stage.json files say (whichever process ran them).</summary>
    List<IReadOnlyDictionary<string, StageSummary>> Finished(int seeds)
    {
        var perSeed = new List<IReadOnlyDictionary<string, StageSummary>>();
        for (int i = 0; i < seeds; i++)
        {
            var seedDir = SeedDir(ExperimentDir, config.SeedBase + i);
            var done = new Dictionary<string, StageSummary>();
            if (config.Wide?.Import is { } file)
                done["wide"] = Imported(file);
            foreach (var stage in DeclaredStages(config))
                if (StageSummary.TryLoad(Path.Combine(seedDir, stage)) is { } s)
                    done[stage] = s;
            perSeed.Add(done);
        }
        return perSeed;
    }

    IReadOnlyDictionary<string, ModelCostRow>? costs;
    IReadOnlyList<StageWork>? work;

    /// <summary>
    /// Builds the report and writes it, unless <paramref name="replaceFinal"/> is false and the experiment folder holds
    /// a final report already (only the run that finished writes one; an interim or a second look never replaces it).
    /// </summary>
    ExperimentResult WriteReport(int seeds, IExperimentDataset dataset, bool replaceFinal)
    {
        if (costs is null)
        {
            // Another process of this run training now slows the latency down: the row says so.
            bool contended = Scheduler.Training(seeds).Any(p => p != Environment.ProcessId);
            costs = ModelCost
                .Measure(config, dataset, device, config.Report.LatencyRepeats)
                .ToDictionary(kv => kv.Key, kv => kv.Value with { Contended = contended });
        }
        work ??= Scheduler.Pending(seeds, dataset, default).Select(StageScheduler.Work).ToList();
        var status = SlurmSubmission.Annotate(
            ExperimentStatus.Read(config, ExperimentDir, seeds),
            ExperimentDir,
            Slurm
        );
        var result = ExperimentResult.Build(config, Finished(seeds), costs, ExperimentDir, dataset) with
        {
            Seeds = seeds,
            Status = status,
            Left = ExperimentStatus.TimeLeft(status, work, DateTime.UtcNow),
        };
        if (!replaceFinal && ExperimentReport.HasFinal(ExperimentDir, seeds))
            return result with { Written = false };
        ExperimentReport.Write(result, ExperimentDir);
        return result;
    }

    /// <summary>STAGE/settings.yaml: the settings a stage started under, so a changed config cannot finish it.</summary>
    public const string StartedSettingsFile = "settings.yaml";

    StageScheduler? scheduler;

    /// <summary>The scheduler of this process (made on first use, once the init properties are set).</summary>
    StageScheduler Scheduler => scheduler ??= new(config, ExperimentDir, device, progress, log, InterimReport);

    /// <summary>After each stage this process finishes: the report with the stages still to come.</summary>
    void InterimReport(int seeds, IExperimentDataset dataset)
    {
        var interim = WriteReport(seeds, dataset, replaceFinal: false);
        if (interim.Partial)
            log?.Report(
                $"interim report: {Path.Combine(ExperimentDir, "report.md")} ({interim.StagesDone} of {interim.Status.Count} stages done"
                    + (
                        interim.Left is { Wall: { } wall } left
                            ? $"; about {StageStatus.Duration(wall)} of wall time left on the {(left.Processes == 1 ? "process" : $"{left.Processes} processes")} training now"
                            : ""
                    )
                    + ")"
            );
    }

    /// <summary>
    /// The order in which <c>--jobs</c> prefers the processes of the stages not done ("seed-S/STAGE", "seed-S/STAGE unit
    /// K") when they are ready: the most estimated time ahead first (<see cref="LocalExecutor.Order"/>).
    /// </summary>
    internal IReadOnlyList<string> StageOrder(int seeds)
    {
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        return [.. LocalExecutor.Order(Graph(seeds, 1, dataset, verify: false)).Select(t => t.ToString())];
    }

    /// <summary>Each stage's settings and their fingerprint, in declared order, for the first seed: what its stage.json records.</summary>
    internal IReadOnlyList<(
        string Stage,
        string Fingerprint,
        SortedDictionary<string, string> Settings
    )> StageFingerprints()
    {
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        return Scheduler.Pending(1, dataset, default).Select(s => (s.Name, s.Fingerprint, s.Settings)).ToList();
    }

    /// <summary>Each stage's estimated work (multiply-accumulates over the whole stage), in declared order, for the first seed.</summary>
    internal IReadOnlyList<(string Stage, double Cost)> StageCosts()
    {
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        return Scheduler.Pending(1, dataset, default).Select(s => (s.Name, s.Cost)).ToList();
    }
}
