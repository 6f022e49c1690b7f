using System.CommandLine;
using Spectre.Console;
using WideThenNarrow.Orchestration;

namespace WideThenNarrow.Cli.Commands;

/// <summary>
/// <c>wtn submit EXPERIMENT.yaml [--seeds N] [--set ...] [--runs-dir D] [--partition P] [--account A] [--dry-run] [--reuse-from RUN_FOLDER ...]</c>:
/// the experiment's stages as Slurm jobs (<see cref="SlurmSubmission"/>).
/// </summary>
public static class SubmitCommand
{
    public static Command Build(GlobalOptions g)
    {
        var o = new ExperimentOptions(
            "Experiment file (YAML), as for wtn run",
            "Override a key, as for wtn run (repeatable)"
        );
        var cmd = o.AddTo(
            new Command(
                "submit",
                "Submit the experiment to Slurm: one job per stage and seed (wtn run --only) after the stages it starts from, stage 2 with teacher input as a job array of its units, then a report job; skips finished stages and stages whose job is still queued or running"
            )
        );
        var partition = new Option<string?>("--partition")
        {
            Description = "Slurm partition (sbatch --partition); default: the cluster's",
        };
        var account = new Option<string?>("--account") { Description = "Slurm account (sbatch --account)" };
        var dryRun = new Option<bool>("--dry-run")
        {
            Description = "Print the sbatch scripts (dependencies by job name) and submit nothing",
        };
        cmd.Add(partition);
        cmd.Add(account);
        var reuseFrom = RunCommand.ReuseFromOption(
            "before anything is submitted, and gets no job (not with --dry-run, which brings nothing)"
        );
        cmd.Add(dryRun);
        cmd.Add(reuseFrom);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, ct) =>
                {
                    var config = o.Load(parse);
                    int threads = TorchSharp.torch.get_num_threads();
                    var exe = Environment.ProcessPath
                        ?? throw new WtnException("wtn submit: cannot tell which executable this process runs");
                    // Under `dotnet wtn.dll` the process is the host: the jobs need the assembly as its first argument.
                    IReadOnlyList<string> wtn =
                        Path.GetFileNameWithoutExtension(exe) == "dotnet"
                            ? [exe, typeof(SubmitCommand).Assembly.Location]
                            : [exe];
                    var settings = new SlurmSettings
                    {
                        Wtn = wtn,
                        Threads = threads,
                        DataDir = Path.GetFullPath(ctx.DataDir),
                        Device = parse.GetValue(g.Device) ?? "cpu",
                        Partition = parse.GetValue(partition),
                        Account = parse.GetValue(account),
                    };
                    var reuse = parse.GetValue(reuseFrom) ?? [];
                    var runner = new ExperimentRunner(
                        config,
                        Path.GetFullPath(parse.GetValue(o.RunsDir)!),
                        ctx.DataDir,
                        ctx.Device,
                        // Lines only for what --reuse-from does (a dry run's output is the scripts).
                        log: reuse.Length > 0 ? new RunCommand.LineLog() : null
                    )
                    {
                        ReuseFrom = reuse,
                    };
                    bool dry = parse.GetValue(dryRun);
                    var (jobs, submitted) = runner.Submit(parse.GetValue(o.Seeds), settings, new SlurmCli(), dry);
                    if (jobs.Count == 0)
                    {
                        Console.WriteLine(
                            $"{runner.ExperimentDir}: every stage is done or has a job queued or running; nothing to submit (wtn report shows where they stand)"
                        );
                        return Task.FromResult(0);
                    }
                    if (dry)
                    {
                        foreach (var j in jobs)
                        {
                            Console.WriteLine($"# ---- {j.Name}");
                            Console.Write(
                                j.Script(j.After.Select(a => jobs.Any(x => x.Name == a) ? $"<{a}>" : a).ToList())
                            );
                        }
                        Console.WriteLine($"# {jobs.Count} job(s); nothing submitted (--dry-run)");
                        return Task.FromResult(0);
                    }
                    var t = new Table().Border(TableBorder.Rounded).AddColumns("job", "seed", "stage", "after");
                    foreach (var r in submitted)
                        t.AddRow(
                            r.JobId,
                            r.Seed < 0 ? "" : $"{r.Seed}",
                            Markup.Escape(r.Part == "units" ? $"{r.Stage} (units, job array)" : r.Stage),
                            string.Join(", ", r.After)
                        );
                    AnsiConsole.Write(t);
                    Console.WriteLine(
                        $"submitted {submitted.Count} job(s); logs in {Path.Combine(runner.ExperimentDir, "slurm")}; wtn report {parse.GetValue(o.File)} shows each stage's job and progress"
                    );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }
}
