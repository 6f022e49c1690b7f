using System.CommandLine;
using Spectre.Console;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Reporting;

namespace WideThenNarrow.Cli.Commands;

/// <summary><c>wtn run EXPERIMENT.yaml [--seeds N] [--set key=value ...] [--runs-dir DIR] [--jobs N | --only seed-S/STAGE [--unit K]] [--reuse-from RUN_FOLDER ...]</c>.</summary>
public static class RunCommand
{
    public static Command Build(GlobalOptions g)
    {
        var o = new ExperimentOptions(
            "Experiment file (YAML): data, models, stages and baselines",
            "Override a key, e.g. --set finetune.train.epochs=5 (repeatable)"
        );
        var cmd = o.AddTo(
            new Command(
                "run",
                "Run every stage and baseline an experiment declares (skips finished stages, resumes interrupted ones), then write report.md, results.json and plots"
            )
        );
        var jobs = new Option<int>("--jobs")
        {
            Description =
                "Stages trained at the same time, each a process of its own (wtn run --only) on --threads / N threads, the longest chain of work first: the wide network beside the baselines that do not need it, then kd, fitnets and stage 2 (its units in parallel with teacher input). Output prefixed with the stage, logs in runs/NAME/logs",
            DefaultValueFactory = _ => 1,
        };
        var only = new Option<string?>("--only")
        {
            Description =
                "Run one stage of one seed and nothing else, e.g. --only seed-0/kd (what a --jobs process or a wtn submit job runs): skipped when done, refused while a stage it starts from is not; no report",
        };
        var unit = new Option<int?>("--unit")
        {
            Description =
                "With --only seed-S/imitation (input: teacher): train only unit K of stage 2 (a --jobs process, a job array's task); the stage run without --unit then assembles the units",
        };
        var reuseFrom = ReuseFromOption(
            "instead of trained, e.g. to change only finetune.train.optimizer.lr under --set name=NEW and keep the wide network and stage 2. Stages under other settings are trained, with a line naming the keys that differ"
        );
        cmd.Add(jobs);
        cmd.Add(only);
        cmd.Add(unit);
        cmd.Add(reuseFrom);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, ct) =>
                {
                    var config = o.Load(parse);
                    var seeds = parse.GetValue(o.Seeds);
                    var runsDir = parse.GetValue(o.RunsDir)!;
                    int n = parse.GetValue(jobs);
                    var reuse = parse.GetValue(reuseFrom) ?? [];
                    if (n < 1)
                        throw new WtnException($"--jobs must be at least 1, got {n}");
                    DataCommand.EnsurePresent(ExperimentDatasets.Sources(config.Data), ctx, ct);
                    if (parse.GetValue(only) is { } one)
                    {
                        if (n > 1)
                            throw new WtnException("--only runs one stage in this process: leave out --jobs");
                        RunOnly(config, one, parse.GetValue(unit), runsDir, ctx, ct, reuse);
                        return Task.FromResult(0);
                    }
                    if (parse.GetValue(unit) is not null)
                        throw new WtnException("--unit needs --only seed-S/imitation");
                    var children =
                        n == 1
                            ? null
                            : new Jobs(
                                n,
                                [
                                    "--device",
                                    parse.GetValue(g.Device) ?? "cpu",
                                    "--data-dir",
                                    Path.GetFullPath(ctx.DataDir),
                                    .. parse.GetValue(g.Verbose) ? ["--verbose"] : Array.Empty<string>(),
                                ]
                            );
                    Execute(config, seeds, runsDir, ctx, ct, children, reuse);
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    /// <summary>--jobs N: N stage processes at once, started with <paramref name="GlobalArgs"/> and their share of the threads.</summary>
    internal sealed record Jobs(int Count, IReadOnlyList<string> GlobalArgs);

    /// <summary>wtn run --only: one stage (or one unit of stage 2) of one seed, with live progress; as a --jobs process, until its parent goes.</summary>
    static void RunOnly(
        ExperimentConfig config,
        string only,
        int? unit,
        string runsDir,
        RunContext ctx,
        CancellationToken ct,
        IReadOnlyList<string> reuseFrom
    )
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        StageProcesses.StopWhenParentGoes(cts);
        var log = new LineLog();
        var done = new ProgressRenderer(RunContext.Interactive).Run(sink =>
            new ExperimentRunner(config, runsDir, ctx.DataDir, ctx.Device, sink, log) { ReuseFrom = reuseFrom }.RunOnly(
                only,
                unit,
                cts.Token
            )
        );
        Console.WriteLine(done);
    }

