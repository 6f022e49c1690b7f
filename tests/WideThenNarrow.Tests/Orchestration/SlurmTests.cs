using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Tests.Cli;
using WideThenNarrow.Tests.Method;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Orchestration;

/// <summary>
/// <c>wtn submit</c> on a real Slurm cluster (this machine as its one node, started by .ci/slurm-up.sh): the jobs give
/// what a plain <c>wtn run</c> gives, stage by stage and in the report; a requeued stage resumes exactly; a failed stage
/// cancels its dependents and the report says which and why.
/// </summary>
public class SlurmTests(ITestOutputHelper output)
{
    static readonly Lazy<string?> SlurmProblem = new(() =>
    {
        try
        {
            var (code, stdout, stderr) = Sh("sinfo -h -o %T");
            if (code != 0)
                return $"sinfo failed: {(stderr + stdout).Trim()}";
            return stdout.Split('\n').Any(l => l.Trim() is "idle" or "mixed" or "allocated")
                ? null
                : $"no node is up (sinfo: {stdout.Trim()})";
        }
        catch (Exception e)
        {
            return $"sinfo not runnable: {e.Message}";
        }
    });

    /// <summary>
    /// Slurm is optional on developer machines: without a running cluster the tests say so and pass. Under CI (CI=true),
    /// where .ci/run starts one, its absence is a failure, as for the PyTorch peer.
    /// </summary>
    bool SlurmUp()
    {
        if (SlurmProblem.Value is null)
            return true;
        if (Environment.GetEnvironmentVariable("CI") == "true")
            Assert.Fail(
                $"Slurm unavailable under CI ({SlurmProblem.Value}); .ci/run must start it with .ci/slurm-up.sh"
            );
        output.WriteLine(
            $"SKIPPED: Slurm unavailable ({SlurmProblem.Value}); start a one-node cluster with .ci/slurm-up.sh (root)"
        );
        return false;
    }

