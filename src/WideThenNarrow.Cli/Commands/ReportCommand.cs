using System.CommandLine;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;

namespace WideThenNarrow.Cli.Commands;

/// <summary>
/// <c>wtn report EXPERIMENT.yaml [--seeds N] [--set key=value ...] [--runs-dir DIR]</c>: the report of the stages
/// finished so far and where the others stand, without training (safe while <c>wtn run</c> works on the same folder).
/// </summary>
public static class ReportCommand
{
    public static Command Build(GlobalOptions g)
    {
        var o = new ExperimentOptions(
            "Experiment file (YAML), as given to wtn run",
            "The same overrides as given to wtn run (repeatable)"
        );
        var cmd = o.AddTo(
            new Command(
                "report",
                "Write report.md, results.json and plots from the stages finished so far, and show where every stage stands (trains nothing; safe while wtn run is working)"
            )
        );
        cmd.SetAction(
            g.Handler(
                (parse, ctx, ct) =>
                {
                    var runner = new ExperimentRunner(
                        o.Load(parse),
                        parse.GetValue(o.RunsDir)!,
                        ctx.DataDir,
                        ctx.Device
                    );
                    if (!Directory.Exists(runner.ExperimentDir))
                        throw new WtnException(
                            $"{runner.ExperimentDir} does not exist: nothing has run yet; start it with wtn run {parse.GetValue(o.File)}"
                        );
                    var result = runner.Report(parse.GetValue(o.Seeds));
                    RunCommand.PrintStatus(result);
                    RunCommand.PrintTable(result);
                    var report = Path.GetFullPath(Path.Combine(runner.ExperimentDir, "report.md"));
                    Console.WriteLine(
                        result.Written
                            ? $"report: {report}"
                            : $"report: {report} (the finished run's final report, left as the run wrote it)"
                    );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }
}