    /// <summary>--reuse-from, as wtn run and wtn submit take it; <paramref name="then"/> ends its description.</summary>
    internal static Option<string[]> ReuseFromOption(string then) =>
        new("--reuse-from")
        {
            Description =
                "Folder of an earlier run (RUNS_DIR/NAME; repeatable): each stage it finished under the same settings as this run's (its fingerprint) is hard-linked or copied into this run "
                + then,
            AllowMultipleArgumentsPerToken = false,
        };

    internal static Option<string> RunsDirOption() =>
        new("--runs-dir") { Description = "Folder of experiment runs", DefaultValueFactory = _ => "runs" };

    /// <summary>Runs the experiment with live progress (with <paramref name="jobs"/>, as stage processes), then prints the table and where the report is.</summary>
    internal static ExperimentResult Execute(
        ExperimentConfig config,
        int? seeds,
        string runsDir,
        RunContext ctx,
        CancellationToken ct,
        Jobs? jobs = null,
        IReadOnlyList<string>? reuseFrom = null
    )
    {
        var log = new LineLog();
        var renderer = new ProgressRenderer(RunContext.Interactive);
        string dir = "";
        var result = renderer.Run(sink =>
        {
            var runner = new ExperimentRunner(config, runsDir, ctx.DataDir, ctx.Device, sink, log)
            {
                ReuseFrom = reuseFrom ?? [],
            };
            dir = runner.ExperimentDir;
            ExperimentRunner.LocalJobs? local = null;
            if (jobs is not null)
            {
                int threads = TorchSharp.torch.get_num_threads(),
                    share = Math.Max(1, threads / jobs.Count);
                log.Report(
                    $"--jobs {jobs.Count}: up to {jobs.Count} stage processes at once, {share} thread(s) each{(threads < jobs.Count ? $" ({jobs.Count} in all: more than the {threads} given)" : "")}"
                );
                local = new(
                    jobs.Count,
                    share,
                    new StageProcesses(["--threads", $"{share}", .. jobs.GlobalArgs], Path.GetFullPath(dir), log)
                );
            }
            return runner.Run(seeds, ct, local);
        });
        PrintTable(result);
        Console.WriteLine($"report: {Path.GetFullPath(Path.Combine(dir, "report.md"))}");
        return result;
    }

    internal static void PrintTable(ExperimentResult r)
    {
        Console.WriteLine();
        Console.WriteLine(
            $"{r.Experiment}: {r.Dataset}, {r.TrainExamples} train / {r.ValidationExamples} validation / {r.TestExamples} test examples, {r.Seeds} seed(s)"
        );
        if (r.DepthStudy is { } study)
        {
            PrintDepthStudy(study);
            return;
        }
        if (r.Methods.Count == 0)
        {
            Console.WriteLine("no method has finished yet");
            return;
        }
        var t = new Table()
            .Border(TableBorder.Rounded)
            .AddColumns("method", "params", "MACs", "val top-1", "test top-1", "wall time", "latency b=1 / 64");
        foreach (var m in r.Methods)
        {
            var stages = string.Join(
                "\n",
                m.Stages.Select(s =>
                    $"{s} {(m.StageSeconds[s] is { } x ? ProgressRenderer.Format(TimeSpan.FromSeconds(x.Mean)) : "?")}"
                )
            );
            t.AddRow(
                Markup.Escape(m.Method + ExperimentReport.SeedsNote(m, r.Seeds)),
                ExperimentReport.Count(m.Cost.Parameters),
                m.Cost.Macs is { } macs ? ExperimentReport.Count(macs) : "n/a",
                ExperimentReport.Pct(m.ValTop1),
                ExperimentReport.Pct(m.TestTop1),
                Markup.Escape(stages),
                $"{m.Cost.LatencyMs1:F1} / {m.Cost.LatencyMs64:F0} ms"
            );
        }
        AnsiConsole.Write(t);
        foreach (var g in r.Comparisons.GroupBy(c => c.Method))
            Console.WriteLine(
                $"{g.Key}, test top-1 minus: {string.Join("; ", g.Select(c => $"{c.Against} {ExperimentReport.Points(c.Difference)} ({c.Verdict})"))} (points)"
            );
    }

