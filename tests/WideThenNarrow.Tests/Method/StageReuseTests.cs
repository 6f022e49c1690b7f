using System.Security.Cryptography;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Reporting;
using WideThenNarrow.Tests.Cli;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Method;

/// <summary><c>wtn run --reuse-from</c>: an ablation of stage 3 keeps the wide network and stage 2 of an earlier run.</summary>
[Collection("torch-rng")]
public class StageReuseTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static ExperimentRunner Runner(ExperimentConfig c, string runs, List<string> log, params string[] reuseFrom) =>
        new(
            c,
            runs,
            Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!,
            CPU,
            null,
            new ExperimentRunnerTests.ListLog(log)
        )
        {
            ReuseFrom = reuseFrom,
        };

    static string Sha(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>Every file of a stage folder (relative path -> SHA-256), the lock files left out.</summary>
    static SortedDictionary<string, string> Files(string dir) =>
        new(
            Directory
                .GetFiles(dir, "*", SearchOption.AllDirectories)
                .Where(f =>
                    !Path.GetFileName(f).StartsWith(".lock", StringComparison.Ordinal)
                    && Path.GetFileName(f) != StageReuse.FileName
                )
                .ToDictionary(f => Path.GetRelativePath(dir, f), Sha),
            StringComparer.Ordinal
        );

    [Fact]
    public void An_ablation_of_stage_3_reuses_the_wide_network_and_stage_2_and_trains_stage_3()
    {
        var runs = TestData.NewTempFolder("reuse");
        try
        {
            var a = ExperimentRunnerTests.Tiny("a", baselines: false) with { Standard = null };
            Runner(a, runs, []).Run();
            var aDir = Path.Combine(runs, "a");
            var aSeed = Path.Combine(aDir, "seed-0");
            var before = new[] { "wide", "imitation", "finetune" }.ToDictionary(
                s => s,
                s => Files(Path.Combine(aSeed, s))
            );

            // B: stage 3's learning rate alone changed. An interrupted reuse left a half copy behind: it is cleared.
            var b = a with
            {
                Name = "b",
                Finetune = a.Finetune! with { Train = ExperimentRunnerTests.Budget(epochs: 2, lr: 0.05) },
            };
            var bSeed = Path.Combine(runs, "b", "seed-0");
            var half = Path.Combine(bSeed, ".wide.reuse-2147483646");
            Directory.CreateDirectory(half);
            File.WriteAllText(Path.Combine(half, StageSummary.FileName), "{");
            // A lock a killed process left is no start of the stage: the finished one replaces it.
            Directory.CreateDirectory(Path.Combine(bSeed, "imitation"));
            File.WriteAllText(Path.Combine(bSeed, "imitation", ".lock"), "");
            var log = new List<string>();
            var result = Runner(b, runs, log, aDir).Run();
            foreach (var l in log)
                output.WriteLine(l);

            foreach (var stage in new[] { "wide", "imitation" })
            {
                Assert.Contains(
                    $"seed 0: {stage} reused from {Path.Combine(aSeed, stage)} (same settings; files hard-linked)",
                    log
                );
                Assert.DoesNotContain(log, l => l.StartsWith($"seed 0: {stage} done in", StringComparison.Ordinal)); // not trained
                // Every file as run A left it: the weights, and the training metrics not written anew.
                Assert.Equal(before[stage], Files(Path.Combine(bSeed, stage)));
                Assert.Contains(before[stage].Keys, k => k.EndsWith("metrics.jsonl", StringComparison.Ordinal));
                Assert.Equal(
                    StageSummary.TryLoad(Path.Combine(aSeed, stage))!.WeightsSha256,
                    result.PerSeed[0][stage].WeightsSha256
                );
                Assert.False(File.Exists(Path.Combine(aSeed, stage, StageReuse.FileName))); // run A's folders untouched
                Assert.Equal(Path.Combine(aSeed, stage), result.Status.Single(s => s.Stage == stage).ReusedFrom);
            }
            Assert.Contains(log, l =>
                l.StartsWith(
                    $"seed 0: finetune not reused from {Path.Combine(aSeed, "finetune")}: it was trained under other settings "
                        + "(finetune.train.optimizer.lr 0.02 -> 0.05)",
                    StringComparison.Ordinal
                )
            );
            Assert.Contains(
                "seed 0: finetune: no --reuse-from run has it finished under this run's settings; training it here",
                log
            );
            Assert.DoesNotContain(log, l => l.StartsWith("seed 0: wide: no --reuse-from", StringComparison.Ordinal));
            Assert.Contains(log, l => l.StartsWith("seed 0: finetune done in", StringComparison.Ordinal));
            Assert.NotEqual(before["finetune"]["final.model"], Sha(Path.Combine(bSeed, "finetune", "final.model")));
            Assert.Null(result.Status.Single(s => s.Stage == "finetune").ReusedFrom);
            Assert.Empty(Directory.GetDirectories(bSeed, ".*"));
            Assert.Equal(before["wide"], Files(Path.Combine(aSeed, "wide"))); // run A unchanged by B
            var report = File.ReadAllText(Path.Combine(runs, "b", "report.md"));
            Assert.Contains(
                $"Reused from earlier runs (same settings, not trained in this one): seed 0 wide, imitation from {aSeed}.",
                report
            );

            // C: another data setting changes every stage's settings: nothing is reused.
            var c = a with { Name = "c", Data = a.Data with { TrainPerClass = 30 } };
            var cLog = new List<string>();
            Runner(c, runs, cLog, aDir).Run();
            foreach (var l in cLog)
                output.WriteLine(l);
            Assert.DoesNotContain(cLog, l =>
                l.Contains(" reused from ", StringComparison.Ordinal)
                && !l.Contains(" not reused from ", StringComparison.Ordinal)
            );
            foreach (var stage in new[] { "wide", "imitation", "finetune" })
            {
                Assert.Contains(cLog, l =>
                    l.StartsWith($"seed 0: {stage} not reused from", StringComparison.Ordinal)
                    && l.Contains("data.train_per_class 40 -> 30", StringComparison.Ordinal)
                );
                Assert.Contains(cLog, l => l.StartsWith($"seed 0: {stage} done in", StringComparison.Ordinal));
            }
            Assert.DoesNotContain("Reused from earlier runs", File.ReadAllText(Path.Combine(runs, "c", "report.md")));

            // D: A's settings again, from a run whose stage 2 is unfinished there: the wide network alone is reused.
            var unfinished = Path.Combine(runs, "a-unfinished");
            Directory.CreateDirectory(Path.Combine(unfinished, "seed-0"));
            File.Copy(
                Path.Combine(aDir, ExperimentRunner.RunConfigFile),
                Path.Combine(unfinished, ExperimentRunner.RunConfigFile)
            );
            Directory.CreateSymbolicLink(Path.Combine(unfinished, "seed-0", "wide"), Path.Combine(aSeed, "wide"));
            var copyOfImitation = Directory.CreateDirectory(Path.Combine(unfinished, "seed-0", "imitation")).FullName;
            File.WriteAllText(Path.Combine(copyOfImitation, ExperimentRunner.StartedSettingsFile), "seed: 0\n");
            var dLog = new List<string>();
            Runner(a with { Name = "d" }, runs, dLog, unfinished).Run();
            foreach (var l in dLog)
                output.WriteLine(l);
            Assert.Contains(dLog, l => l.StartsWith("seed 0: wide reused from", StringComparison.Ordinal));
            Assert.Contains($"seed 0: imitation not reused from {copyOfImitation}: it is not finished there", dLog);
            Assert.Contains(dLog, l => l.StartsWith("seed 0: imitation done in", StringComparison.Ordinal));

            // E: the same two folders, then A's: each stage comes from the first folder that finished it, and no line
            // says a stage is trained here when a later folder still had it.
            var eLog = new List<string>();
            var e = Runner(a with { Name = "e" }, runs, eLog, unfinished, aDir).Run();
            foreach (var l in eLog)
                output.WriteLine(l);
            Assert.Contains($"seed 0: imitation not reused from {copyOfImitation}: it is not finished there", eLog);
            Assert.Equal(Path.Combine(aSeed, "imitation"), e.Status.Single(s => s.Stage == "imitation").ReusedFrom);
            Assert.Equal(
                Path.Combine(unfinished, "seed-0", "wide"),
                e.Status.Single(s => s.Stage == "wide").ReusedFrom
            );
            Assert.DoesNotContain(eLog, l => l.Contains(": no --reuse-from run has it", StringComparison.Ordinal));
            Assert.DoesNotContain(eLog, l => l.Contains(" done in ", StringComparison.Ordinal)); // nothing trained
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void With_jobs_the_parent_reuses_before_it_starts_the_stage_processes()
    {
        var dir = TestData.NewTempFolder("reusejobs");
        try
        {
            var a = ExperimentRunnerTests.Tiny("a", baselines: false) with { Standard = null };
            var b = a with
            {
                Name = "b",
                Finetune = a.Finetune! with { Train = ExperimentRunnerTests.Budget(epochs: 2, lr: 0.05) },
            };
            string data = Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!,
                runs = Path.Combine(dir, "runs");
            string Run(ExperimentConfig c, string extra)
            {
                var file = Path.Combine(dir, $"{c.Name}.yaml");
                File.WriteAllText(file, ConfigLoader.ToYaml(c));
                var (code, stdout, stderr) = WtnProcess.Run(
                    $"--threads 2 --data-dir \"{data}\" run \"{file}\" --runs-dir \"{runs}\" {extra}"
                );
                output.WriteLine(stdout);
                Assert.True(code == 0, stderr + stdout);
                return stdout;
            }
            Run(a, "");
            var stdout = Run(b, $"--jobs 2 --reuse-from \"{Path.Combine(runs, "a")}\"");
            var aSeed = Path.Combine(runs, "a", "seed-0");
            Assert.Contains($"seed 0: wide reused from {Path.Combine(aSeed, "wide")} (same settings", stdout);
            Assert.Contains($"seed 0: imitation reused from {Path.Combine(aSeed, "imitation")} (same settings", stdout);
            // Only stage 3 became a process; the reused stages were done before the graph was built.
            Assert.Contains("seed-0/finetune: started", stdout);
            Assert.DoesNotContain("seed-0/wide: started", stdout);
            Assert.DoesNotContain("\nseed-0/imitation", stdout.ReplaceLineEndings("\n"));
            Assert.Contains("Reused from earlier runs", File.ReadAllText(Path.Combine(runs, "b", "report.md")));
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    /// <summary>Takes the jobs wtn submit hands to Slurm; submits nothing.</summary>
    sealed class RecordingSlurm : ISlurm
    {
        public List<string> Scripts { get; } = [];

        public string Submit(string script)
        {
            Scripts.Add(script);
            return $"{1000 + Scripts.Count}";
        }

        public SlurmJobState? State(string jobId) => null;
    }

    // wtn submit --reuse-from brings the stages in before it submits, so they get no job; and from another file system
    // (/dev/shm, a tmpfs here) no hard link can be made: the files are copied, byte for byte.
    [Fact]
    public void Submit_reuses_stages_from_another_file_system_by_copying_them_and_submits_only_the_rest()
    {
        Assert.True(
            Directory.Exists("/dev/shm"),
            "this test needs /dev/shm (a tmpfs) to put the earlier run on another file system"
        );
        var shm = Path.Combine("/dev/shm", $"wtn-reuse-{Guid.NewGuid():N}");
        var runs = TestData.NewTempFolder("reusesubmit");
        try
        {
            var a = ExperimentRunnerTests.Tiny("a", baselines: false) with { Standard = null };
            Runner(a, shm, []).Run();
            var aSeed = Path.Combine(shm, "a", "seed-0");
            var b = a with
            {
                Name = "b",
                Finetune = a.Finetune! with { Train = ExperimentRunnerTests.Budget(epochs: 2, lr: 0.05) },
            };
            var log = new List<string>();
            var slurm = new RecordingSlurm();
            var settings = new SlurmSettings
            {
                Wtn = ["wtn"],
                Threads = 1,
                DataDir = "/data",
            };
            var (jobs, submitted) = Runner(b, runs, log, Path.Combine(shm, "a"))
                .Submit(1, settings, slurm, dryRun: false);
            foreach (var l in log)
                output.WriteLine(l);

            var bSeed = Path.Combine(runs, "b", "seed-0");
            foreach (var stage in new[] { "wide", "imitation" })
            {
                Assert.Contains(
                    $"seed 0: {stage} reused from {Path.Combine(aSeed, stage)} (same settings; files copied)",
                    log
                );
                Assert.Equal(Files(Path.Combine(aSeed, stage)), Files(Path.Combine(bSeed, stage)));
                Assert.True(StageSummary.IsDone(Path.Combine(bSeed, stage)));
            }
            // Jobs for stage 3 and the report only: the reused stages are done.
            Assert.Equal(["finetune", "report"], jobs.Select(j => j.Stage).ToList());
            Assert.Equal(jobs.Count, slurm.Scripts.Count);
            Assert.DoesNotContain(slurm.Scripts, s => s.Contains("--only seed-0/wide", StringComparison.Ordinal));
            Assert.Contains(slurm.Scripts, s => s.Contains("--only seed-0/finetune", StringComparison.Ordinal));

            // A dry run brings nothing: a fresh run folder gets the full graph and stays without stages.
            var dry = Runner(b with { Name = "c" }, runs, [], Path.Combine(shm, "a"))
                .Submit(1, settings, slurm, dryRun: true)
                .Jobs;
            Assert.Contains(dry, j => j.Stage == "wide");
            Assert.False(Directory.Exists(Path.Combine(runs, "c", "seed-0", "wide")));
        }
        finally
        {
            TestData.DeleteFolder(runs);
            TestData.DeleteFolder(shm);
        }
    }

    [Fact]
    public void A_missing_or_foreign_reuse_folder_fails_with_one_line_naming_it()
    {
        var path = Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-resnet.yaml");
        var runs = TestData.NewTempFolder("reusecli");
        try
        {
            var notRun = Directory.CreateDirectory(Path.Combine(runs, "just-a-folder")).FullName;
            foreach (
                var (folder, says) in new[]
                {
                    (Path.Combine(runs, "missing"), "does not exist"),
                    (notRun, "is not a run folder"),
                }
            )
            {
                var (code, _, stderr) = WtnProcess.Run(
                    $"run {path} --runs-dir {runs} --set max_steps=1 --reuse-from {folder}"
                );
                Assert.Equal(2, code);
                var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
                Assert.Contains("--reuse-from", line);
                Assert.Contains(folder, line);
                Assert.Contains(says, line);
            }
            Assert.Equal([notRun], Directory.GetFileSystemEntries(runs)); // nothing ran, nothing was written
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }
}
