using System.Diagnostics;
using System.Text.RegularExpressions;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using WideThenNarrow.Tests.Method;

namespace WideThenNarrow.Tests.Cli;

/// <summary>
/// <c>wtn run --jobs 2</c>: two processes share the stages and give what one process gives, bit for bit; the helper
/// stops with its run, however the run ends.
/// </summary>
public class RunJobsTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void Two_jobs_share_the_stages_and_every_stage_equals_a_single_process_run()
    {
        var dir = TestData.NewTempFolder("jobs");
        try
        {
            // The tiny pipeline with baselines; the wide stage gets enough steps that the helper process is up before it
            // ends and takes the stages that do not need it (standard, deeper).
            var c = ExperimentRunnerTests.Tiny("jobs", baselines: true) with
            {
                Wide = new WideStageConfig { Train = ExperimentRunnerTests.Budget(steps: 1500) with { Eval = new EvalConfig { EveryEpochs = 0 } } },
            };
            var file = Path.Combine(dir, "jobs.yaml");
            File.WriteAllText(file, ConfigLoader.ToYaml(c));
            string data = Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!;
            string Args(string runs, int threads, string extra) => $"--threads {threads} --data-dir \"{data}\" run \"{file}\" --runs-dir \"{runs}\" {extra}";

            var clock = Stopwatch.StartNew();
            var (code, stdout, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "two"), 2, "--jobs 2 --thread-budget 0"));
            Assert.True(code == 0, stderr + stdout);
            var parallel = clock.Elapsed;
            Assert.Contains("worker 1: process ", stdout);
            // The helper ran at least one stage, and its output reached the parent's log.
            Assert.Matches(@"\[worker 1\] seed 0: \w+ done in ", stdout);
            Assert.DoesNotContain("exited with code", stdout);
            Assert.DoesNotContain("threads: ", stdout); // the fixed split: no process lent its thread
            Assert.True(File.Exists(Path.Combine(dir, "two", "jobs", "worker-1.log")));
            var report = File.ReadAllText(Path.Combine(dir, "two", "jobs", "report.md"));
            Assert.DoesNotContain("Interim report", report);
            // The helper has exited: the final report's latencies are measured on the run's 2 threads, not on a share.
            Assert.Contains("on 2 thread(s) of this machine.\n", report.ReplaceLineEndings("\n")); // and measured alone

            clock.Restart();
            (code, stdout, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "one"), 1, ""));
            Assert.True(code == 0, stderr + stdout);
            // Written to a pipe, the table is not squeezed into 80 columns: a row's cells are not broken mid-word.
            Assert.Matches(@"│ thin: go wide, then narrow +│ [^\n]*│ wide \S+ +│", stdout);
            // Under the table: the method against the other rows.
            Assert.Matches(@"thin: go wide, then narrow, test top-1 minus: thin: after imitation only [+-]?\d+\.\d\d \((better|worse|tie)\); thin: standard [+-]?\d+\.\d\d \((better|worse|tie)\); ", stdout);
            Assert.Contains("on 1 thread(s) of this machine", File.ReadAllText(Path.Combine(dir, "one", "jobs", "report.md")));
            output.WriteLine($"--jobs 2 {parallel.TotalSeconds:F1} s, one process {clock.Elapsed.TotalSeconds:F1} s");

            // One thread per stage in both runs: every stage's final weights are the same bytes.
            foreach (var stage in ExperimentRunner.DeclaredStages(c))
                Assert.True(File.ReadAllBytes(Path.Combine(dir, "two", "jobs", "seed-0", stage, "final.model"))
                    .AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir, "one", "jobs", "seed-0", stage, "final.model"))), stage);

            // wtn export: the method's thin network as PyTorch weights plus the manifest that rebuilds it.
            var exported = Path.Combine(dir, "export", "thin.safetensors");
            string Export(string extra) => $"--threads 1 --data-dir \"{data}\" export \"{file}\" --runs-dir \"{Path.Combine(dir, "one")}\" {extra}";
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
            (code, stdout, stderr) = WtnProcess.Run($"--threads 1 --data-dir \"{data}\" eval \"{ModelExport.ManifestPath(exported)}\" --per-class 20 --batch-size 100 --json");
            Assert.True(code == 0, stderr + stdout);
            var eval = System.Text.Json.JsonDocument.Parse(stdout).RootElement;
            Assert.Equal(200, eval.GetProperty("examples").GetInt64());
            Assert.Equal(manifest.TestTop1!.Value, eval.GetProperty("top1").GetDouble(), 12);
            var perClass = eval.GetProperty("perClass").EnumerateArray().ToList();
            Assert.Equal(10, perClass.Count);
            Assert.All(perClass, c => Assert.Equal(20, c.GetProperty("examples").GetInt64()));
            Assert.Equal(eval.GetProperty("top1").GetDouble() * 200, perClass.Sum(c => c.GetProperty("correct").GetInt64()), 9);
            // In PyTorch, from raw pixels: python/wtn_models.py loads the export and preprocess() normalises the same 200
            // test images as the run did; the top-1 agrees (to one image: float rounding may flip a near tie).
            if (WideThenNarrow.Tests.Models.PyTorchPeerTests.PeerAvailable(output))
            {
                var fm = Path.Combine(data, "fashion-mnist");
                var r = WideThenNarrow.Tests.Models.PyTorchPeerTests.RunPeer(
                    $"evaluate \"{ModelExport.ManifestPath(exported)}\" \"{fm}/t10k-images-idx3-ubyte.gz\" \"{fm}/t10k-labels-idx1-ubyte.gz\" 20");
                output.WriteLine($"peer evaluate: {r.Stdout.Trim()} {r.Stderr.Trim()}; wtn: {manifest.TestTop1 * 200} of 200");
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
            foreach (var (manifestFile, extra, named) in new[]
            {
                (ModelExport.ManifestPath(exported), "--split dev", "--split"), (ModelExport.ManifestPath(exported), "--per-class 0", "--per-class"),
                (renamedPath, "", "the network's classes (cat, Trouser"),
            })
            {
                (code, _, stderr) = WtnProcess.Run($"--data-dir \"{data}\" eval \"{manifestFile}\" {extra}");
                Assert.Equal(2, code);
                Assert.Contains(named, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            }

            // --stage all: every finished stage of the seed, each with its manifest.
            (code, stdout, stderr) = WtnProcess.Run(Export($"--stage all -o \"{Path.Combine(dir, "all")}\" --format pth"));
            Assert.True(code == 0, stderr + stdout);
            Assert.Equal(ExperimentRunner.DeclaredStages(c).Select(s => $"seed-0-{s}.json").Order(),
                Directory.GetFiles(Path.Combine(dir, "all"), "*.json").Select(Path.GetFileName).Order()!);
            Assert.All(Directory.GetFiles(Path.Combine(dir, "all"), "*.json"), f => ModelExport.Verify(f));

            // The run folder stands for the experiment file (its run-config.yaml), as after wtn demo.
            (code, stdout, stderr) = WtnProcess.Run($"--threads 1 --data-dir \"{data}\" export \"{Path.Combine(dir, "one", "jobs")}\" --stage standard -o \"{Path.Combine(dir, "export", "std.pth")}\"");
            Assert.True(code == 0, stderr + stdout);
            Assert.Equal("experiment jobs, seed 0, stage standard", ModelExport.Verify(Path.Combine(dir, "export", "std.json")).Source);
            // A weights file past what the disk takes (a 16 KB file-size limit: EFBIG, as on a file system whose largest
            // file is smaller): one line naming it, exit 2, and nothing left in the folder, not even a temporary file.
            var full = Path.Combine(dir, "full");
            Directory.CreateDirectory(full);
            Assert.True(new FileInfo(Path.Combine(dir, "export", "std.pth")).Length > 16 << 10);
            (code, _, stderr) = WtnProcess.RunWithFileSizeLimit(Export($"-o \"{Path.Combine(full, "thin.safetensors")}\""), 16);
            Assert.Equal(2, code);
            Assert.StartsWith($"wtn: error: cannot write {Path.Combine(full, "thin.safetensors")}: ",
                Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            Assert.Empty(Directory.GetFileSystemEntries(full));
            foreach (var (extra, named) in new[]
            {
                ("--stage nope -o x.pth", "'nope' is not a stage"), ("--seed 3 -o x.pth", "--seed 3"), ("-o x.json", "--out"),
                ("--stage all --format tflite -o d", "--format: 'tflite'"),
            })
            {
                (code, _, stderr) = WtnProcess.Run(Export(extra));
                Assert.Equal(2, code);
                Assert.Contains(named, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            }

            // --join without a running run, --join with --jobs, and a bad or stray --thread-budget: one line, exit 2.
            foreach (var (extra, named) in new[]
            {
                ("--join", "no wtn run is running"), ("--join --jobs 2", "--join and --jobs"),
                ("--jobs 2 --thread-budget -1", "--thread-budget must be 0"), ("--thread-budget 2", "--thread-budget is shared by the processes of --jobs"),
            })
            {
                (code, _, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "one"), 1, extra));
                Assert.Equal(2, code);
                Assert.Contains(named, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Killing_the_run_stops_its_helper_which_checkpoints_where_it_stopped_and_frees_every_lock()
    {
        var dir = TestData.NewTempFolder("jobkill");
        try
        {
            // Long enough stages that both processes are mid-stage when the run is killed.
            var (run, lines, _, runs) = StartLongRun(dir, "jobkill", withStandard: true, checkpointEvery: 50, "--threads 2", "--jobs 2");
            using var _run = run;
            var standardCkpt = Path.Combine(runs, "jobkill", "seed-0", "standard", "train", "checkpoints");
            var clock = Stopwatch.StartNew();
            while (!(Directory.Exists(standardCkpt) && Directory.GetFiles(standardCkpt, "step-*").Length > 0) && clock.Elapsed < TimeSpan.FromMinutes(3) && !run.HasExited)
                Thread.Sleep(100);
            Assert.False(run.HasExited, string.Join("\n", lines));
            var helperPid = int.Parse(Regex.Match(string.Join("\n", lines), @"worker 1: process (\d+)").Groups[1].Value);
            using var helper = Process.GetProcessById(helperPid);

            // kill -9: the run cannot tell its helper; the helper sees its standard input close.
            run.Kill();
            run.WaitForExit();
            Assert.True(helper.WaitForExit(120_000), "the helper outlived its run");
            // It stopped at a step boundary and checkpointed exactly there (periodic checkpoints fall on multiples of 50).
            var progress = RunProgressFile.TryRead(Path.Combine(runs, "jobkill", "seed-0", "standard", "train"))!;
            var newest = Directory.GetFiles(standardCkpt, "step-*.ckpt").Select(f => long.Parse(Path.GetFileNameWithoutExtension(f)["step-".Length..])).Max();
            Assert.Equal(progress.Step, newest);
            // Nothing holds the experiment or its stages any more: a rerun can take them and resume.
            foreach (var folder in new[] { Path.Combine(runs, "jobkill"), Path.Combine(runs, "jobkill", "seed-0", "standard"), Path.Combine(runs, "jobkill", "seed-0", "wide") })
                using (var free = RunLock.TryAcquire(folder))
                    Assert.NotNull(free);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void SIGTERM_checkpoints_the_stage_and_says_where_and_how_to_continue()
    {
        var dir = TestData.NewTempFolder("sigterm");
        try
        {
            var (run, stdout, stderr, runs) = StartLongRun(dir, "sigterm", withStandard: false, checkpointEvery: 1000, "--threads 1", "");
            using var _run = run;
            // Mid-stage: the trainer has logged a few steps (progress.json every 2 steps).
            var train = Path.Combine(runs, "sigterm", "seed-0", "wide", "train");
            var clock = Stopwatch.StartNew();
            while (!(RunProgressFile.TryRead(train)?.Step >= 4) && clock.Elapsed < TimeSpan.FromMinutes(3) && !run.HasExited)
                Thread.Sleep(50);
            Assert.False(run.HasExited, string.Join("\n", stdout.Concat(stderr)));

            using (var kill = Process.Start("kill", $"-TERM {run.Id}")!) kill.WaitForExit();
            Assert.True(run.WaitForExit(120_000), "wtn run outlived SIGTERM");
            run.WaitForExit();
            Assert.Equal(130, run.ExitCode);
            // One line: the stage, the step, the checkpoint written on the way out, and how to go on.
            var line = Assert.Single(stderr);
            var m = Regex.Match(line, @"^wtn: error: stage wide interrupted at step (\d+); checkpoint (\S+); run the same command again to continue$");
            Assert.True(m.Success, line);
            Assert.True(File.Exists(m.Groups[2].Value), line);
            Assert.Equal($"step-{long.Parse(m.Groups[1].Value):D9}.ckpt", Path.GetFileName(m.Groups[2].Value));
            Assert.Equal(long.Parse(m.Groups[1].Value), RunProgressFile.TryRead(train)!.Step);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>
    /// Starts <c>wtn run</c> in the background on a tiny experiment whose wide stage (and standard, with
    /// <paramref name="withStandard"/>) would train for 100,000 steps: its standard output and error lines as they come.
    /// </summary>
    static (Process Run, System.Collections.Concurrent.ConcurrentQueue<string> Stdout, System.Collections.Concurrent.ConcurrentQueue<string> Stderr, string RunsDir)
        StartLongRun(string dir, string name, bool withStandard, int checkpointEvery, string globalArgs, string runArgs)
    {
        var train = ExperimentRunnerTests.Budget(steps: 100000) with { Checkpoint = new CheckpointConfig { EverySteps = checkpointEvery, KeepLast = 1 } };
        var c = ExperimentRunnerTests.Tiny(name, baselines: false) with
        {
            Imitation = null, Finetune = null,
            Wide = new WideStageConfig { Train = train },
            Standard = withStandard ? new StandardStageConfig { Train = train } : null,
        };
        var file = Path.Combine(dir, $"{name}.yaml");
        File.WriteAllText(file, ConfigLoader.ToYaml(c));
        string data = Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!;
        var runs = Path.Combine(dir, "runs");
        var psi = new ProcessStartInfo(WtnProcess.ExePath, $"{globalArgs} --data-dir \"{data}\" run \"{file}\" --runs-dir \"{runs}\" {runArgs}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var run = Process.Start(psi)!;
        var stdout = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var stderr = new System.Collections.Concurrent.ConcurrentQueue<string>();
        run.OutputDataReceived += (_, e) => { if (e.Data is not null) stdout.Enqueue(e.Data); };
        run.ErrorDataReceived += (_, e) => { if (e.Data is not null) stderr.Enqueue(e.Data); };
        run.BeginOutputReadLine();
        run.BeginErrorReadLine();
        return (run, stdout, stderr, runs);
    }
}
