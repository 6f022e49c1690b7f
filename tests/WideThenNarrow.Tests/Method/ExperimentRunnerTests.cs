using System.Text.Json;
using System.Text.RegularExpressions;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Reporting;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Method;

/// <summary>The whole pipeline on a small stratified Fashion-MNIST subset with small residual MLPs (seconds).</summary>
// Bit-exact comparisons need the global torch RNG to themselves: no test may draw from it concurrently.
[Collection("torch-rng")]
public class ExperimentRunnerTests(Xunit.Abstractions.ITestOutputHelper output)
{
    internal static TrainerSettings Budget(int epochs = 0, long steps = 0, double lr = 0.05, double wd = 5e-4) =>
        new()
        {
            Optimizer = new OptimizerConfig
            {
                Lr = lr,
                Momentum = 0.9,
                WeightDecay = wd,
            },
            Schedule = new ScheduleConfig { Name = ScheduleKind.Cosine },
            Epochs = epochs,
            Steps = steps,
            Logging = new LoggingConfig { EverySteps = 2, Tensorboard = false },
            Checkpoint = new CheckpointConfig { EverySteps = 0, KeepLast = 1 },
        };

    internal static ExperimentConfig Tiny(string name, bool baselines) =>
        new()
        {
            Name = name,
            Data = new DataConfig
            {
                BatchSize = 50,
                EvalBatchSize = 100,
                TrainPerClass = 40,
                TestPerClass = 20,
                ValPerClass = 20,
                CropPadding = 0,
                HorizontalFlip = false,
            },
            Models = new ExperimentModels
            {
                Thin = new ModelSpec
                {
                    Name = "mlp",
                    Width = 32,
                    Depth = 3,
                    Residual = true,
                },
                Wide = new ModelSpec
                {
                    Name = "mlp",
                    Width = 32,
                    Depth = 3,
                    Residual = true,
                    Widen = "inner=4",
                },
                Deeper = baselines
                    ? new ModelSpec
                    {
                        Name = "mlp",
                        Width = 32,
                        Depth = 5,
                        Residual = true,
                    }
                    : null,
            },
            Wide = new WideStageConfig { Train = Budget(epochs: 3) },
            Imitation = new ImitationStageConfig
            {
                Train = Budget(steps: 6, wd: 0) with { Eval = new EvalConfig { EveryEpochs = 0 } },
            },
            Finetune = new DistillStageConfig { Alpha = 0.5, Train = Budget(epochs: 2, lr: 0.02) },
            Standard = new StandardStageConfig { Train = Budget(epochs: 3) },
            Baselines = baselines
                ? new Dictionary<string, object>
                {
                    ["kd"] = new DistillStageConfig { Train = Budget(epochs: 1) },
                    ["fitnets"] = new FitNetsStageConfig { Hint = Budget(steps: 4, wd: 0), Train = Budget(epochs: 1) },
                    ["deeper"] = new StandardStageConfig { Train = Budget(epochs: 1) },
                }
                : new Dictionary<string, object>(),
            Report = new ReportConfig { LatencyRepeats = 3 },
        };

    ExperimentRunner Runner(
        ExperimentConfig c,
        string runs,
        IProgress<TrainingProgress>? progress = null,
        List<string>? log = null
    ) =>
        new(
            c,
            runs,
            Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!,
            CPU,
            progress,
            log is null ? null : new ListLog(log)
        );

