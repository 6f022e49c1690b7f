using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Tests.Method;

namespace WideThenNarrow.Tests.Cli;

/// <summary><c>wtn run --jobs 2</c>: two processes share the stages and give what one process gives, bit for bit.</summary>
public class RunJobsTests
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

            var clock = System.Diagnostics.Stopwatch.StartNew();
            var (code, stdout, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "two"), 2, "--jobs 2"));
            Assert.True(code == 0, stderr + stdout);
            var parallel = clock.Elapsed;
            Assert.Contains("worker 1: process ", stdout);
            // The helper ran at least one stage, and its output reached the parent's log.
            Assert.Matches(@"\[worker 1\] seed 0: \w+ done in ", stdout);
            Assert.DoesNotContain("exited with code", stdout);
            Assert.True(File.Exists(Path.Combine(dir, "two", "jobs", "worker-1.log")));
            var report = File.ReadAllText(Path.Combine(dir, "two", "jobs", "report.md"));
            Assert.DoesNotContain("Interim report", report);

            clock.Restart();
            (code, stdout, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "one"), 1, ""));
            Assert.True(code == 0, stderr + stdout);
            Console.WriteLine($"--jobs 2 {parallel.TotalSeconds:F1} s, one process {clock.Elapsed.TotalSeconds:F1} s");

            // One thread per process in both runs: every stage's final weights are the same bytes.
            foreach (var stage in ExperimentRunner.DeclaredStages(c))
                Assert.True(File.ReadAllBytes(Path.Combine(dir, "two", "jobs", "seed-0", stage, "final.model"))
                    .AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir, "one", "jobs", "seed-0", stage, "final.model"))), stage);

            // --join without a running run, and --join with --jobs: one line, exit 2.
            foreach (var (extra, named) in new[] { ("--join", "no wtn run is running"), ("--join --jobs 2", "--join and --jobs") })
            {
                (code, _, stderr) = WtnProcess.Run(Args(Path.Combine(dir, "one"), 1, extra));
                Assert.Equal(2, code);
                Assert.Contains(named, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            }
        }
        finally { Directory.Delete(dir, true); }
    }
}