    /// <summary>The depth study: top-point discrepancy per depth and arm (mean over seeds) and its growth with depth.</summary>
    static void PrintDepthStudy(DepthStudyResult d)
    {
        var t = new Table().Border(TableBorder.Rounded).AddColumn("depth");
        foreach (var g in d.Growth)
            t.AddColumn(new TableColumn(Markup.Escape(g.Arm)).RightAligned());
        foreach (var depth in d.Depths)
            t.AddRow([
                depth.ToString(System.Globalization.CultureInfo.InvariantCulture),
                .. d.Growth.Select(g =>
                    g.Points.First(p => p.Depth == depth)
                        .Mean.ToString("G3", System.Globalization.CultureInfo.InvariantCulture)
                ),
            ]);
        t.AddRow([
            "slope",
            .. d.Growth.Select(g =>
                g.Slope is { } s ? s.ToString("F2", System.Globalization.CultureInfo.InvariantCulture) : "n/a"
            ),
        ]);
        AnsiConsole.Write(t);
        Console.WriteLine(
            "top-point discrepancy ||h_thin - h_wide||^2 / ||h_wide||^2 on the validation split; slope of ln discrepancy on ln depth"
        );
    }

    /// <summary>Every declared stage of every seed and where it stands (printed while some are not done).</summary>
    internal static void PrintStatus(ExperimentResult r)
    {
        var t = new Table().Border(TableBorder.Rounded).AddColumns("seed", "stage", "state", "detail");
        foreach (var x in r.Status)
        {
            var state = x.State switch
            {
                StageState.Done => "[green]done[/]",
                StageState.Started => "[yellow]started[/]",
                _ => "[grey]pending[/]",
            };
            t.AddRow(
                x.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Markup.Escape(x.Stage),
                state,
                Markup.Escape(x.Describe())
            );
        }
        AnsiConsole.Write(t);
        if (r.Left is { } left)
            Console.WriteLine($"left: {left.Describe()}");
    }

    /// <summary>
    /// Stage events as lines, in order: through Spectre on a terminal, so a live display stays intact; plain and
    /// unwrapped when redirected (Spectre would wrap a log file at 80 columns).
    /// </summary>
    internal sealed class LineLog : IProgress<string>
    {
        readonly bool interactive = RunContext.Interactive;

        public void Report(string value)
        {
            if (interactive)
                AnsiConsole.WriteLine(value);
            else
                Console.WriteLine(value);
        }
    }
}

/// <summary>What <c>wtn run</c> and <c>wtn report</c> both take: the experiment file, --seeds, --set and --runs-dir.</summary>
sealed class ExperimentOptions(string fileDescription, string setDescription)
{
    public Argument<string> File { get; } = new("experiment") { Description = fileDescription };
    public Option<int?> Seeds { get; } =
        new("--seeds") { Description = "Number of seeds (default: the file's 'seeds')" };
    public Option<string[]> Set { get; } =
        new("--set") { Description = setDescription, AllowMultipleArgumentsPerToken = false };
    public Option<string> RunsDir { get; } = RunCommand.RunsDirOption();

    public Command AddTo(Command cmd, bool seeds = true)
    {
        cmd.Add(File);
        if (seeds)
            cmd.Add(Seeds);
        cmd.Add(Set);
        cmd.Add(RunsDir);
        return cmd;
    }

    /// <summary>The experiment file with the --set overrides applied (strict keys).</summary>
    public ExperimentConfig Load(ParseResult parse) =>
        ConfigLoader.Load<ExperimentConfig>(parse.GetValue(File)!, parse.GetValue(Set) ?? []);
}