    [Fact]
    public void Runs_every_declared_stage_writes_the_report_and_skips_finished_stages()
    {
        var runs = TestData.NewTempFolder("run");
        try
        {
            var c = Tiny("all", baselines: true);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var first = new List<string>();
            var result = Runner(c, runs, log: first).Run();
            foreach (var l in first)
                output.WriteLine(l);
            output.WriteLine($"total {clock.Elapsed.TotalSeconds:F1} s");
            var dir = Path.Combine(runs, "all");
            foreach (var f in new[] { "report.md", "results.json", "accuracy.png", "imitation.png", "compute.png" })
                Assert.True(new FileInfo(Path.Combine(dir, f)).Length > 0, f);
            Assert.Contains("](compute.png)", File.ReadAllText(Path.Combine(dir, "report.md")));
            var methods = result.Methods.Select(m => m.Method).ToList();
            const string warm = "thin: after imitation only";
            Assert.Equal(
                [
                    "thin: go wide, then narrow",
                    warm,
                    "thin: standard",
                    "thin: kd",
                    "thin: fitnets",
                    "deeper: standard",
                    "wide (teacher)",
                ],
                methods
            );
            Assert.All(result.Methods.Where(m => m.Method != warm), m => Assert.InRange(m.TestTop1!.Mean, 0.3, 1.0));
            // The warm start is tested once too, before fine-tuning.
            Assert.InRange(result.Methods.Single(m => m.Method == warm).TestTop1!.Mean, 0.0, 1.0);
            var imitation = result.PerSeed[0]["imitation"];
            Assert.Equal(3, imitation.Blocks!.Count);
            Assert.True(imitation.HeadCopied);
            Assert.All(imitation.Blocks, b =>
                Assert.True(b.LastLoss < b.FirstLoss, $"block {b.Block}: {b.FirstLoss} -> {b.LastLoss}")
            );
            var report = File.ReadAllText(Path.Combine(dir, "report.md"));
            Assert.Contains("| thin: go wide, then narrow |", report);
            Assert.DoesNotContain("Interim report", report);
            // The method against every other row; with one seed, the plain difference of the final top-1.
            Assert.Equal(methods.Skip(1), result.Comparisons.Select(x => x.Against));
            var vsStandard = result.Comparisons.Single(x => x.Against == "thin: standard");
            Assert.Equal(
                result.PerSeed[0]["finetune"].TestTop1!.Value - result.PerSeed[0]["standard"].TestTop1!.Value,
                vsStandard.Difference.Mean,
                12
            );
            Assert.Equal(vsStandard.Difference.Mean > 0 ? 1 : 0, vsStandard.SeedsBetter);
            Assert.Contains("| thin: go wide, then narrow | thin: standard | ", report);
            // The declared stage list (what `wtn report` looks for) is exactly what the run made, and all are done.
            var seedDir = Path.Combine(dir, "seed-0");
            Assert.Equal(
                ExperimentRunner.DeclaredStages(c).Order(),
                Directory.GetDirectories(seedDir).Select(Path.GetFileName).Order()!
            );
            Assert.Equal(ExperimentRunner.DeclaredStages(c), result.Status.Select(s => s.Stage));
            Assert.All(result.Status, s => Assert.Equal(StageState.Done, s.State));
            // An interim report after each of the first six stages; after the seventh the report is final.
            Assert.Equal(6, first.Count(l => l.StartsWith("interim report:", StringComparison.Ordinal)));
            // With finished stages to take paces from, it says how long the rest should take on the process training.
            Assert.Contains(first, l =>
                Regex.IsMatch(l, @"\(6 of 7 stages done; about .+ of wall time left on the process training now\)$")
            );
            Assert.False(result.Partial);
            // Every stage records where it trained: this process, once per trainer run (one per block in stage 2).
            var here = WideThenNarrow.Runtime.Machine.Current();
            Assert.Equal([new MachineUse(here, 3)], imitation.Machines);
            Assert.Equal([new MachineUse(here, 1)], result.PerSeed[0]["finetune"].Machines);
            Assert.Equal(here, Assert.Single(result.Machines).Machine);
            Assert.Contains($"Trained on one machine: {here.Describe()} (7 stages, ", report);

            // A second run finds every stage done: it trains nothing and reports the same numbers.
            var log = new List<string>();
            var again = Runner(c, runs, log: log).Run();
            Assert.Equal(7, log.Count(l => l.Contains("already done")));
            Assert.Equal(result.Methods.Select(m => m.TestTop1!.Mean), again.Methods.Select(m => m.TestTop1!.Mean));
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void Interrupted_imitation_and_finetuning_resume_to_the_same_weights()
    {
        var runs = TestData.NewTempFolder("resume");
        try
        {
            var c = Tiny("resume", baselines: false) with { Standard = null };
            Runner(c with { Name = "straight" }, runs).Run();

            foreach (var (stage, step) in new[] { ("imitate 2/3", 3L), ("finetune", 5L) })
            {
                using var cts = new CancellationTokenSource();
                var stopper = new StopAt(stage, step, cts);
                Assert.ThrowsAny<OperationCanceledException>(() => Runner(c, runs, stopper).Run(cancel: cts.Token));
                Assert.True(stopper.Fired, stage);
            }
            var log = new List<string>();
            Runner(c, runs, log: log).Run();
            Assert.Contains(log, l => l.StartsWith("finetune: resuming", StringComparison.Ordinal));
            // The resumes are sessions of their own: block 2 twice, stage 3 twice.
            var seed = Path.Combine(runs, "resume", "seed-0");
            Assert.Equal(4, StageSummary.TryLoad(Path.Combine(seed, "imitation"))!.Machines!.Single().Sessions);
            var finetune = WideThenNarrow.Training.SessionLog.ReadAll(Path.Combine(seed, "finetune"));
            Assert.Equal([false, true], finetune.Select(x => x.Resumed));
            Assert.Equal(0, finetune[0].Step);
            Assert.True(finetune[1].Step > 0);

            var a = Final(runs, "straight", c);
            var b = Final(runs, "resume", c);
            foreach (var (name, t) in a.state_dict())
                Assert.True(TestSteps.BitIdentical(t, b.state_dict()[name]), name);
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void An_interrupted_run_leaves_an_interim_report_and_the_status_of_every_stage()
    {
        var runs = TestData.NewTempFolder("interim");
        try
        {
            var c = Tiny("interim", baselines: false);
            using (var cts = new CancellationTokenSource())
            {
                var stopper = new StopAt("finetune", 3, cts);
                Assert.ThrowsAny<OperationCanceledException>(() => Runner(c, runs, stopper).Run(cancel: cts.Token));
                Assert.True(stopper.Fired);
            }
            // Written after the imitation stage finished, before fine-tuning began.
            var dir = Path.Combine(runs, "interim");
            var report = File.ReadAllText(Path.Combine(dir, "report.md"));
            Assert.Contains("Interim report", report);
            Assert.Contains("2 of 4 stages done", report);
            Assert.Contains("| thin: after imitation only |", report);
            Assert.Contains("| wide (teacher) |", report);
            Assert.DoesNotContain("| thin: go wide, then narrow |", report);
            Assert.Contains("| 0 | standard | pending |", report);

            // The status as another process sees it (the trainer's progress.json of the interrupted run).
            var status = ExperimentStatus.Read(c, dir, 1).ToDictionary(s => s.Stage);
            // `wtn report` now estimates the training left: fine-tuning's own time left, and the standard run's from
            // its work at fine-tuning's pace.
            var interim = Runner(c, runs).Report();
            Assert.Equal(["finetune"], interim.Left!.MeasuredStages);
            Assert.Equal(1, interim.Left.EstimatedStages);
            Assert.Equal(status["finetune"].Progress!.EtaSeconds, interim.Left.Measured);
            Assert.True(interim.Left.Estimated > 0);
            Assert.Matches(
                @"Left: about \S+ (s|min|h) of training on one process: \S+ (s|min|h) measured by the started stages at their last recorded speed \(finetune\); \S+ (s|min|h) estimated for one stage or run not started",
                File.ReadAllText(Path.Combine(dir, "report.md")).Split('\n').Single(l => l.StartsWith("Left:"))
            );
            Assert.Equal(StageState.Done, status["wide"].State);
            Assert.Equal(StageState.Done, status["imitation"].State);
            Assert.Equal(StageState.Pending, status["standard"].State);
            var ft = status["finetune"];
            Assert.Equal(StageState.Started, ft.State);
            Assert.Equal("train", ft.Run);
            Assert.Equal(3, ft.Progress!.Step);
            Assert.Equal(16, ft.Progress.TotalSteps); // 2 epochs of 400 examples in batches of 50
            Assert.Equal(2, ft.Progress.Epochs);
            Assert.Contains("epoch 1/2, step 3/16 (19 %)", ft.Describe());
            // Nobody holds it (the run was stopped); a live process holding its lock is named.
            Assert.Null(ft.Holder);
            Assert.EndsWith("; stopped (resumes when the run starts again)", ft.Describe());
            using (RunLock.Acquire(Path.Combine(dir, "seed-0", "finetune")))
                Assert.EndsWith(
                    $"; running in process {Environment.ProcessId} on {Environment.MachineName}",
                    ExperimentStatus.Read(c, dir, 1).Single(s => s.Stage == "finetune").Describe()
                );
            // A note left by a process that is gone (killed) does not count.
            File.WriteAllText(
                Path.Combine(dir, "seed-0", "finetune", ".lock.owner"),
                $"process {int.MaxValue} on {Environment.MachineName}, since 2026-01-01 00:00:00 UTC"
            );
            Assert.Null(ExperimentStatus.Read(c, dir, 1).Single(s => s.Stage == "finetune").Holder);
            // So does one whose process id now belongs to a process started after the note was written (a reused id).
            File.WriteAllText(
                Path.Combine(dir, "seed-0", "finetune", ".lock.owner"),
                $"process {Environment.ProcessId} on {Environment.MachineName}, since 2000-01-01 00:00:00 UTC"
            );
            Assert.Null(ExperimentStatus.Read(c, dir, 1).Single(s => s.Stage == "finetune").Holder);
            // A run without progress.json (stopped before the trainer first wrote it): started, at no known position.
            File.Delete(Path.Combine(dir, "seed-0", "finetune", "train", RunProgressFile.FileName));
            var bare = ExperimentStatus.Read(c, dir, 1).Single(s => s.Stage == "finetune");
            Assert.Equal((StageState.Started, "train"), (bare.State, bare.Run));
            Assert.Null(bare.Progress);
            Assert.StartsWith("train: no progress recorded yet", bare.Describe());

            // `wtn report` (nothing runs): the same rows; a second seed's stages are all pending.
            var two = Runner(c, runs).Report(seeds: 2);
            Assert.Equal(["thin: after imitation only", "wide (teacher)"], two.Methods.Select(m => m.Method));
            Assert.All(two.Methods, m => Assert.Equal(1, m.SeedsDone));
            Assert.Equal(8, two.Status.Count);
            Assert.All(two.Status.Where(s => s.Seed == 1), s => Assert.Equal(StageState.Pending, s.State));
            Assert.Contains(
                "| thin: after imitation only (1 of 2 seeds) |",
                File.ReadAllText(Path.Combine(dir, "report.md"))
            );
            // Its progress.json gone, no started stage has a recorded speed: what is left (fine-tuning, standard and seed
            // 1's four stages) is estimated at the finished stages' paces, seed 1's wide and imitation at their kind's.
            Assert.Equal(
                (0.0, 6, 2, true),
                (two.Left!.Measured, two.Left.EstimatedStages, two.Left.SameKindStages, two.Left.MedianOfFinished)
            );
            Assert.Null(two.Left.Wall); // no process is training
            Assert.Matches(
                @"^Left: about .+ of training on one process: .+ estimated for 6 stages or runs not started, from their multiply-accumulates at the pace of started \(else finished\) stages training the same networks \(2\) or else the finished stages' median pace\. ",
                File.ReadAllText(Path.Combine(dir, "report.md")).Split('\n').Single(l => l.StartsWith("Left:"))
            );
            Assert.All(two.Methods, m => Assert.False(m.Cost.Contended));
            Assert.DoesNotContain("Measured while another", File.ReadAllText(Path.Combine(dir, "report.md")));
            // While another process of the run trains (its note on the fine-tuning stage names a live process), the
            // latencies are marked as contended.
            using (
                var other = System.Diagnostics.Process.Start(
                    new System.Diagnostics.ProcessStartInfo("sleep", "600") { UseShellExecute = false }
                )!
            )
            {
                File.WriteAllText(
                    Path.Combine(dir, "seed-0", "finetune", ".lock.owner"),
                    $"process {other.Id} on {Environment.MachineName}, since {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC"
                );
                var busy = Runner(c, runs).Report();
                other.Kill();
                other.WaitForExit();
                Assert.All(busy.Methods, m => Assert.True(m.Cost.Contended));
                Assert.Contains(
                    "Measured while another wtn process of this run was training",
                    File.ReadAllText(Path.Combine(dir, "report.md"))
                );
                File.Delete(Path.Combine(dir, "seed-0", "finetune", ".lock.owner"));
            }

            // Resumed to the end: a final report without the progress section.
            var done = Runner(c, runs).Run();
            Assert.False(done.Partial);
            var final = File.ReadAllText(Path.Combine(dir, "report.md"));
            Assert.DoesNotContain("Interim report", final);
            Assert.DoesNotContain("## Progress", final);
            Assert.Contains("| thin: go wide, then narrow |", final);
            Assert.Empty(Directory.GetFiles(dir, "*.tmp*"));
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void A_stage_another_process_is_training_stops_the_run_there_and_the_rerun_trains_it_once_it_is_free()
    {
        var runs = TestData.NewTempFolder("held");
        try
        {
            var c = Tiny("held", baselines: false); // wide, imitation, finetune, standard
            var seedDir = Path.Combine(runs, "held", "seed-0");
            var standardDir = Path.Combine(seedDir, "standard");
            // What a wtn run --only of the same stage beside this run does: hold the stage's lock (this one never trains it).
            using (var other = RunLock.TryAcquire(standardDir))
            {
                Assert.NotNull(other);
                var e = Assert.Throws<WtnException>(() => Runner(c, runs).Run());
                Assert.StartsWith(
                    $"{standardDir} is in use by another wtn process (process {Environment.ProcessId} on ",
                    e.Message
                );
                // The stages before it are done; standard was never begun here.
                foreach (var stage in new[] { "wide", "imitation", "finetune" })
                    Assert.True(File.Exists(Path.Combine(seedDir, stage, StageSummary.FileName)), stage);
                Assert.False(File.Exists(Path.Combine(standardDir, StageSummary.FileName)));
                Assert.False(Directory.Exists(Path.Combine(standardDir, "train")));
            }
            var log = new List<string>();
            var result = Runner(c, runs, log: log).Run();
            Assert.False(result.Partial);
            Assert.Equal(3, log.Count(l => l.EndsWith(" already done, skipped", StringComparison.Ordinal)));
            Assert.Equal(["standard"], log.Where(l => l.Contains(" done in ")).Select(l => l.Split(' ')[2]));
            Assert.Contains("| thin: standard |", File.ReadAllText(Path.Combine(runs, "held", "report.md")));
            Assert.Equal(
                ExperimentRunner.RunConfigFile,
                Path.GetFileName(Directory.GetFiles(Path.Combine(runs, "held"), "*.yaml").Single())
            );
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void Stage_2_is_estimated_cheaper_with_the_wide_activation_cache_as_far_as_it_holds()
    {
        var runs = TestData.NewTempFolder("costs");
        try
        {
            // The demo's experiment: its stage 2 caches the wide activations of all its batches.
            var demo = ExperimentConfig.Demo();
            double Imitation(int cacheMb) =>
                Runner(demo with { Imitation = demo.Imitation! with { WideCacheMb = cacheMb } }, runs)
                    .StageCosts()
                    .Single(s => s.Stage == "imitation")
                    .Cost;
            var costs = Runner(demo, runs).StageCosts().ToDictionary(s => s.Stage, s => s.Cost);
            double none = Imitation(0),
                small = Imitation(1),
                all = Imitation(1 << 20);
            output.WriteLine(
                $"demo stage 2 / thin standard: {costs["imitation"] / costs["standard"]:F3} with its cache ({demo.Imitation!.WideCacheMb} MB), "
                    + $"{none / costs["standard"]:F3} without, {small / costs["standard"]:F3} with 1 MB"
            );
            // Without a cache every unit runs the wide network up to its point; with all batches cached it runs once.
            Assert.True(none > small && small > all, $"{none} {small} {all}");
            Assert.Equal(all, costs["imitation"]);
            Assert.InRange(small, 0.9 * none, none); // 1 MB holds a few batches only
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void With_jobs_the_stage_with_the_most_work_ahead_goes_first()
    {
        var c = ConfigLoader.Load<ExperimentConfig>(
            Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-resnet.yaml")
        );
        var runs = TestData.NewTempFolder("order");
        var runner = Runner(c, runs);
        // --jobs: the wide networks first (their own 30 epochs plus the stages that wait for them), then the deeper
        // ResNet-56; the thin standard baseline, the least work, last; stage 2 before the fine-tuning it gates.
        var order = runner.StageOrder(2).Select(s => s.Replace("seed-", "seed ").Replace("/", ": ")).ToList();
        Assert.Equal(2 * ExperimentRunner.DeclaredStages(c).Count, order.Count); // stage 2 with student input: one process
        output.WriteLine(string.Join(", ", order));
        var costs = runner.StageCosts();
        output.WriteLine(
            "estimated work relative to the thin standard run: "
                + string.Join(
                    ", ",
                    costs.Select(s => $"{s.Stage} {s.Cost / costs.Single(x => x.Stage == "standard").Cost:F2}")
                )
        );
        Assert.Equal(["seed 0: wide", "seed 1: wide", "seed 0: deeper", "seed 1: deeper"], order.Take(4));
        Assert.Equal(["seed 0: standard", "seed 1: standard"], order.TakeLast(2));
        foreach (var seed in new[] { 0, 1 })
        {
            Assert.True(order.IndexOf($"seed {seed}: imitation") < order.IndexOf($"seed {seed}: finetune"));
            // Stage 2 runs each block for one epoch, mostly forward (the wide network and the frozen blocks below): with
            // the 20 epochs of fine-tuning after it, less work than kd's 30 epochs with the teacher.
            Assert.True(order.IndexOf($"seed {seed}: kd") < order.IndexOf($"seed {seed}: imitation"));
        }
        Assert.Empty(Directory.GetFileSystemEntries(runs)); // planning writes nothing
        Directory.Delete(runs);
    }

    [Fact]
    public void Once_stages_have_finished_the_order_follows_the_time_they_took_per_unit_of_work()
    {
        var c = ConfigLoader.Load<ExperimentConfig>(
            Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-resnet.yaml")
        );
        var runs = TestData.NewTempFolder("priced");
        try
        {
            var runner = Runner(c, runs);
            var costs = runner.StageCosts().ToDictionary(x => x.Stage, x => x.Cost);
            // Seed 0 finished every stage; the thin standard runs took three times as long per multiply-accumulate as
            // every other kind of stage.
            foreach (var (seed, stage, dir) in ExperimentRunner.StageDirs(c, runner.ExperimentDir, 1))
            {
                Directory.CreateDirectory(dir);
                double pace = stage is "standard" or "standard_long" or "standard_matched" ? 3e-9 : 1e-9;
                File.WriteAllText(
                    Path.Combine(dir, StageSummary.FileName),
                    JsonSerializer.Serialize(
                        new StageSummary
                        {
                            Stage = stage,
                            Model = "thin",
                            WallSeconds = costs[stage] * pace,
                        },
                        StageContext.Json
                    )
                );
            }
            var order = runner
                .StageOrder(2)
                .Where(s => s.StartsWith("seed-1/", StringComparison.Ordinal))
                .Select(s => s[7..])
                .ToList();
            output.WriteLine(string.Join(", ", order));
            // In multiply-accumulates: wide, deeper, kd, fitnets, standard_long, standard_matched, imitation, finetune,
            // standard. Priced: 60 thin epochs (standard_long) and standard_matched's (stages 2 + 3's compute: 56 epochs
            // in the width sweep's run at this base width) are more work than deeper's 30, and 30 thin epochs
            // (standard) as much.
            Assert.Equal(
                [
                    "wide",
                    "standard_long",
                    "standard_matched",
                    "deeper",
                    "standard",
                    "kd",
                    "fitnets",
                    "imitation",
                    "finetune",
                ],
                order
            );
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void An_experiment_without_a_wide_network_reports_its_baselines()
    {
        var runs = TestData.NewTempFolder("nowide");
        try
        {
            // models.wide keeps a spec no stage uses; it must not be built (this one could not be).
            var c = Tiny("nowide", baselines: false) with
            {
                Models = Tiny("x", false).Models with
                {
                    Wide = new ModelSpec { Name = "mlp", Width = 0 },
                },
                Wide = null,
                Imitation = null,
                Finetune = null,
                Standard = new StandardStageConfig { Train = Budget(steps: 2) },
            };
            var r = Runner(c, runs).Run();
            Assert.Equal(["thin: standard"], r.Methods.Select(m => m.Method));
            Assert.Contains("| thin: standard |", File.ReadAllText(Path.Combine(runs, "nowide", "report.md")));
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void Imitation_warm_start_beats_random_initialisation_after_equal_fine_tuning()
    {
        var runs = TestData.NewTempFolder("warm");
        try
        {
            // Plain fine-tuning (a = 0) for the same few steps, from imitation vs. from random weights.
            var c = Tiny("warm", baselines: false) with
            {
                Finetune = new DistillStageConfig { Alpha = 0, Train = Budget(steps: 8, lr: 0.02) },
                Standard = new StandardStageConfig { Train = Budget(steps: 8, lr: 0.02) },
            };
            var r = Runner(c, runs).Run();
            var method = r.PerSeed[0]["finetune"];
            var random = r.PerSeed[0]["standard"];
            Assert.True(
                method.TestTop1 > random.TestTop1 + 0.05,
                $"warm start {method.TestTop1:P1} vs random {random.TestTop1:P1}"
            );
            Assert.True(
                method.Curve[^1].TrainLoss < random.Curve[^1].TrainLoss,
                $"train loss {method.Curve[^1].TrainLoss} vs {random.Curve[^1].TrainLoss}"
            );
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void Imported_wide_network_is_the_teacher_and_a_misfit_file_is_named()
    {
        var runs = TestData.NewTempFolder("import");
        try
        {
            var c = Tiny("import", baselines: false) with { Standard = null, Finetune = null };
            manual_seed(99);
            var trained = ModelFactory.Create(c.Models.Wide.ToModelConfig(10, 1, 28, "wide"));
            var file = Path.Combine(runs, "wide.pth");
            Weights.Save(trained, file);
            var r = Runner(c with { Wide = new WideStageConfig { Import = file } }, runs).Run();
            Assert.Equal(Path.GetFullPath(file), r.PerSeed[0]["wide"].Weights);
            // The report says the teacher came from a file, shared by the seeds, its compute counted elsewhere.
            Assert.Equal(file, r.WideImport);
            var report = File.ReadAllText(Path.Combine(runs, "import", "report.md"));
            Assert.Contains($"The wide network was imported (`wide.import`: {file})", report);
            // Inner widening: the head is copied from the imported network, so it must equal the file's.
            var thin = ModelFactory.Create(c.Models.Thin.ToModelConfig(10, 1, 28, "thin"));
            thin.load(Path.Combine(runs, "import", "seed-0", "imitation", "final.model"));
            Assert.True(TestSteps.BitIdentical(thin.HeadParameters().First(), trained.HeadParameters().First()));

            var thinFile = Path.Combine(runs, "thin.pth");
            Weights.Save(thin, thinFile);
            var e = Assert.Throws<WtnException>(() =>
                Runner(
                        c with
                        {
                            Name = "misfit",
                            Wide = new WideStageConfig { Import = thinFile },
                        },
                        runs
                    )
                    .Run()
            );
            Assert.Contains(thinFile, e.Message);
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    static StagedModel Final(string runs, string name, ExperimentConfig c)
    {
        var model = ModelFactory.Create(c.Models.Thin.ToModelConfig(10, 1, 28, "thin"));
        model.load(Path.Combine(runs, name, "seed-0", "finetune", "final.model"));
        return model;
    }

    [Fact]
    public void A_finished_stage_is_never_reused_under_other_settings_and_the_final_report_is_never_replaced()
    {
        var runs = TestData.NewTempFolder("fingerprint");
        try
        {
            var c = Tiny("fp", baselines: false);
            var result = Runner(c, runs).Run();
            var dir = Path.Combine(runs, "fp");
            // Every choice during training is on validation; the finished network is tested once.
            foreach (var stage in ExperimentRunner.DeclaredStages(c))
            {
                var s = StageSummary.TryLoad(Path.Combine(dir, "seed-0", stage))!;
                Assert.InRange(s.TestTop1!.Value, 0, 1);
                Assert.InRange(s.ValTop1!.Value, 0, 1);
                Assert.Equal(64, s.Fingerprint!.Length);
                Assert.Equal("0", s.Settings!["seed"]);
            }
            var standard = StageSummary.TryLoad(Path.Combine(dir, "seed-0", "standard"))!;
            var metrics = MetricsLog
                .ReadAll(Path.Combine(dir, "seed-0", "standard", "train", "metrics.jsonl"))
                .Where(m => m.Kind == "epoch")
                .ToList();
            Assert.Equal(metrics.Select(m => m.EvalTop1), standard.Curve.Select(p => p.ValTop1));
            Assert.Equal(200, result.ValidationExamples); // 20 per class
            Assert.Contains("200 validation", File.ReadAllText(Path.Combine(dir, "report.md")));

            // The saved config is valid YAML with one seed count that reproduces the run.
            var saved = File.ReadAllText(Path.Combine(dir, ExperimentRunner.RunConfigFile));
            Assert.Single(saved.Split('\n'), l => l.StartsWith("seeds:", StringComparison.Ordinal));
            Assert.Equal(ConfigLoader.ToYaml(c), ConfigLoader.ToYaml(ExperimentRunner.ReadRunConfig(dir)));

            // A changed setting: refused with the keys that changed, before anything is trained or rewritten.
            var report = File.ReadAllBytes(Path.Combine(dir, "report.md"));
            var lr = c with
            {
                Finetune = c.Finetune! with
                {
                    Train = c.Finetune.Train with { Optimizer = c.Finetune.Train.Optimizer with { Lr = 0.5 } },
                },
            };
            var e = Assert.Throws<WtnException>(() => Runner(lr, runs).Run());
            Assert.Contains("seed 0: finetune: ", e.Message);
            Assert.Contains(
                "was trained under other settings than the config gives now (finetune.train.optimizer.lr 0.02 -> 0.5)",
                e.Message
            );
            Assert.Throws<WtnException>(() => Runner(lr, runs).Report());
            // A setting every stage depends on names the first stage, the wide network.
            var data = c with { Data = c.Data with { TrainPerClass = 30 } };
            e = Assert.Throws<WtnException>(() => Runner(data, runs).Run());
            Assert.Contains("seed 0: wide: ", e.Message);
            Assert.Contains("data.train_per_class 40 -> 30", e.Message);
            Assert.Equal(report, File.ReadAllBytes(Path.Combine(dir, "report.md")));

            // What does not change a stage's result (report settings) reuses it; a later look leaves the final report alone.
            var log = new List<string>();
            Runner(c with { Report = new ReportConfig { LatencyRepeats = 2 } }, runs, log: log).Run();
            Assert.Equal(4, log.Count(l => l.Contains("already done")));
            report = File.ReadAllBytes(Path.Combine(dir, "report.md"));
            var look = Runner(c, runs).Report();
            Assert.False(look.Written);
            Assert.Equal(report, File.ReadAllBytes(Path.Combine(dir, "report.md")));

            // A stage recorded before a setting existed (here: without models.thin.base_width) is reused while the
            // setting keeps its default, and refused once it does not.
            var standardDir = Path.Combine(dir, "seed-0", "standard");
            var old = StageSummary.TryLoad(standardDir)!;
            var without = new SortedDictionary<string, string>(old.Settings!, StringComparer.Ordinal);
            Assert.True(without.Remove("models.thin.base_width"));
            File.WriteAllText(
                Path.Combine(standardDir, StageSummary.FileName),
                JsonSerializer.Serialize(
                    old with
                    {
                        Settings = without,
                        Fingerprint = StageFingerprint.Hash(without),
                    },
                    StageContext.Json
                )
            );
            log.Clear();
            Runner(c, runs, log: log).Run();
            Assert.Equal(4, log.Count(l => l.Contains("already done")));
            var narrower = c with { Models = c.Models with { Thin = c.Models.Thin with { BaseWidth = 8 } } };
            e = Assert.Throws<WtnException>(() => Runner(narrower, runs).Run());
            Assert.Contains("models.thin.base_width 16 -> 8", e.Message); // imitation, the first stage of the thin network
            Assert.Equal(
                ["models.thin.base_width (absent) -> 8"],
                ConfigLoader
                    .Changes(
                        without,
                        ConfigLoader.Flatten(narrower.Models.Thin, "models.thin"),
                        ConfigLoader.DefaultOf<ExperimentConfig>
                    )
                    .Where(x => x.StartsWith("models.thin.base_width", StringComparison.Ordinal))
            );
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void A_matched_standard_arm_budgeted_in_steps_gets_the_steps_that_cost_what_stages_2_and_3_cost()
    {
        var runs = TestData.NewTempFolder("compute-steps");
        try
        {
            var c = (Tiny("compute-steps", baselines: false) with { Standard = null }).WithBaseline(
                "standard_matched",
                new StandardStageConfig { Train = Budget(steps: 1) }
            );
            var seed = Runner(c, runs).Run().PerSeed[0];
            double methodMacs = seed["imitation"].TrainMacs!.Value + seed["finetune"].TrainMacs!.Value;
            long steps = long.Parse(seed["standard_matched"].Settings!["standard_matched.train.steps"]);
            Assert.True(steps > 1, $"{steps} steps");
            double perStep = seed["standard_matched"].TrainMacs!.Value / steps;
            Assert.InRange(
                methodMacs,
                seed["standard_matched"].TrainMacs!.Value - perStep / 2,
                seed["standard_matched"].TrainMacs!.Value + perStep / 2
            );
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void Every_arm_records_its_training_compute_and_the_matched_standard_arm_costs_what_stages_2_and_3_cost()
    {
        var runs = TestData.NewTempFolder("compute");
        try
        {
            var c = Tiny("compute", baselines: false)
                .WithBaseline("finetune_no_kd", new DerivedStageConfig())
                .WithBaseline("kd_finetune_recipe", new DerivedStageConfig())
                .WithBaseline("standard_matched", new StandardStageConfig { Train = Budget(epochs: 1) });
            // The empty section survives the round trip through YAML (run-config.yaml).
            var back = ConfigLoader.Parse<ExperimentConfig>(ConfigLoader.ToYaml(c), "test");
            Assert.NotNull(back.Baseline<DerivedStageConfig>("finetune_no_kd"));
            Assert.NotNull(back.Baseline<DerivedStageConfig>("kd_finetune_recipe"));
            Assert.Equal(
                [
                    "wide",
                    "imitation",
                    "finetune",
                    "finetune_no_kd",
                    "standard",
                    "standard_matched",
                    "kd_finetune_recipe",
                ],
                ExperimentRunner.DeclaredStages(c)
            );
            var r = Runner(c, runs).Run();
            var seed = r.PerSeed[0];
            Assert.All(seed.Values, s => Assert.True(s.TrainMacs > 0, s.Stage));
            // Stage 3 without kd: the fine-tuning recipe with a = 0, so no teacher forward: cheaper than with kd.
            Assert.Equal("0", seed["finetune_no_kd"].Settings!["finetune.alpha"]);
            Assert.True(seed["finetune_no_kd"].TrainMacs < seed["finetune"].TrainMacs);
            // kd under stage 3's exact recipe: finetune's settings and passes (thin trained, wide forward), from scratch.
            Assert.Equal(
                seed["finetune"].Settings!["finetune.alpha"],
                seed["kd_finetune_recipe"].Settings!["finetune.alpha"]
            );
            Assert.Equal(
                seed["finetune"].Settings!["finetune.train.optimizer.lr"],
                seed["kd_finetune_recipe"].Settings!["finetune.train.optimizer.lr"]
            );
            Assert.False(seed["kd_finetune_recipe"].Settings!.ContainsKey("imitation.input"));
            Assert.Equal(seed["finetune"].TrainMacs!.Value, seed["kd_finetune_recipe"].TrainMacs!.Value, 6);
            Assert.Contains(r.Methods, m => m.Method == "thin: kd, stage 3's recipe");
            // The matched arm's epochs come from stages 2 + 3's compute, whatever epochs its section gave.
            double methodMacs = seed["imitation"].TrainMacs!.Value + seed["finetune"].TrainMacs!.Value;
            int epochs = int.Parse(seed["standard_matched"].Settings!["standard_matched.train.epochs"]);
            Assert.True(epochs > 1, $"{epochs} epochs");
            double perEpoch = seed["standard_matched"].TrainMacs!.Value / epochs;
            Assert.InRange(
                methodMacs,
                seed["standard_matched"].TrainMacs!.Value - perEpoch / 2,
                seed["standard_matched"].TrainMacs!.Value + perEpoch / 2
            );
            var row = r.Methods.Single(m => m.Method == "thin: go wide, then narrow");
            Assert.Equal(methodMacs, row.TrainMacs!.Mean, 6);
            Assert.Equal(seed["wide"].TrainMacs, row.WideMacs!.Mean);
            Assert.Contains(r.Methods, m => m.Method == "thin: method without kd");
            Assert.Contains(
                "| training compute | + wide stage |",
                File.ReadAllText(Path.Combine(runs, "compute", "report.md"))
            );
            // McNemar's test needs each network's per-example verdicts on the same test examples.
            Assert.Equal(r.TestExamples, StageSummary.UnpackBits(seed["finetune"].TestCorrect!, r.TestExamples).Length);
            Assert.Equal(
                seed["finetune"].TestTop1!.Value,
                StageSummary.UnpackBits(seed["finetune"].TestCorrect!, r.TestExamples).Count(b => b)
                    / (double)r.TestExamples,
                12
            );
            var method = StageSummary.UnpackBits(seed["finetune"].TestCorrect!, r.TestExamples);
            var plain = StageSummary.UnpackBits(seed["standard"].TestCorrect!, r.TestExamples);
            var vs = r.Comparisons.Single(x => x.Against == "thin: standard");
            Assert.Equal(method.Zip(plain).Count(p => p.First && !p.Second), vs.McNemar!.B);
            Assert.Equal(method.Zip(plain).Count(p => !p.First && p.Second), vs.McNemar.C);
            Assert.Null(vs.TTest); // one seed: McNemar's test decides
            Assert.Equal(Statistics.Verdict(vs.Difference.Mean, vs.McNemar.P), vs.Verdict);
            // One seed: the one pair's own test is the summed one.
            Assert.Equal(vs.McNemar, Assert.Single(vs.McNemarEach!));
            var perPair =
                vs.McNemar.P < 0.05
                    ? (vs.McNemar.B > vs.McNemar.C ? "won 1, lost 0" : "won 0, lost 1")
                    : "won 0, lost 0";
            Assert.Contains(
                $"| {perPair} of 1 | {vs.Verdict} |",
                File.ReadAllText(Path.Combine(runs, "compute", "report.md"))
            );
            Assert.Contains(
                "| p (t-test) | p (McNemar) | McNemar per pair | verdict |",
                File.ReadAllText(Path.Combine(runs, "compute", "report.md"))
            );
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void A_stage_interrupted_under_one_setting_is_not_finished_under_another()
    {
        var runs = TestData.NewTempFolder("fingerprint-started");
        try
        {
            var c = Tiny("started", baselines: false) with { Standard = null };
            using (var cts = new CancellationTokenSource())
            {
                var stopper = new StopAt("finetune", 3, cts);
                Assert.ThrowsAny<OperationCanceledException>(() => Runner(c, runs, stopper).Run(cancel: cts.Token));
                Assert.True(stopper.Fired);
            }
            var changed = c with { Finetune = c.Finetune! with { Alpha = 0.9 } };
            var e = Assert.Throws<WtnException>(() => Runner(changed, runs).Run());
            Assert.Contains("seed 0: finetune: ", e.Message);
            Assert.Contains(
                "was started under other settings than the config gives now (finetune.alpha 0.5 -> 0.9)",
                e.Message
            );
            var log = new List<string>();
            Runner(c, runs, log: log).Run();
            Assert.Contains(log, l => l.StartsWith("finetune: resuming", StringComparison.Ordinal));
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void How_often_a_stage_checkpoints_or_logs_is_no_setting_of_it_resumed_or_finished_it_is_reused_bit_for_bit()
    {
        var runs = TestData.NewTempFolder("cadence");
        try
        {
            var c = Tiny("cadence", baselines: false) with { Standard = null };
            Runner(c, Path.Combine(runs, "whole")).Run();
            using (var cts = new CancellationTokenSource())
            {
                var stopper = new StopAt("finetune", 3, cts);
                Assert.ThrowsAny<OperationCanceledException>(() =>
                    Runner(c, Path.Combine(runs, "stopped"), stopper).Run(cancel: cts.Token)
                );
                Assert.True(stopper.Fired);
            }
            static TrainerSettings Cadence(TrainerSettings t) =>
                t with
                {
                    Checkpoint = t.Checkpoint with
                    {
                        EverySteps = t.Checkpoint.EverySteps + 7,
                        KeepLast = t.Checkpoint.KeepLast + 1,
                    },
                    Logging = t.Logging with
                    {
                        EverySteps = t.Logging.EverySteps + 3,
                        Tensorboard = !t.Logging.Tensorboard,
                    },
                };
            var other = c with
            {
                Wide = c.Wide! with { Train = Cadence(c.Wide.Train) },
                Finetune = c.Finetune! with { Train = Cadence(c.Finetune.Train) },
            };
            var log = new List<string>();
            Runner(other, Path.Combine(runs, "stopped"), log: log).Run();
            Assert.Contains(log, l => l.StartsWith("finetune: resuming", StringComparison.Ordinal));
            Assert.Contains(log, l => l.Contains("wide already done", StringComparison.Ordinal));
            foreach (var stage in ExperimentRunner.DeclaredStages(c))
                Assert.Equal(
                    StageSummary.TryLoad(Path.Combine(runs, "whole", "cadence", "seed-0", stage))!.WeightsSha256,
                    StageSummary.TryLoad(Path.Combine(runs, "stopped", "cadence", "seed-0", stage))!.WeightsSha256
                );
            // A setting that does change the result is still refused.
            var lr = other with
            {
                Finetune = other.Finetune! with
                {
                    Train = other.Finetune.Train with { Optimizer = other.Finetune.Train.Optimizer with { Lr = 0.5 } },
                },
            };
            Assert.Contains(
                "finetune.train.optimizer.lr 0.02 -> 0.5",
                Assert.Throws<WtnException>(() => Runner(lr, Path.Combine(runs, "stopped")).Run()).Message
            );
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void Every_network_of_every_seed_has_its_own_initialisation_seed()
    {
        // "thin" and "wide" have the same length: a seed derived from the length would give both the same weights.
        var seeds = new[] { 0L, 1L, 1000L }
            .SelectMany(s => new[] { "thin", "wide", "deeper" }.Select(k => StageContext.InitSeed(s, k)))
            .ToList();
        Assert.Equal(seeds.Count, seeds.Distinct().Count());
        Assert.All(seeds, s => Assert.True(s >= 0));
        Assert.Equal(StageContext.InitSeed(3, "thin"), StageContext.InitSeed(3, "thin"));
    }

    /// <summary>Cancels the run at a step of a stage (the tests of interrupted runs share it).</summary>
    internal sealed class StopAt(string stage, long step, CancellationTokenSource cts) : IProgress<TrainingProgress>
    {
        public bool Fired { get; private set; }

        public void Report(TrainingProgress p)
        {
            if (p.Kind == TrainingEventKind.Step && p.Stage == stage && p.Step == step)
            {
                Fired = true;
                cts.Cancel();
            }
        }
    }

    /// <summary>A run's log lines into a list.</summary>
    internal sealed class ListLog(List<string> lines) : IProgress<string>
    {
        public void Report(string value) => lines.Add(value);
    }
}