    static (int Code, string Stdout, string Stderr) Sh(string command)
    {
        var psi = new ProcessStartInfo("bash", ["-c", command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, err.Result);
    }

    static string Data => Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!;

    /// <summary>A tiny experiment: few steps per stage, stage 2 with teacher input (an array of one task per unit), no evaluation on the way.</summary>
    static ExperimentConfig Tiny(string name)
    {
        var budget = ExperimentRunnerTests.Budget(steps: 8) with { Eval = new EvalConfig { EveryEpochs = 0 } };
        return ExperimentRunnerTests.Tiny(name, baselines: false) with
        {
            Wide = new WideStageConfig { Train = budget },
            Imitation = new ImitationStageConfig
            {
                Train = ExperimentRunnerTests.Budget(steps: 4, wd: 0) with
                {
                    Eval = new EvalConfig { EveryEpochs = 0 },
                },
            },
            Finetune = new DistillStageConfig { Alpha = 0.5, Train = budget },
            Standard = new StandardStageConfig { Train = budget },
        };
    }

    static string WriteExperiment(string dir, ExperimentConfig c)
    {
        var file = Path.Combine(dir, $"{c.Name}.yaml");
        File.WriteAllText(file, ConfigLoader.ToYaml(c));
        return file;
    }

    /// <summary>Waits until no job recorded for the experiment is queued or running; returns each stage's newest job's state.</summary>
    static Dictionary<(string Id, string Part), (SlurmRecord Record, SlurmJobState? State)> WaitForJobs(
        string experimentDir,
        TimeSpan timeout,
        Action? whileRunning = null
    )
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var latest = SlurmSubmission.Latest(experimentDir, new SlurmCli());
            if (latest.Values.All(j => !SlurmSubmission.Live(j.State)))
                return latest;
            if (clock.Elapsed > timeout)
                throw new TimeoutException(
                    $"Slurm jobs of {experimentDir} not finished after {timeout.TotalSeconds} s: "
                        + string.Join(
                            ", ",
                            latest.Select(kv =>
                                $"{kv.Key.Id} {kv.Key.Part} {kv.Value.State?.State} {kv.Value.State?.Reason}"
                            )
                        )
                );
            whileRunning?.Invoke();
            Thread.Sleep(1000);
        }
    }

    static StageSummary Stage(string runs, string name, string stage) =>
        StageSummary.TryLoad(Path.Combine(runs, name, "seed-0", stage))
        ?? throw new Xunit.Sdk.XunitException($"{runs}/{name}/seed-0/{stage} is not done");

    [Fact]
    public async Task Submitted_stages_and_report_equal_a_plain_run_and_the_report_shows_each_job_while_they_run()
    {
        if (!SlurmUp())
            return;
        var dir = TestData.NewTempFolder("slurm");
        try
        {
            var c = Tiny("slurm");
            var file = WriteExperiment(dir, c);
            string one = Path.Combine(dir, "one"),
                two = Path.Combine(dir, "two");
            // The plain run, one process, beside the cluster's jobs (one thread each: the same arithmetic).
            var plain = Task.Run(() =>
                WtnProcess.Run($"--threads 1 --data-dir \"{Data}\" run \"{file}\" --runs-dir \"{one}\"")
            );

            var (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{Data}\" submit \"{file}\" --runs-dir \"{two}\""
            );
            Assert.True(code == 0, stderr + stdout);
            Assert.Contains("imitation (units, job array)", stdout);
            var records = SlurmSubmission.ReadRecords(Path.Combine(two, "slurm"));
            // wide, units, imitation, finetune, standard, report.
            Assert.Equal(
                ["wide", "imitation", "imitation", "finetune", "standard", "report"],
                records.Select(r => r.Stage)
            );
            var wideJob = records[0].JobId;
            Assert.Equal([wideJob], records[1].After); // the units wait for the wide network
            Assert.Equal([wideJob, records[1].JobId], records[2].After); // the assembly for the units too
            Assert.Empty(records[4].After); // standard needs nothing
            // Submitting again while the jobs are queued or running submits nothing.
            (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{Data}\" submit \"{file}\" --runs-dir \"{two}\""
            );
            Assert.True(code == 0, stderr + stdout);
            Assert.Contains("nothing to submit", stdout);
            Assert.Equal(records.Count, SlurmSubmission.ReadRecords(Path.Combine(two, "slurm")).Count);

            // While the jobs run, wtn report shows every stage's job and its state.
            string? during = null;
            var latest = WaitForJobs(Path.Combine(two, "slurm"), TimeSpan.FromSeconds(240), () =>
            {
                if (during is not null)
                    return;
                var r = WtnProcess.Run($"--threads 1 --data-dir \"{Data}\" report \"{file}\" --runs-dir \"{two}\"");
                // Its status table; a detail cell longer than the console's width wraps onto rows of its own, joined back.
                if (r.ExitCode == 0)
                    during = JoinWrappedCells(r.Stdout);
            });
            Assert.All(latest.Values, j => Assert.Equal("COMPLETED", j.State?.State));
            Assert.NotNull(during);
            output.WriteLine(during);
            Assert.Matches($@"│ 0 +│ wide +│ \w+ +│ [^│\n]*Slurm job {wideJob} (PENDING|RUNNING|COMPLETED)", during);
            Assert.Matches(
                $@"│ 0 +│ imitation +│ \w+ +│ [^│\n]*Slurm job array {records[1].JobId} \(units\) \w+[^│\n]*; Slurm job {records[2].JobId} \w+",
                during
            );
            Assert.Matches($@"│ 0 +│ standard +│ \w+ +│ [^│\n]*Slurm job {records[4].JobId} \w+", during);

            var (pcode, pout, perr) = await plain;
            Assert.True(pcode == 0, perr + pout);
            foreach (var stage in ExperimentRunner.DeclaredStages(c))
            {
                var (a, b) = (Stage(one, "slurm", stage), Stage(two, "slurm", stage));
                Assert.Equal(a.WeightsSha256, b.WeightsSha256);
                Assert.Equal(a.TestTop1, b.TestTop1);
                Assert.Equal(a.ValTop1, b.ValTop1);
            }
            // Stage 2 ran as an array, one task (process, log) per unit.
            int units = Directory.GetDirectories(Path.Combine(two, "slurm", "seed-0", "imitation"), "block-*").Length;
            Assert.True(units >= 3, $"{units} units");
            var taskLogs = Directory.GetFiles(Path.Combine(two, "slurm", "slurm"), "seed-0-imitation-units-*.out");
            Assert.Equal(units, taskLogs.Length);
            Assert.All(taskLogs, l => Assert.Matches(@"seed 0: imitation: unit \d done", File.ReadAllText(l)));
            // The report job's report: the same methods with the same accuracies and comparisons as the plain run's.
            JsonNode Results(string runs) =>
                JsonNode.Parse(File.ReadAllText(Path.Combine(runs, "slurm", "results.json")))!;
            var (ra, rb) = (Results(one), Results(two));
            static string Accuracies(JsonNode r) =>
                string.Join(
                    "\n",
                    r["methods"]!
                        .AsArray()
                        .Select(m => $"{m!["method"]} {m["valTop1"]?.ToJsonString()} {m["testTop1"]?.ToJsonString()}")
                );
            Assert.Equal(Accuracies(ra), Accuracies(rb));
            Assert.Equal(ra["comparisons"]!.ToJsonString(), rb["comparisons"]!.ToJsonString());
            Assert.DoesNotContain("Interim report", File.ReadAllText(Path.Combine(two, "slurm", "report.md")));

            // Submitting again: every stage is done, nothing to submit.
            (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{Data}\" submit \"{file}\" --runs-dir \"{two}\""
            );
            Assert.True(code == 0, stderr + stdout);
            Assert.Contains("nothing to submit", stdout);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void Dry_run_prints_one_script_per_stage_with_its_dependencies_the_imitation_units_as_an_array_and_submits_nothing()
    {
        var dir = TestData.NewTempFolder("slurm-dry");
        try
        {
            var c = Tiny("dry");
            var file = WriteExperiment(dir, c);
            var (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{Data}\" submit \"{file}\" --runs-dir \"{dir}\" --partition gpu --account lab --dry-run"
            );
            Assert.True(code == 0, stderr + stdout);
            var scripts = stdout.Split("# ---- ").Skip(1).ToDictionary(x => x[..x.IndexOf('\n')], x => x);
            Assert.Equal(
                [
                    "wtn-dry-s0-wide",
                    "wtn-dry-s0-imitation-units",
                    "wtn-dry-s0-imitation",
                    "wtn-dry-s0-finetune",
                    "wtn-dry-s0-standard",
                    "wtn-dry-report",
                ],
                scripts.Keys
            );
            Assert.All(scripts.Values, x =>
            {
                Assert.Contains("#SBATCH --cpus-per-task=1\n", x);
                Assert.Contains("#SBATCH --requeue\n", x);
                Assert.Contains("#SBATCH --signal=B:TERM@120\n", x);
                Assert.Contains("#SBATCH --partition=gpu\n", x);
                Assert.Contains("#SBATCH --account=lab\n", x);
                Assert.Matches(@"#SBATCH --mem=\d+M\n", x);
                Assert.Matches(@"#SBATCH --time=\d+-\d\d:\d\d:00\n", x);
            });
            Assert.DoesNotContain("--dependency", scripts["wtn-dry-s0-wide"]);
            Assert.DoesNotContain("--dependency", scripts["wtn-dry-s0-standard"]);
            Assert.Contains("#SBATCH --dependency=afterok:<wtn-dry-s0-wide>\n", scripts["wtn-dry-s0-imitation-units"]);
            Assert.Matches(@"#SBATCH --array=0-\d\n", scripts["wtn-dry-s0-imitation-units"]);
            Assert.Contains(
                "--only seed-0/imitation --unit \"$SLURM_ARRAY_TASK_ID\" &",
                scripts["wtn-dry-s0-imitation-units"]
            );
            Assert.Contains(
                "#SBATCH --dependency=afterok:<wtn-dry-s0-wide>:<wtn-dry-s0-imitation-units>\n",
                scripts["wtn-dry-s0-imitation"]
            );
            Assert.Contains("#SBATCH --dependency=afterok:<wtn-dry-s0-imitation>\n", scripts["wtn-dry-s0-finetune"]);
            Assert.Contains("--only seed-0/finetune &", scripts["wtn-dry-s0-finetune"]);
            Assert.Contains("#SBATCH --kill-on-invalid-dep=yes\n", scripts["wtn-dry-s0-finetune"]);
            Assert.Contains("<wtn-dry-s0-finetune>:<wtn-dry-s0-standard>", scripts["wtn-dry-report"]);
            Assert.Contains("nothing submitted (--dry-run)", stdout);
            Assert.False(Directory.Exists(Path.Combine(dir, "dry", "slurm")));
            // Student input: stage 2 is one job, no array.
            (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{Data}\" submit \"{file}\" --runs-dir \"{dir}\" --set imitation.input=student --seeds 2 --dry-run"
            );
            Assert.True(code == 0, stderr + stdout);
            Assert.DoesNotContain("--array", stdout);
            Assert.Contains("# ---- wtn-dry-s1-finetune\n", stdout);
            Assert.Contains(
                "#SBATCH --dependency=afterok:<wtn-dry-s1-imitation>\n",
                stdout.Split("# ---- wtn-dry-s1-finetune\n")[1]
            );
            Assert.Contains(
                "#SBATCH --dependency=afterok:<wtn-dry-s0-wide>\n",
                stdout.Split("# ---- wtn-dry-s0-imitation\n")[1]
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    /// <summary>Waits until job <paramref name="id"/> has been requeued <paramref name="restarts"/> times, then lets it run at once (Slurm holds a requeued job back for a while).</summary>
    static void Release(string id, int restarts)
    {
        var clock = Stopwatch.StartNew();
        Stopwatch? pendingSince = null;
        while (true)
        {
            var (_, show, _) = Sh($"scontrol show job -o {id}");
            if (show.Contains($"Restarts={restarts} "))
            {
                if (show.Contains("JobState=RUNNING") || show.Contains("JobState=COMPLETED"))
                    return;
                // Only once the node has let the stopped run go (started on a node still cleaning it up, the job fails at launch).
                if (
                    show.Contains("JobState=PENDING")
                    && (pendingSince ??= Stopwatch.StartNew()).Elapsed > TimeSpan.FromSeconds(5)
                )
                    Sh($"scontrol update JobId={id} StartTime=now");
            }
            Assert.True(
                clock.Elapsed < TimeSpan.FromSeconds(60) && !show.Contains("JobState=FAILED"),
                $"job {id} did not run again after restart {restarts}: {show}\n{(show.Split(' ').FirstOrDefault(f => f.StartsWith("StdOut=")) is { } o && File.Exists(o[7..]) ? File.ReadAllText(o[7..]) : "")}"
            );
            Thread.Sleep(300);
        }
    }

    /// <summary>Adds --hold to every job, so that the test can change what the jobs will read before they start.</summary>
    sealed class HeldSlurm : ISlurm
    {
        readonly SlurmCli cli = new();

        public string Submit(string script) =>
            cli.Submit(script.Replace("#!/bin/bash\n", "#!/bin/bash\n#SBATCH --hold\n"));

        public SlurmJobState? State(string jobId) => cli.State(jobId);
    }

    [Fact]
    public async Task A_requeued_stage_resumes_exactly_and_a_failed_stage_cancels_its_dependents()
    {
        if (!SlurmUp())
            return;
        var dir = TestData.NewTempFolder("slurm-rq");
        try
        {
            // Requeue: the wide stage alone, long enough to be caught running.
            var c = Tiny("requeue") with
            {
                Wide = new WideStageConfig
                {
                    Train = ExperimentRunnerTests.Budget(steps: 800) with { Eval = new EvalConfig { EveryEpochs = 0 } },
                },
                Imitation = null,
                Finetune = null,
                Standard = null,
            };
            var file = WriteExperiment(dir, c);
            string one = Path.Combine(dir, "one"),
                two = Path.Combine(dir, "two");
            var (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{Data}\" submit \"{file}\" --runs-dir \"{two}\""
            );
            Assert.True(code == 0, stderr + stdout);
            var job = SlurmSubmission.ReadRecords(Path.Combine(two, "requeue"))[0].JobId;
            var progress = Path.Combine(two, "requeue", "seed-0", "wide", "train");
            var clock = Stopwatch.StartNew();
            while (WideThenNarrow.Training.RunProgressFile.TryRead(progress) is not { Step: >= 10 })
            {
                Assert.True(
                    clock.Elapsed < TimeSpan.FromSeconds(90),
                    "the wide stage's job did not get to step 10 in 90 s"
                );
                Thread.Sleep(200);
            }
            // The warning before the time limit: SIGTERM to the batch shell only (as --signal=B:TERM@120 sends it); wtn
            // checkpoints and exits 130, the script puts the job back in the queue.
            Assert.Equal(0, Sh($"scancel --batch --signal=TERM {job}").Code);
            Release(job, restarts: 1);
            // Back from its checkpoint and training on: wait until it is past that checkpoint.
            string Log() =>
                string.Join(
                    "",
                    Directory
                        .GetFiles(Path.Combine(two, "requeue", "slurm"), $"seed-0-wide-{job}.out")
                        .Select(File.ReadAllText)
                );
            clock.Restart();
            while (
                System.Text.RegularExpressions.Regex.Match(Log(), @"wide: resuming at step (\d+)/")
                    is not { Success: true } m
                || WideThenNarrow.Training.RunProgressFile.TryRead(progress) is not { } p
                || p.Step < int.Parse(m.Groups[1].Value) + 10
            )
            {
                Assert.True(
                    clock.Elapsed < TimeSpan.FromSeconds(90),
                    $"the wide stage's job did not train on after its first requeue: {Log()}"
                );
                Thread.Sleep(200);
            }
            // Preemption: the scheduler requeues a running job.
            Assert.Equal(0, Sh($"scontrol requeue {job}").Code);
            Release(job, restarts: 2);
            var latest = WaitForJobs(Path.Combine(two, "requeue"), TimeSpan.FromSeconds(180));
            Assert.All(latest.Values, j => Assert.Equal("COMPLETED", j.State?.State));
            var log = Log();
            output.WriteLine(log);
            Assert.Contains("DUE TO JOB REQUEUE", log); // the preemption; the warning's requeue is the script's own
            Assert.Equal(
                2,
                System.Text.RegularExpressions.Regex.Matches(log, "wtn: error: stage wide interrupted at step").Count
            );
            Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(log, "wide: resuming from ").Count);
            // The same stage uninterrupted, after the cluster's job (a run beside it would slow it past the checks above).
            var (pcode, pout, perr) = await Task.Run(() =>
                WtnProcess.Run($"--threads 1 --data-dir \"{Data}\" run \"{file}\" --runs-dir \"{one}\"")
            );
            Assert.True(pcode == 0, perr + pout);
            Assert.Equal(Stage(one, "requeue", "wide").WeightsSha256, Stage(two, "requeue", "wide").WeightsSha256);

            // Failure: the jobs read an experiment file wtn refuses; the wide stage fails, its dependents are cancelled.
            var f = Tiny("fails") with { Standard = null };
            var runs = Path.Combine(dir, "fails-runs");
            var runner = new ExperimentRunner(f, runs, Data, CPU);
            var settings = new SlurmSettings
            {
                Wtn = [WtnProcess.ExePath],
                Threads = 1,
                DataDir = Data,
            };
            var (_, submitted) = runner.Submit(1, settings, new HeldSlurm(), dryRun: false);
            File.AppendAllText(Path.Combine(runs, "fails", "slurm", "experiment.yaml"), "no_such_key: 1\n");
            Assert.Equal(0, Sh($"scontrol release {string.Join(",", submitted.Select(r => r.JobId))}").Code);
            latest = WaitForJobs(Path.Combine(runs, "fails"), TimeSpan.FromSeconds(60));
            var wide = submitted.Single(r => r.Stage == "wide").JobId;
            Assert.Equal("FAILED", latest[("seed-0/wide", "stage")].State?.State);
            Assert.All(latest.Where(kv => kv.Key.Id != "seed-0/wide"), kv =>
                Assert.Equal("CANCELLED", kv.Value.State?.State)
            );
            (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{Data}\" report \"{WriteExperiment(dir, f)}\" --runs-dir \"{runs}\""
            );
            Assert.True(code == 0, stderr + stdout);
            var report = File.ReadAllText(Path.Combine(runs, "fails", "report.md"));
            output.WriteLine(report);
            Assert.Matches(
                $@"\| 0 \| wide \| \w+ \| [^|\n]*Slurm job {wide} FAILED: exit 2:0; wtn: error: [^|\n]*no_such_key",
                report
            );
            Assert.Matches(
                $@"\| 0 \| finetune \| pending \| Slurm job \d+ CANCELLED: not run, seed-0/wide \(job {wide}\) failed \|",
                report
            );
            Assert.Matches(
                $@"\| 0 \| imitation \| pending \| Slurm job array \d+ \(units\) CANCELLED: not run, seed-0/wide \(job {wide}\) failed; Slurm job \d+ CANCELLED: not run",
                report
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    /// <summary>
    /// The status table with each wrapped detail cell on its row's line: a continuation row (blank seed, stage and state
    /// cells) is appended to the row above, so a pattern over one row's cells sees all of them.
    /// </summary>
    static string JoinWrappedCells(string table)
    {
        var rows = new List<string>();
        foreach (var line in table.Split('\n'))
        {
            var more = Regex.Match(line, @"^│ +│ +│ +│ (.*?) *│ *$");
            if (more.Success && rows.Count > 0 && rows[^1].TrimEnd().EndsWith('│'))
                rows[^1] = $"{rows[^1].TrimEnd()[..^1].TrimEnd()} {more.Groups[1].Value} │";
            else
                rows.Add(line);
        }
        return string.Join('\n', rows);
    }
}
