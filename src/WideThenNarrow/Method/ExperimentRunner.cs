using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Export;
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

    /// <summary>Every declared stage of the first <paramref name="seeds"/> seeds with its folder: seed after seed, in declared order.</summary>
    public static IEnumerable<(long Seed, string Stage, string Dir)> StageDirs(ExperimentConfig config, string experimentDir, int seeds)
    {
        var stages = DeclaredStages(config);
        for (int i = 0; i < seeds; i++)
        {
            long seed = config.SeedBase + i;
            foreach (var stage in stages) yield return (seed, stage, Path.Combine(SeedDir(experimentDir, seed), stage));
        }
    }

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

    /// <summary>How long a process waits before looking again when every stage left is held by another process or needs one that is.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Threads that every process of this run shares (<see cref="ThreadShare"/>): when set, this process takes its
    /// share among the processes training whenever it starts a stage and every <see cref="ThreadCheckInterval"/> while
    /// it trains. Null or 0 keeps the thread count it was given (every stage then bit-reproducible); but a
    /// <see cref="Join"/> left at null takes the budget the running <see cref="Run"/> shares, from its
    /// <see cref="ThreadBudgetFile"/>.
    /// </summary>
    public int? ThreadBudget { get; init; }

    /// <summary>Written by a <see cref="Run"/> with a <see cref="ThreadBudget"/> for the length of the run: the budget, for processes joining it.</summary>
    public const string ThreadBudgetFile = "thread-budget";

    /// <summary>The thread budget the run now holding <paramref name="experimentDir"/> shares, or null when it shares none.</summary>
    internal static int? RunThreadBudget(string experimentDir)
    {
        try
        {
            var path = Path.Combine(experimentDir, ThreadBudgetFile);
            return File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), System.Globalization.CultureInfo.InvariantCulture, out var b) && b > 0 ? b : null;
        }
        catch (IOException) { return null; }
    }

    int? budget; // the budget in effect for this process: ThreadBudget, or for a join the run's

    /// <summary>Least time between two looks at the processes training, during a stage (<see cref="ThreadBudget"/>).</summary>
    public TimeSpan ThreadCheckInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The record of a running experiment that joining processes check theirs against (the resolved config and the seeds).</summary>
    public const string RunConfigFile = "run-config.yaml";

    /// <summary>
    /// Runs <paramref name="seeds"/> seeds (default: the config's) and writes the report. The report is also rewritten
    /// after every finished stage, with the stages still to come, so a run of days shows its results as they arrive.
    /// Stages run in declared order (with helpers, the one with the most work ahead first); a stage another process
    /// holds (<see cref="Join"/>) is left to it, and this process takes the next one whose prerequisites are done, or
    /// waits. <paramref name="helpers"/> is called once the run's lock is held and its <see cref="RunConfigFile"/>
    /// written (the moment to start joining processes); the final report is written after they have exited.
    /// </summary>
    public ExperimentResult Run(int? seeds = null, CancellationToken cancel = default, Func<IRunHelpers>? helpers = null)
    {
        int n = Seeds(seeds);
        using var runLock = RunLock.Acquire(ExperimentDir);
        WriteRunConfig(n);
        budget = ThreadBudget > 0 ? ThreadBudget : null;
        var budgetFile = Path.Combine(ExperimentDir, ThreadBudgetFile);
        if (budget is { } b) WriteAtomically(budgetFile, $"{b}\n");
        else File.Delete(budgetFile);
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        var team = helpers?.Invoke();
        bool shared;
        try { shared = Schedule(n, dataset, costliestFirst: team is not null, cancel); }
        catch
        {
            team?.Stop();
            throw;
        }
        finally { File.Delete(budgetFile); }
        team?.Finished();
        // Latency measured while another process trained is contended: measure again for the final report.
        if (shared || team is not null) costs = null;
        return WriteReport(n, dataset);
    }

    /// <summary>
    /// Helps a <see cref="Run"/> of the same experiment (same config and seeds) that another process is doing: takes
    /// the stages nobody has started, the one with the most work ahead first, and returns when every stage is done;
    /// the final report is left to the run. Returns the stages this process ran ("seed S: STAGE").
    /// </summary>
    public IReadOnlyList<string> Join(int? seeds = null, CancellationToken cancel = default)
    {
        int n = Seeds(seeds);
        string notRunning = $"{ExperimentDir}: no wtn run is running this experiment; start one (wtn run, optionally --jobs N), then join it";
        if (!Directory.Exists(ExperimentDir)) throw new WtnException(notRunning);
        using (var probe = RunLock.TryAcquire(ExperimentDir))
            if (probe is not null)
                throw new WtnException(notRunning);
        var path = Path.Combine(ExperimentDir, RunConfigFile);
        var theirs = File.Exists(path) ? File.ReadAllText(path) : throw new WtnException($"{path} is missing: the running wtn run is older than --join; stop it and rerun it with --jobs N");
        if (theirs != RunConfigText(n))
            throw new WtnException($"{path}: the running experiment has another config or seed count than this one; join with the same file, --set and --seeds");
        budget = ThreadBudget is null ? RunThreadBudget(ExperimentDir) : ThreadBudget > 0 ? ThreadBudget : null;
        if (ThreadBudget is null && budget is { } b) log?.Report($"threads: sharing the run's budget of {b} (--thread-budget 0 keeps this process's own)");
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        ranHere.Clear();
        Schedule(n, dataset, costliestFirst: true, cancel);
        return ranHere.ToList();
    }

    /// <summary>The seed count to run (default: the config's), checked; and the imported wide network's file.</summary>
    int Seeds(int? seeds)
    {
        int n = SeedCount(seeds);
        if (config.Wide?.Import is { } file && !File.Exists(file)) throw new WtnException($"wide.import: {file} does not exist");
        return n;
    }

    int SeedCount(int? seeds)
    {
        int n = seeds ?? config.Seeds;
        return n >= 1 ? n : throw new WtnException($"--seeds must be at least 1, got {n}");
    }

    string RunConfigText(int seeds) => $"seeds: {seeds}\n{ConfigLoader.ToYaml(config)}";

    /// <summary>
    /// The experiment a run folder (runs/EXPERIMENT) holds, from its <see cref="RunConfigFile"/>: the resolved config
    /// the last <c>wtn run</c> (or <c>wtn demo</c>) used, so a finished run can be read without its experiment file.
    /// </summary>
    public static ExperimentConfig ReadRunConfig(string experimentDir)
    {
        var path = Path.Combine(experimentDir, RunConfigFile);
        if (!File.Exists(path))
            throw new WtnException($"{experimentDir} is not a run folder of wtn run or wtn demo (it has no {RunConfigFile}); give the experiment file instead");
        var lines = File.ReadAllLines(path);
        // The first line is the run's seed count, written before the config (whose own 'seeds' is the file's default).
        if (lines.Length == 0 || !lines[0].StartsWith("seeds: ", StringComparison.Ordinal))
            throw new WtnException($"{path} does not start with the run's seed count; it was not written by wtn run");
        return ConfigLoader.Parse<ExperimentConfig>(string.Join('\n', lines.Skip(1)), path);
    }

    void WriteRunConfig(int seeds) => WriteAtomically(Path.Combine(ExperimentDir, RunConfigFile), RunConfigText(seeds));

    static void WriteAtomically(string path, string text) => WriteFailure.Replace(path, tmp => File.WriteAllText(tmp, text));

    /// <summary>
    /// <c>wtn report</c>: the report of whatever stages have finished, without running anything (and without the run's
    /// lock: a run may be going on; its files are only read). Costs are measured afresh.
    /// </summary>
    public ExperimentResult Report(int? seeds = null)
    {
        int n = SeedCount(seeds);
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        return WriteReport(n, dataset);
    }

    /// <summary>
    /// <c>wtn export</c>: the final weights of <paramref name="stage"/>, finished for <paramref name="seed"/>, as a PyTorch
    /// state_dict with torchvision / HuggingFace names at <paramref name="outPath"/> (.safetensors or .pth), plus the
    /// manifest that rebuilds the network (<see cref="ModelExport"/>). Reads the stage folder only: safe during a run.
    /// </summary>
    public ExportManifest Export(string stage, long seed, string outPath)
    {
        if (!OnnxExport.IsOnnx(outPath)) ModelExport.CheckPath(outPath);
        if (stage == "wide" && config.Wide?.Import is { } imported)
            throw new WtnException($"--stage wide: the wide network is imported from {imported}, which is a PyTorch state_dict already");
        var declared = DeclaredStages(config);
        if (!declared.Contains(stage))
            throw new WtnException($"--stage: '{stage}' is not a stage of experiment {config.Name}; its stages: {string.Join(", ", declared)}");
        var seedDir = SeedDir(ExperimentDir, seed);
        if (!Directory.Exists(seedDir))
        {
            var present = SeedsPresent();
            throw new WtnException($"--seed {seed}: {seedDir} does not exist; " +
                                   (present.Count > 0 ? $"seeds run so far: {string.Join(", ", present)}" : $"nothing has run yet under {ExperimentDir}"));
        }
        var dir = Path.Combine(seedDir, stage);
        if (!StageSummary.IsDone(dir))
            throw new WtnException($"--stage {stage}: seed {seed} has not finished it ({dir} has no {StageSummary.FileName}); wtn report shows where it stands");
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        return ExportStage(stage, seed, outPath, dataset);
    }

    /// <summary>Seeds with a folder under the experiment (seed-S), in order.</summary>
    List<long> SeedsPresent() => Directory.Exists(ExperimentDir)
        ? Directory.GetDirectories(ExperimentDir, "seed-*")
            .Select(d => long.TryParse(Path.GetFileName(d)["seed-".Length..], out var s) ? s : (long?)null)
            .OfType<long>().Order().ToList()
        : [];

    /// <summary>One finished stage's export, with the experiment's data already open (its model config and input).</summary>
    ExportManifest ExportStage(string stage, long seed, string outPath, IExperimentDataset dataset)
    {
        var dir = Path.Combine(SeedDir(ExperimentDir, seed), stage);
        var summary = StageSummary.TryLoad(dir) ?? throw new WtnException($"{dir}: stage {stage} is not done");
        var data = DownstreamStage.IsDownstream(stage) ? ((MaskedLmExperimentDataset)dataset).Downstream() : dataset;
        var modelConfig = data.ModelConfig(config.Models.Spec(summary.Model), summary.Model);
        using var model = ModelFactory.Create(modelConfig);
        model.load(Path.Combine(dir, summary.Weights));
        var source = $"experiment {config.Name}, seed {seed}, stage {stage}";
        // NAME.onnx comes with NAME.safetensors: the manifest rebuilds the network from the state_dict, and ONNX
        // Runtime has checked the graph against it before OnnxExport returns.
        bool onnx = OnnxExport.IsOnnx(outPath);
        var weightsPath = onnx ? OnnxExport.WeightsPath(outPath) : outPath;
        using var scope = NewDisposeScope();
        var manifest = onnx
            ? OnnxExport.Write(model, modelConfig, outPath, data.ExportInput(), data.ExampleInput(2, CPU), source, summary.LastTop1, summary.BestTop1).Manifest
            : ModelExport.Write(model, modelConfig, outPath, data.ExportInput(), source, summary.LastTop1, summary.BestTop1);
        // The file is read back as a user would (manifest, checksum, strict load) and must give the same outputs.
        try
        {
            using var back = ModelExport.Load(ModelExport.ManifestPath(weightsPath));
            model.eval();
            var input = data.ExampleInput(2, CPU);
            using (no_grad())
                if (!model.call(input).eq(back.call(input)).all().item<bool>())
                    throw new WtnException($"{weightsPath}: the network read back from the exported file gives other outputs than stage {stage}'s weights; please report this");
        }
        catch
        {
            ModelExport.Delete(weightsPath); // a file that does not give the stage's network back must not stay
            if (onnx && File.Exists(outPath)) File.Delete(outPath);
            throw;
        }
        return manifest;
    }

    /// <summary>
    /// <c>wtn export --stage all</c>: every finished stage of every seed folder under the experiment, each as
    /// <paramref name="outDir"/>/seed-S-STAGE<paramref name="extension"/> plus its manifest (<see cref="Export"/>).
    /// </summary>
    public IReadOnlyList<ExportManifest> ExportAll(string outDir, string extension = ".safetensors")
    {
        if (!ModelExport.WeightExtensions.Contains(extension) && !OnnxExport.IsOnnx(extension))
            throw new WtnException($"--format: '{extension.TrimStart('.')}' is not one of {string.Join(", ", ModelExport.WeightExtensions.Append(".onnx").Select(e => e.TrimStart('.')))}");
        var done = SeedsPresent().SelectMany(seed => DeclaredStages(config).Select(stage => (seed, stage)))
            .Where(x => StageSummary.IsDone(Path.Combine(SeedDir(ExperimentDir, x.seed), x.stage))).ToList();
        if (done.Count == 0)
            throw new WtnException($"{ExperimentDir}: no stage has finished yet, so there is nothing to export; wtn report shows where the stages stand");
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log); // once for every stage
        return done.Select(x => ExportStage(x.stage, x.seed, Path.Combine(outDir, $"seed-{x.seed}-{x.stage}{extension}"), dataset)).ToList();
    }

    /// <summary>Every seed's finished stages, as their stage.json files say (whichever process ran them).</summary>
    List<IReadOnlyDictionary<string, StageSummary>> Finished(int seeds)
    {
        var perSeed = new List<IReadOnlyDictionary<string, StageSummary>>();
        for (int i = 0; i < seeds; i++)
        {
            var seedDir = SeedDir(ExperimentDir, config.SeedBase + i);
            var done = new Dictionary<string, StageSummary>();
            if (config.Wide?.Import is { } file) done["wide"] = Imported(file);
            foreach (var stage in DeclaredStages(config))
                if (StageSummary.TryLoad(Path.Combine(seedDir, stage)) is { } s) done[stage] = s;
            perSeed.Add(done);
        }
        return perSeed;
    }

    IReadOnlyDictionary<string, ModelCostRow>? costs;
    IReadOnlyList<StageWork>? work;

    ExperimentResult WriteReport(int seeds, IExperimentDataset dataset)
    {
        if (costs is null)
        {
            // Another process of this run training now slows the latency down: the row says so.
            bool contended = Training(seeds).Any(p => p != Environment.ProcessId);
            costs = ModelCost.Measure(config, dataset, device, config.Report.LatencyRepeats)
                .ToDictionary(kv => kv.Key, kv => kv.Value with { Contended = contended });
        }
        work ??= Pending(seeds, dataset, costliestFirst: false, default).Select(Work).ToList();
        var status = ExperimentStatus.Read(config, ExperimentDir, seeds);
        var result = ExperimentResult.Build(config, Finished(seeds), costs, ExperimentDir, dataset) with
        {
            Seeds = seeds,
            Status = status,
            Left = ExperimentStatus.TimeLeft(status, work, DateTime.UtcNow),
        };
        ExperimentReport.Write(result, ExperimentDir);
        return result;
    }

    /// <summary>One stage of one seed as the scheduler sees it: the stages it needs, and how to build its model and run it.</summary>
    sealed record PlannedStage(StageContext Ctx, string Name, IReadOnlyList<string> Needs, double Cost, Func<(StagedModel Model, Func<StageSummary> Run)> Prepare)
    {
        /// <summary>The networks its train run runs, e.g. "thin+wide" (<see cref="StageWork.Kind"/>).</summary>
        public string? Kind { get; init; }
        /// <summary>Estimated work of the stage's last training run, the one named "train" (null: it has none).</summary>
        public double? TrainCost { get; init; } = Cost;
        public string Dir => Ctx.StageDir(Name);
        public bool Done => StageSummary.IsDone(Dir);
        public bool Ready => Needs.All(n => StageSummary.IsDone(Ctx.StageDir(n)));
        public override string ToString() => $"seed {Ctx.Seed}: {Name}";
    }

    readonly List<string> ranHere = [];

    /// <summary>
    /// Runs every pending stage of every seed, in declared order, that no other process holds (a stage's lock is
    /// STAGE/.lock), once the stages it needs are done; waits while the only stages left are held elsewhere or need
    /// one that is. Alone, this is the plain sequential order. With <paramref name="costliestFirst"/> (several
    /// processes) the free stage with the most estimated work ahead of it (its own and that of the longest chain of
    /// stages waiting for it) goes first, so that no process is left alone with a long stage or chain at the end
    /// while the others idle. Returns whether another process ran or held a stage.
    /// </summary>
    bool Schedule(int seeds, IExperimentDataset dataset, bool costliestFirst, CancellationToken cancel)
    {
        share = budget is { } b ? new ThreadShare(b, () => Training(seeds), log) { Interval = ThreadCheckInterval } : null;
        var plan = Pending(seeds, dataset, costliestFirst, cancel);
        var pending = plan.ToList();
        foreach (var s in pending.Where(s => s.Done)) log?.Report($"{s} already done, skipped");
        pending.RemoveAll(s => s.Done);
        bool shared = false;
        string waitingFor = "";
        while (pending.Count > 0)
        {
            cancel.ThrowIfCancellationRequested();
            var held = new List<PlannedStage>();
            PlannedStage? ran = null;
            foreach (var s in pending)
            {
                if (s.Done)
                {
                    log?.Report($"{s} done by another process");
                    ran = s;
                    shared = true;
                    break;
                }
                if (!s.Ready) continue;
                using var stageLock = RunLock.TryAcquire(s.Dir);
                if (stageLock is null)
                {
                    held.Add(s);
                    continue;
                }
                if (!s.Done) Execute(s, seeds, dataset);
                ran = s;
                break;
            }
            if (ran is not null)
            {
                pending.Remove(ran);
                // What the stage took (and what the others are taking) prices the rest better than the estimate did.
                if (costliestFirst) pending = MostWorkAheadFirst(pending, plan, seeds);
                waitingFor = "";
                continue;
            }
            shared = true;
            var now = string.Join(", ", held);
            if (now != waitingFor) log?.Report($"waiting for another process: {(held.Count > 0 ? now : "nothing it can start")}");
            waitingFor = now;
            cancel.WaitHandle.WaitOne(PollInterval);
        }
        return shared;
    }

    ThreadShare? share;

    /// <summary>The live processes on this machine holding a stage lock of this run: the ones training.</summary>
    IEnumerable<int> Training(int seeds)
    {
        foreach (var (_, _, dir) in StageDirs(config, ExperimentDir, seeds))
            if (RunLock.HolderProcess(dir) is { } pid)
                yield return pid;
    }

    /// <summary>Every stage of every seed in the order the scheduler tries them: declared, or the most work ahead first.</summary>
    List<PlannedStage> Pending(int seeds, IExperimentDataset dataset, bool costliestFirst, CancellationToken cancel)
    {
        var pending = new List<PlannedStage>();
        var watched = share?.Watch(progress) ?? progress;
        for (int i = 0; i < seeds; i++)
        {
            long seed = config.SeedBase + i;
            var seedProgress = seeds > 1 && watched is not null ? new SeedProgress(seed, watched) : watched;
            pending.AddRange(Plan(new StageContext(config, seed, SeedDir(ExperimentDir, seed), device, dataset, seedProgress, log), cancel));
        }
        return costliestFirst ? MostWorkAheadFirst(pending, pending, seeds) : pending;
    }

    /// <summary>
    /// <paramref name="stages"/> ordered by the work ahead of each: its own plus the most of any of them that needs it,
    /// priced at the pace measured for its kind in the run folder now (multiply-accumulates alone until something was
    /// measured), from the stages of the whole plan (<paramref name="plan"/>: the finished ones give their paces).
    /// Stable: declared order among equals.
    /// </summary>
    List<PlannedStage> MostWorkAheadFirst(IReadOnlyList<PlannedStage> stages, IReadOnlyList<PlannedStage> plan, int seeds)
    {
        var priced = ExperimentStatus.Priced(ExperimentStatus.Read(config, ExperimentDir, seeds), [.. plan.Select(Work)]);
        var ahead = new Dictionary<(long, string), double>();
        double Ahead(PlannedStage s)
        {
            if (ahead.TryGetValue((s.Ctx.Seed, s.Name), out var a)) return a;
            return ahead[(s.Ctx.Seed, s.Name)] = priced(Work(s)) +
                stages.Where(d => d.Ctx.Seed == s.Ctx.Seed && d.Needs.Contains(s.Name)).Select(Ahead).DefaultIfEmpty(0).Max();
        }
        return [.. stages.OrderByDescending(Ahead)];
    }

    static StageWork Work(PlannedStage s) => new(s.Ctx.Seed, s.Name, s.Cost, s.TrainCost, s.Kind) { Needs = s.Needs };

    /// <summary>The order in which this process would try the stages ("seed S: STAGE"), alone or beside others.</summary>
    internal IReadOnlyList<string> StageOrder(int seeds, bool costliestFirst)
    {
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        return Pending(seeds, dataset, costliestFirst, default).Select(s => s.ToString()).ToList();
    }

    /// <summary>Each stage's estimated work (multiply-accumulates over the whole stage), in declared order, for the first seed.</summary>
    internal IReadOnlyList<(string Stage, double Cost)> StageCosts()
    {
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        return Pending(1, dataset, costliestFirst: false, default).Select(s => (s.Name, s.Cost)).ToList();
    }

    /// <summary>Runs one stage (this process holds its lock), saves its weights and summary, and rewrites the interim report.</summary>
    void Execute(PlannedStage s, int seeds, IExperimentDataset dataset)
    {
        share?.Rebalance(raise: false);
        var (model, run) = s.Prepare();
        using (model)
        {
            var summary = run();
            summary.Save(s.Dir, model);
            ranHere.Add(s.ToString());
            log?.Report($"{s} done in {summary.WallSeconds:F0} s" + (summary.LastTop1 is { } t ? $", test top-1 {100 * t:F2}%" : ""));
        }
        var interim = WriteReport(seeds, dataset);
        if (interim.Partial)
            log?.Report($"interim report: {Path.Combine(ExperimentDir, "report.md")} ({interim.StagesDone} of {interim.Status.Count} stages done" +
                        (interim.Left is { Wall: { } wall } left ? $"; about {StageStatus.Duration(wall)} of wall time left on the {(left.Processes == 1 ? "process" : $"{left.Processes} processes")} training now" : "") + ")");
    }

    /// <summary>
    /// One seed's stages in declared order. A stage's model is built when it runs; what it starts from (the wide
    /// network, the imitation stage's thin network, a pretrained encoder) is loaded from the finished stage's weights,
    /// so any process can run any stage once its prerequisites are done, with the same result. Prerequisites are
    /// loaded before the stage's own model is built: the model's seeded initialisation is then the last draw from the
    /// global generator before the stage, whichever process runs it.
    /// </summary>
    List<PlannedStage> Plan(StageContext ctx, CancellationToken cancel)
    {
        var plan = new List<PlannedStage>();
        StagedModel? wide = null;
        StagedModel Wide() => wide ??= LoadWide(ctx);
        string[] needsWide = config.Wide is { Import: null } ? ["wide"] : [];
        void Add(string name, string[] needs, string kind, double cost, Func<(StagedModel, Func<StageSummary>)> prepare, double? trainCost = null) =>
            plan.Add(new PlannedStage(ctx, name, needs, cost, prepare) { TrainCost = trainCost ?? cost, Kind = kind });
        void AddWithoutTrainRun(string name, string[] needs, string kind, double cost, Func<(StagedModel, Func<StageSummary>)> prepare) =>
            plan.Add(new PlannedStage(ctx, name, needs, cost, prepare) { TrainCost = null, Kind = kind });
        // Estimated work: training steps x (3 x the trained network's MACs + the teacher's forward MACs), per example.
        var summaries = new Dictionary<string, ModelSummary>();
        ModelSummary Size(string key)
        {
            if (summaries.TryGetValue(key, out var m)) return m;
            return summaries[key] = ModelSummary.Of(ctx.Dataset.ModelConfig(config.Models.Spec(key), key));
        }
        double Steps(TrainerSettings t) => ctx.Settings(t) is var x && x.Steps > 0 ? x.Steps : (double)x.Epochs * ctx.TrainData.BatchesPerEpoch;
        double Cost(TrainerSettings t, string trained, string? teacher = null) => Steps(t) * (3.0 * Size(trained).Macs + (teacher is null ? 0 : Size(teacher).Macs));
        // Stage 2, per unit's run: each step runs the wide network up to the unit's point (taken as the same share of its
        // blocks' MACs as the thin network's up to there), the thin network up to the unit (only the unit with teacher
        // input), and backward through the unit (2 x its MACs; through the earlier blocks too when they train).
        // With wide_cache_mb, the share of the batches whose activations fit is run through the whole wide network
        // once, by the first unit, and read from disk by the others.
        double ImitationCost(ImitationStageConfig im)
        {
            var thin = Size("thin").Blocks.Select(b => (double)b.Macs).ToList();
            double wide = Size("wide").Blocks.Sum(b => (double)b.Macs), total = thin.Sum(), perStep = 0, steps = Steps(im.Train);
            double cached = 0;
            if (im.WideCacheMb > 0)
            {
                double perExample = Size("wide").Blocks.Sum(b => b.Shape.Aggregate(4.0, (a, d) => a * d));
                cached = Math.Min(1, im.WideCacheMb * (double)(1L << 20) / (steps * ctx.TrainData.BatchSize * perExample));
            }
            foreach (var u in LayerwiseImitation.Group(Size("thin").Blocks.Select(b => b.Name).ToList(), im.Unit))
            {
                double unit = thin.Skip(u.First).Take(u.Count).Sum(), end = thin.Take(u.Last + 1).Sum();
                bool teacherInput = im.Input == ImitationInput.Teacher && u.First > 0;
                bool earlierTrain = !teacherInput && im.EarlierBlocksLrFactor > 0;
                double wideForward = (u.First == 0 ? cached * wide : 0) + (1 - cached) * wide * end / total;
                perStep += wideForward + (teacherInput ? unit : end) + 2 * (earlierTrain ? end : unit);
            }
            return steps * perStep;
        }

        if (config.Wide is { Import: null } w)
            Add("wide", [], "wide", Cost(w.Train, "wide"), () =>
            {
                var m = ctx.Build("wide");
                return (m, () => StandardStage.Run(ctx, "wide", "wide", m, w.Train, cancel));
            });
        if (config.Imitation is { } im)
        {
            AddWithoutTrainRun("imitation", needsWide, "imitation", ImitationCost(im), () =>
            {
                var teacher = Wide();
                var thin = ctx.Build("thin");
                return (thin, () => ImitationStage.Run(ctx, thin, teacher, im, cancel));
            });
            if (config.Finetune is { } ft)
                Add("finetune", ["imitation"], ft.Alpha > 0 ? "thin+wide" : "thin", Cost(ft.Train, "thin", ft.Alpha > 0 ? "wide" : null), () =>
                {
                    var teacher = ft.Alpha > 0 ? Wide() : null;
                    var thin = Load(ctx, "imitation", "thin");
                    return (thin, () => DistillStage.Run(ctx, "finetune", thin, teacher, ft, cancel));
                });
        }
        if (config.Standard is { } st)
            Add("standard", [], "thin", Cost(st.Train, "thin"), () =>
            {
                var m = ctx.Build("thin");
                return (m, () => StandardStage.Run(ctx, "standard", "thin", m, st.Train, cancel));
            });
        if (config.StandardLong is { } sl)
            Add("standard_long", [], "thin", Cost(sl.Train, "thin"), () =>
            {
                var m = ctx.Build("thin");
                return (m, () => StandardStage.Run(ctx, "standard_long", "thin", m, sl.Train, cancel));
            });
        if (config.Kd is { } kd)
            Add("kd", needsWide, "thin+wide", Cost(kd.Train, "thin", "wide"), () =>
            {
                var teacher = Wide();
                var m = ctx.Build("thin");
                return (m, () => DistillStage.Run(ctx, "kd", m, teacher, kd, cancel));
            });
        if (config.Fitnets is { } fn)
            Add("fitnets", needsWide, "thin+wide", Cost(fn.Hint, "thin", "wide") + Cost(fn.Train, "thin", "wide"), () =>
            {
                var teacher = Wide();
                var m = ctx.Build("thin");
                return (m, () => FitNetsStage.Run(ctx, m, teacher, fn, cancel));
            }, trainCost: Cost(fn.Train, "thin", "wide"));
        if (config.Deeper is { } dp)
            Add("deeper", [], "deeper", Cost(dp.Train, "deeper"), () =>
            {
                int thinBlocks;
                using (var thin = ctx.Build("thin")) thinBlocks = thin.BlockCount;
                var m = ctx.Build("deeper");
                if (m.BlockCount <= thinBlocks)
                {
                    m.Dispose();
                    throw new WtnException($"models.deeper ({config.Models.Deeper!.Name}) must have more blocks than models.thin ({config.Models.Thin.Name})");
                }
                return (m, () => StandardStage.Run(ctx, "deeper", "deeper", m, dp.Train, cancel));
            });
        if (config.Downstream is { } ds)
        {
            // Text experiments: every pretrained thin/deeper network (from its finished stage's weights) fine-tuned on
            // IMDB as stage downstream_STAGE, with the same recipe for all.
            StageContext? down = null;
            StageContext Down() => down ??= new StageContext(config, ctx.Seed, ctx.SeedDir, device, ((MaskedLmExperimentDataset)ctx.Dataset).Downstream(), ctx.Progress, log);
            var declared = plan.Select(p => p.Name).ToList();
            foreach (var (stage, key) in DownstreamStage.Pretrained.Where(p => declared.Contains(p.Stage)))
            {
                var name = DownstreamStage.NameFor(stage);
                plan.Add(new PlannedStage(ctx, name, [stage], Cost(ds.Train, key), () =>
                {
                    var classifier = Down().Build(key);
                    return (classifier, () =>
                    {
                        using var pretrained = Load(ctx, stage, key);
                        return DownstreamStage.Run(Down(), name, key, classifier, pretrained, ds, cancel);
                    });
                }) { Kind = $"downstream {key}" });
            }
        }
        return plan;
    }

    /// <summary>A fresh <paramref name="key"/> model with the final weights of the finished <paramref name="stage"/>.</summary>
    static StagedModel Load(StageContext ctx, string stage, string key)
    {
        var dir = ctx.StageDir(stage);
        var summary = StageSummary.TryLoad(dir) ?? throw new WtnException($"{dir}: stage {stage} is not done");
        var m = ctx.Build(key);
        m.load(Path.Combine(dir, summary.Weights));
        return m;
    }

    /// <summary>The wide network: imported, or the finished stage 1's.</summary>
    StagedModel LoadWide(StageContext ctx)
    {
        if (config.Wide!.Import is not { } file) return Load(ctx, "wide", "wide");
        var wide = ctx.Build("wide");
        Weights.Load(wide, file); // torchvision / HuggingFace names, .pth/.pt/.bin or .safetensors, strict
        return wide;
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

/// <summary>Processes helping a <see cref="ExperimentRunner.Run"/> (<c>wtn run --jobs N</c>), told how the run ended.</summary>
public interface IRunHelpers
{
    /// <summary>
    /// Every stage is done: wait for the helpers, which exit on their own once they see it, and give the calling thread
    /// the run's threads again (the final report measures latency on them).
    /// </summary>
    void Finished();

    /// <summary>The run failed or was cancelled: stop the helpers now (they checkpoint and exit).</summary>
    void Stop();
}
