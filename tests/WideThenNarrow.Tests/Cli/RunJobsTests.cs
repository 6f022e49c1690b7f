using System.Diagnostics;
using System.Text.RegularExpressions;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Tests.Method;
using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Cli;

/// <summary>
/// <c>wtn run --jobs 2</c>: the stage graph run as processes (<c>wtn run --only</c>), two at once, gives what one
/// process gives, bit for bit; a failing stage stops the stages that start from it and no other; an interrupted run's
/// stage processes checkpoint, however the run ends, and the rerun resumes them.
/// </summary>
public class RunJobsTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static string Data => Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!;

    static string WriteExperiment(string dir, ExperimentConfig c)
    {
        var file = Path.Combine(dir, $"{c.Name}.yaml");
        File.WriteAllText(file, ConfigLoader.ToYaml(c));
        return file;
    }

    [Fact]
    public void Two_jobs_run_the_stage_graph_as_processes_and_every_stage_equals_a_single_process_run()
    {
        var dir = TestData.NewTempFolder("jobs");
        try
        {
            // The tiny pipeline with baselines; stage 2 with teacher input, so its units run as processes of their own.
            var c = ExperimentRunnerTests.Tiny("jobs", baselines: true);
            var file = WriteExperiment(dir, c);
            string data = Data;
            string Args(string runs, int threads, string extra) =>
                $"--threads {threads} --data-dir \"{data}\" run \"{file}\" --runs-dir \"{runs}\" {extra}";

            var clock = Stopwatch.StartNew();
            var (code, stdout, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "two"), 2, "--jobs 2"));
            Assert.True(code == 0, stderr + stdout);
            var parallel = clock.Elapsed;
            output.WriteLine(stdout);
            Assert.Contains("--jobs 2: up to 2 stage processes at once, 1 thread(s) each", stdout);
            // The wide network first (the longest chain of work waits for it), a second stage beside it from the start.
            var lines = stdout.Split('\n');
            var started = Enumerable
                .Range(0, lines.Length)
                .Where(i => Regex.IsMatch(lines[i], @"^seed-0/\w+( unit \d+)?: started, process \d+, log "))
                .ToList();
            Assert.StartsWith("seed-0/wide: started", lines[started[0]]);
            Assert.True(
                started[1] < Array.FindIndex(lines, l => Regex.IsMatch(l, @"^seed-0/\w+( unit \d+)?: (done|ended)")),
                "the second process started after the first ended"
            );
            // Every stage and every unit of stage 2 was a process: its lines prefixed with it, its log in runs/NAME/logs.
            var runDir = Path.Combine(dir, "two", "jobs");
            int units = Directory.GetDirectories(Path.Combine(runDir, "seed-0", "imitation"), "block-*").Length;
            Assert.True(units >= 3, $"{units} units");
            Assert.Equal(ExperimentRunner.DeclaredStages(c).Count + units, started.Count);
            foreach (var stage in ExperimentRunner.DeclaredStages(c))
            {
                Assert.Contains($"[seed-0/{stage}] seed 0: {stage} done", stdout);
                Assert.Contains(
                    $"seed 0: {stage} done",
                    File.ReadAllText(Path.Combine(runDir, "logs", $"seed-0-{stage}.log"))
                );
            }
            for (int k = 0; k < units; k++)
                Assert.Contains($"[seed-0/imitation unit {k}] seed 0: imitation: unit {k} done", stdout);
            Assert.DoesNotContain("ended with exit code", stdout);
            var report = File.ReadAllText(Path.Combine(runDir, "report.md"));
            Assert.DoesNotContain("Interim report", report);
            // This process trained nothing: the final report's latencies are measured on the run's 2 threads, alone.
            Assert.Contains("on 2 thread(s) of this machine.\n", report.ReplaceLineEndings("\n"));

            clock.Restart();
            (code, stdout, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "one"), 1, ""));
            Assert.True(code == 0, stderr + stdout);
            // Written to a pipe, the table is not squeezed into 80 columns: a row's cells are not broken mid-word.
            Assert.Matches(@"│ thin: go wide, then narrow +│ [^\n]*│ wide \S+ +│", stdout);
            // Under the table: the method against the other rows.
            Assert.Matches(
                @"thin: go wide, then narrow, test top-1 minus: thin: after imitation only [+-]?\d+\.\d\d \((better|worse|tie)\); thin: standard [+-]?\d+\.\d\d \((better|worse|tie)\); ",
                stdout
            );
            Assert.Contains(
                "on 1 thread(s) of this machine",
                File.ReadAllText(Path.Combine(dir, "one", "jobs", "report.md"))
            );
            output.WriteLine($"--jobs 2 {parallel.TotalSeconds:F1} s, one process {clock.Elapsed.TotalSeconds:F1} s");

            // One thread per stage in both runs: every stage's final weights are the same bytes.
            foreach (var stage in ExperimentRunner.DeclaredStages(c))
            {
                var (a, b) = (
                    StageSummary.TryLoad(Path.Combine(runDir, "seed-0", stage))!,
                    StageSummary.TryLoad(Path.Combine(dir, "one", "jobs", "seed-0", stage))!
                );
                Assert.True(a.WeightsSha256 == b.WeightsSha256, stage);
                Assert.Equal(a.TestTop1, b.TestTop1);
                Assert.True(
                    File.ReadAllBytes(Path.Combine(runDir, "seed-0", stage, "final.model"))
                        .AsSpan()
                        .SequenceEqual(
                            File.ReadAllBytes(Path.Combine(dir, "one", "jobs", "seed-0", stage, "final.model"))
                        ),
                    stage
                );
            }

            // wtn export: the method's thin network as PyTorch weights plus the manifest that rebuilds it.
            var exported = Path.Combine(dir, "export", "thin.safetensors");
            string Export(string extra) =>
                $"--threads 1 --data-dir \"{data}\" export \"{file}\" --runs-dir \"{Path.Combine(dir, "one")}\" {extra}";
            (code, stdout, stderr) = WtnProcess.Run(Export($"-o \"{exported}\""));
            Assert.True(code == 0, stderr + stdout);
            Assert.Contains("checked: read back through the manifest", stdout);
            var manifest = ModelExport.Verify(ModelExport.ManifestPath(exported));
            Assert.Equal("experiment jobs, seed 0, stage finetune", manifest.Source);
            var finetuneDir = Path.Combine(dir, "one", "jobs", "seed-0", "finetune");
            Assert.Equal(StageSummary.TryLoad(finetuneDir)!.TestTop1, manifest.TestTop1);
            Assert.Equal(("mlp", "image"), (manifest.Family, manifest.Input.Kind));
            // Rebuilt from the manifest alone, the network is the stage's: the same outputs as its final.model.
            using (var back = ModelExport.Load(ModelExport.ManifestPath(exported)))
            using (var run = ModelFactory.Create(ModelExport.ConfigOf(manifest, exported)))
            using (TorchSharp.torch.no_grad())
            {
                run.load(Path.Combine(finetuneDir, "final.model"));
                run.eval();
                var x = TorchSharp.torch.randn(3, 1, 28, 28);
                Assert.True(back.call(new ModelInput(x)).eq(run.call(new ModelInput(x))).all().item<bool>());
            }
            // wtn eval of the exported network on the run's test subset (20 per class, batches of 100 as in the run) gives
            // the stage's own last test top-1: the same examples, normalisation and network.
            (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{data}\" eval \"{ModelExport.ManifestPath(exported)}\" --per-class 20 --batch-size 100 --json"
            );
            Assert.True(code == 0, stderr + stdout);
            var eval = System.Text.Json.JsonDocument.Parse(stdout).RootElement;
            Assert.Equal(200, eval.GetProperty("examples").GetInt64());
            Assert.Equal(manifest.TestTop1!.Value, eval.GetProperty("top1").GetDouble(), 12);
            var perClass = eval.GetProperty("perClass").EnumerateArray().ToList();
            Assert.Equal(10, perClass.Count);
            Assert.All(perClass, c => Assert.Equal(20, c.GetProperty("examples").GetInt64()));
            Assert.Equal(
                eval.GetProperty("top1").GetDouble() * 200,
                perClass.Sum(c => c.GetProperty("correct").GetInt64()),
                9
            );
            // In PyTorch, from raw pixels: python/wtn_models.py loads the export and preprocess() normalises the same 200
            // test images as the run did; the top-1 agrees (to one image: float rounding may flip a near tie).
            if (WideThenNarrow.Tests.Models.PyTorchPeerTests.PeerAvailable(output))
            {
                var fm = Path.Combine(data, "fashion-mnist");
                var r = WideThenNarrow.Tests.Models.PyTorchPeerTests.RunPeer(
                    $"evaluate \"{ModelExport.ManifestPath(exported)}\" \"{fm}/t10k-images-idx3-ubyte.gz\" \"{fm}/t10k-labels-idx1-ubyte.gz\" 20"
                );
                output.WriteLine(
                    $"peer evaluate: {r.Stdout.Trim()} {r.Stderr.Trim()}; wtn: {manifest.TestTop1 * 200} of 200"
                );
                Assert.True(r.Code == 0, r.Stdout + r.Stderr);
                var m = Regex.Match(r.Stdout, @"top1 (\d+) of 200");
                Assert.True(m.Success, r.Stdout);
                Assert.InRange(int.Parse(m.Groups[1].Value) - manifest.TestTop1!.Value * 200, -1.0001, 1.0001);
            }
            // A manifest whose classes are not the dataset's (here one renamed) is refused: labels are positions.
            var renamed = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(ModelExport.ManifestPath(exported)))!;
            renamed["input"]!["classes"]![0] = "cat";
            var renamedPath = Path.Combine(dir, "export", "renamed.json");
            File.WriteAllText(renamedPath, renamed.ToJsonString());
            foreach (
                var (manifestFile, extra, named) in new[]
                {
                    (ModelExport.ManifestPath(exported), "--split dev", "--split"),
                    (ModelExport.ManifestPath(exported), "--per-class 0", "--per-class"),
                    (renamedPath, "", "the network's classes (cat, Trouser"),
                }
            )
            {
                (code, _, stderr) = WtnProcess.Run($"--data-dir \"{data}\" eval \"{manifestFile}\" {extra}");
                Assert.Equal(2, code);
                Assert.Contains(named, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            }

            // --stage all: every finished stage of the seed, each with its manifest.
            (code, stdout, stderr) = WtnProcess.Run(
                Export($"--stage all -o \"{Path.Combine(dir, "all")}\" --format pth")
            );
            Assert.True(code == 0, stderr + stdout);
            Assert.Equal(
                ExperimentRunner.DeclaredStages(c).Select(s => $"seed-0-{s}.json").Order(),
                Directory.GetFiles(Path.Combine(dir, "all"), "*.json").Select(Path.GetFileName).Order()!
            );
            Assert.All(Directory.GetFiles(Path.Combine(dir, "all"), "*.json"), f => ModelExport.Verify(f));

            // The run folder stands for the experiment file (its run-config.yaml), as after wtn demo.
            (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{data}\" export \"{Path.Combine(dir, "one", "jobs")}\" --stage standard -o \"{Path.Combine(dir, "export", "std.pth")}\""
            );
            Assert.True(code == 0, stderr + stdout);
            Assert.Equal(
                "experiment jobs, seed 0, stage standard",
                ModelExport.Verify(Path.Combine(dir, "export", "std.json")).Source
            );
            // A weights file past what the disk takes (a 16 KB file-size limit: EFBIG, as on a file system whose largest
            // file is smaller): one line naming it, exit 2, and nothing left in the folder, not even a temporary file.
            var full = Path.Combine(dir, "full");
            Directory.CreateDirectory(full);
            Assert.True(new FileInfo(Path.Combine(dir, "export", "std.pth")).Length > 16 << 10);
            (code, _, stderr) = WtnProcess.RunWithFileSizeLimit(
                Export($"-o \"{Path.Combine(full, "thin.safetensors")}\""),
                16
            );
            Assert.Equal(2, code);
            Assert.StartsWith(
                $"wtn: error: cannot write {Path.Combine(full, "thin.safetensors")}: ",
                Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            );
            Assert.Empty(Directory.GetFileSystemEntries(full));
            foreach (
                var (extra, named) in new[]
                {
                    ("--stage nope -o x.pth", "'nope' is not a stage"),
                    ("--seed 3 -o x.pth", "--seed 3"),
                    ("-o x.json", "--out"),
                    ("--stage all --format tflite -o d", "--format: 'tflite'"),
                }
            )
            {
                (code, _, stderr) = WtnProcess.Run(Export(extra));
                Assert.Equal(2, code);
                Assert.Contains(named, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            }

            // A bad --jobs, --only with --jobs, --unit without --only: one line, exit 2.
            foreach (
                var (extra, named) in new[]
                {
                    ("--jobs 0", "--jobs must be at least 1"),
                    ("--jobs 2 --only seed-0/wide", "--only runs one stage in this process: leave out --jobs"),
                    ("--unit 1", "--unit needs --only"),
                }
            )
            {
                (code, _, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "one"), 1, extra));
                Assert.Equal(2, code);
                Assert.Contains(named, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            }
            // The options the stage graph made redundant are gone.
            foreach (var gone in new[] { "--join", "--thread-budget 2" })
            {
                (code, stdout, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "one"), 1, gone));
                Assert.NotEqual(0, code);
                Assert.Contains($"'{gone.Split(' ')[0]}'", stderr + stdout);
            }
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void A_failing_stage_stops_the_stages_that_start_from_it_and_no_other()
    {
        var dir = TestData.NewTempFolder("jobfail");
        try
        {
            var c = ExperimentRunnerTests.Tiny("jobfail", baselines: true);
            var file = WriteExperiment(dir, c);
            var runs = Path.Combine(dir, "runs");
            var seedDir = Path.Combine(runs, "jobfail", "seed-0");
            // The wide stage cannot make its training run's folder: a file stands where it would be.
            var blocker = Path.Combine(seedDir, "wide", "train");
            Directory.CreateDirectory(Path.GetDirectoryName(blocker)!);
            File.WriteAllText(blocker, "");
            string args = $"--threads 2 --data-dir \"{Data}\" run \"{file}\" --runs-dir \"{runs}\" --jobs 2";
            var (code, stdout, stderr) = WtnProcess.Run(args);
            output.WriteLine(stdout + stderr);
            Assert.Equal(2, code);
            // One line: the stage that failed, why, its log; the stages not started because they start from it.
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            var log = Path.Combine(runs, "jobfail", "logs", "seed-0-wide.log");
            Assert.Matches(
                @"^wtn: error: seed-0/wide failed \(exit \d: .+; log "
                    + Regex.Escape(log)
                    + @"\); not started, as they start from it: "
                    + @"seed-0/imitation unit 0, (seed-0/imitation unit \d, )*seed-0/imitation, seed-0/finetune, seed-0/kd, seed-0/fitnets; every other stage finished; ",
                line
            );
            Assert.Contains("[seed-0/wide] wtn: error: ", stdout);
            // The stages that do not need the wide network ran to their end; those that do were not begun.
            foreach (var stage in new[] { "standard", "deeper" })
                Assert.True(StageSummary.IsDone(Path.Combine(seedDir, stage)), stage);
            foreach (var stage in new[] { "imitation", "finetune", "kd", "fitnets" })
                Assert.False(Directory.Exists(Path.Combine(seedDir, stage)), stage);
            Assert.Contains("Interim report", File.ReadAllText(Path.Combine(runs, "jobfail", "report.md")));

            // Mended, the same command trains the wide stage and those after it, and skips the finished ones.
            File.Delete(blocker);
            (code, stdout, stderr) = WtnProcess.Run(args);
            Assert.True(code == 0, stderr + stdout);
            Assert.Contains("seed 0: standard already done, skipped", stdout);
            Assert.Contains("seed 0: deeper already done, skipped", stdout);
            Assert.DoesNotContain("seed-0/standard: started", stdout);
            Assert.All(ExperimentRunner.DeclaredStages(c), stage =>
                Assert.True(StageSummary.IsDone(Path.Combine(seedDir, stage)), stage)
            );
            Assert.DoesNotContain("Interim report", File.ReadAllText(Path.Combine(runs, "jobfail", "report.md")));
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void An_interrupted_two_job_run_stops_its_stage_processes_at_a_checkpoint_however_it_ends_and_the_rerun_resumes_them_exactly()
    {
        var dir = TestData.NewTempFolder("jobstop");
        try
        {
            // The wide network and the standard run side by side, long enough to be stopped twice mid-stage.
            var (c, file) = LongExperiment(
                dir,
                "jobstop",
                wideSteps: WideSteps,
                standardSteps: StandardSteps,
                checkpointEvery: 50
            );
            var runs = Path.Combine(dir, "runs");
            var seedDir = Path.Combine(runs, "jobstop", "seed-0");
            string[] stages = ["wide", "standard"];
            long Newest(string stage) =>
                Directory.Exists(Path.Combine(seedDir, stage, "train", "checkpoints"))
                    ? Directory
                        .GetFiles(Path.Combine(seedDir, stage, "train", "checkpoints"), "step-*.ckpt")
                        .Select(f => long.Parse(Path.GetFileNameWithoutExtension(f)["step-".Length..]))
                        .DefaultIfEmpty(0)
                        .Max()
                    : 0;
            void WaitForCheckpoints(Process run, IEnumerable<string> lines, Dictionary<string, long> after)
            {
                var clock = Stopwatch.StartNew();
                while (
                    !stages.All(s => Newest(s) > after.GetValueOrDefault(s))
                    && clock.Elapsed < TimeSpan.FromMinutes(4)
                    && !run.HasExited
                )
                    Thread.Sleep(100);
                Assert.False(run.HasExited, string.Join("\n", lines));
                Assert.True(stages.All(s => Newest(s) > after.GetValueOrDefault(s)), string.Join("\n", lines));
            }
            // Each stage process stopped where its progress says, at its newest checkpoint, and nothing holds a lock.
            Dictionary<string, long> Stopped()
            {
                var at = stages.ToDictionary(
                    s => s,
                    s => RunProgressFile.TryRead(Path.Combine(seedDir, s, "train"))!.Step
                );
                foreach (var s in stages)
                    Assert.Equal(at[s], Newest(s));
                foreach (
                    var folder in new[] { Path.Combine(runs, "jobstop") }.Concat(
                        stages.Select(s => Path.Combine(seedDir, s))
                    )
                )
                    using (var free = RunLock.TryAcquire(folder))
                        Assert.NotNull(free);
                return at;
            }

            // SIGTERM: the run asks its stage processes to stop; each checkpoints and says where; the run names them and exits with 130.
            var (run, stdout, stderr) = Start(file, runs, "--threads 2", "--jobs 2");
            using (run)
            {
                WaitForCheckpoints(run, stdout, []);
                using (var kill = Process.Start("kill", $"-TERM {run.Id}")!)
                    kill.WaitForExit();
                Assert.True(run.WaitForExit(180_000), "wtn run outlived SIGTERM");
                run.WaitForExit();
                Assert.Equal(130, run.ExitCode);
            }
            Assert.Matches(
                @"^wtn: error: interrupted; seed-0/(wide|standard), seed-0/(wide|standard) stopped at a checkpoint; run the same command again to continue$",
                Assert.Single(stderr)
            );
            foreach (var s in stages)
                Assert.Contains(stdout, l =>
                    Regex.IsMatch(
                        l,
                        $@"^\[seed-0/{s}\] wtn: error: stage {s} interrupted at step \d+; checkpoint \S+; run the same command again to continue$"
                    )
                );
            var first = Stopped();

            // kill -9: the run cannot tell them; its stage processes see their standard input close and do the same.
            (run, stdout, stderr) = Start(file, runs, "--threads 2", "--jobs 2");
            using (run)
            {
                WaitForCheckpoints(run, stdout, first);
                // The lines come through the run's relay and this test's reader, on their own time: wait for them too.
                bool Said() =>
                    stages.All(s =>
                        stdout.Any(l =>
                            l.Contains($"[seed-0/{s}] {s}: resuming at step {first[s]}/", StringComparison.Ordinal)
                        )
                    )
                    && stdout.Count(l => Regex.IsMatch(l, @"^seed-0/\w+: started, process \d+,")) == 2;
                var said = Stopwatch.StartNew();
                while (!Said() && said.Elapsed < TimeSpan.FromMinutes(1) && !run.HasExited)
                    Thread.Sleep(50);
                foreach (var s in stages)
                    Assert.Contains($"[seed-0/{s}] {s}: resuming at step {first[s]}/", string.Join("\n", stdout));
                var children = stdout
                    .Select(l => Regex.Match(l, @"^seed-0/\w+: started, process (\d+),"))
                    .Where(m => m.Success)
                    .Select(m => Process.GetProcessById(int.Parse(m.Groups[1].Value)))
                    .ToList();
                Assert.Equal(2, children.Count);
                run.Kill();
                run.WaitForExit();
                foreach (var child in children)
                    using (child)
                        Assert.True(child.WaitForExit(180_000), "a stage process outlived its run");
            }
            var second = Stopped();
            Assert.All(stages, s => Assert.True(second[s] > first[s], s));

            // The same command again resumes both and finishes them as if nothing had happened: the weights of one
            // uninterrupted process on one thread, bit for bit.
            var (code, outText, errText) = WtnProcess.Run(
                $"--threads 2 --data-dir \"{Data}\" run \"{file}\" --runs-dir \"{runs}\" --jobs 2"
            );
            Assert.True(code == 0, errText + outText);
            foreach (var s in stages)
                Assert.Contains($"[seed-0/{s}] {s}: resuming at step {second[s]}/", outText);
            var straight = Path.Combine(dir, "straight");
            (code, outText, errText) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{Data}\" run \"{file}\" --runs-dir \"{straight}\""
            );
            Assert.True(code == 0, errText + outText);
            foreach (var s in stages)
                Assert.Equal(
                    StageSummary.TryLoad(Path.Combine(straight, "jobstop", "seed-0", s))!.WeightsSha256,
                    StageSummary.TryLoad(Path.Combine(seedDir, s))!.WeightsSha256
                );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    const int WideSteps = 2000,
        StandardSteps = 6000;

    [Fact]
    public void SIGTERM_checkpoints_the_stage_and_says_where_and_how_to_continue()
    {
        var dir = TestData.NewTempFolder("sigterm");
        try
        {
            var (_, file) = LongExperiment(dir, "sigterm", wideSteps: 100000, standardSteps: 0, checkpointEvery: 1000);
            var runs = Path.Combine(dir, "runs");
            var (run, stdout, stderr) = Start(file, runs, "--threads 1", "");
            using var _run = run;
            // Mid-stage: the trainer has logged a few steps (progress.json every 2 steps).
            var train = Path.Combine(runs, "sigterm", "seed-0", "wide", "train");
            var clock = Stopwatch.StartNew();
            while (
                !(RunProgressFile.TryRead(train)?.Step >= 4)
                && clock.Elapsed < TimeSpan.FromMinutes(3)
                && !run.HasExited
            )
                Thread.Sleep(50);
            Assert.False(run.HasExited, string.Join("\n", stdout.Concat(stderr)));

            using (var kill = Process.Start("kill", $"-TERM {run.Id}")!)
                kill.WaitForExit();
            Assert.True(run.WaitForExit(120_000), "wtn run outlived SIGTERM");
            run.WaitForExit();
            Assert.Equal(130, run.ExitCode);
            // One line: the stage, the step, the checkpoint written on the way out, and how to go on.
            var line = Assert.Single(stderr);
            var m = Regex.Match(
                line,
                @"^wtn: error: stage wide interrupted at step (\d+); checkpoint (\S+); run the same command again to continue$"
            );
            Assert.True(m.Success, line);
            Assert.True(File.Exists(m.Groups[2].Value), line);
            Assert.Equal($"step-{long.Parse(m.Groups[1].Value):D9}.ckpt", Path.GetFileName(m.Groups[2].Value));
            Assert.Equal(long.Parse(m.Groups[1].Value), RunProgressFile.TryRead(train)!.Step);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    /// <summary>
    /// A tiny experiment of the wide stage (and the standard one, with <paramref name="standardSteps"/> &gt; 0) only, each of
    /// so many steps, checkpointing every <paramref name="checkpointEvery"/>; and its file.
    /// </summary>
    static (ExperimentConfig Config, string File) LongExperiment(
        string dir,
        string name,
        int wideSteps,
        int standardSteps,
        int checkpointEvery
    )
    {
        TrainerSettings Train(int steps) =>
            ExperimentRunnerTests.Budget(steps: steps) with
            {
                Checkpoint = new CheckpointConfig { EverySteps = checkpointEvery, KeepLast = 1 },
                Eval = new EvalConfig { EveryEpochs = 0 },
            };
        var c = ExperimentRunnerTests.Tiny(name, baselines: false) with
        {
            Imitation = null,
            Finetune = null,
            Wide = new WideStageConfig { Train = Train(wideSteps) },
            Standard = standardSteps > 0 ? new StandardStageConfig { Train = Train(standardSteps) } : null,
        };
        return (c, WriteExperiment(dir, c));
    }

    /// <summary>Starts <c>wtn run</c> in the background: its standard output and error lines as they come.</summary>
    static (
        Process Run,
        System.Collections.Concurrent.ConcurrentQueue<string> Stdout,
        System.Collections.Concurrent.ConcurrentQueue<string> Stderr
    ) Start(string file, string runs, string globalArgs, string runArgs)
    {
        var psi = new ProcessStartInfo(
            WtnProcess.ExePath,
            $"{globalArgs} --data-dir \"{Data}\" run \"{file}\" --runs-dir \"{runs}\" {runArgs}"
        )
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var run = Process.Start(psi)!;
        var stdout = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var stderr = new System.Collections.Concurrent.ConcurrentQueue<string>();
        run.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                stdout.Enqueue(e.Data);
        };
        run.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                stderr.Enqueue(e.Data);
        };
        run.BeginOutputReadLine();
        run.BeginErrorReadLine();
        return (run, stdout, stderr);
    }
}
