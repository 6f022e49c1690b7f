using System.CommandLine;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Reporting;

namespace WideThenNarrow.Cli.Commands;

/// <summary>
/// <c>wtn report EXPERIMENT.yaml [--seeds N] [--set key=value ...] [--runs-dir DIR]</c>: the report of the stages
/// finished so far and where the others stand, without training (safe while <c>wtn run</c> works on the same folder).
/// </summary>
public static class ReportCommand
{
    public static Command Build(GlobalOptions g)
    {
        var file = new Argument<string>("experiment") { Description = "Experiment file (YAML), as given to wtn run" };
        var seeds = new Option<int?>("--seeds") { Description = "Number of seeds (default: the file's 'seeds')" };
        var set = new Option<string[]>("--set") { Description = "The same overrides as given to wtn run (repeatable)", AllowMultipleArgumentsPerToken = false };
        var runsDir = RunCommand.RunsDirOption();
        var cmd = new Command("report", "Write report.md, results.json and plots from the stages finished so far, and show where every stage stands (trains nothing; safe while wtn run is working)");
        cmd.Add(file);
        cmd.Add(seeds);
        cmd.Add(set);
        cmd.Add(runsDir);
        cmd.SetAction(g.Handler((parse, ctx, ct) =>
        {
            var config = ConfigLoader.Load<ExperimentConfig>(parse.GetValue(file)!, parse.GetValue(set) ?? []);
            var runner = new ExperimentRunner(config, parse.GetValue(runsDir)!, ctx.DataDir, ctx.Device);
            if (!Directory.Exists(runner.ExperimentDir))
                throw new WtnException($"{runner.ExperimentDir} does not exist: nothing has run yet; start it with wtn run {parse.GetValue(file)}");
            var result = runner.Report(parse.GetValue(seeds));
            RunCommand.PrintStatus(result);
            RunCommand.PrintTable(result);
            Console.WriteLine($"report: {Path.GetFullPath(Path.Combine(runner.ExperimentDir, "report.md"))}");
            return Task.FromResult(0);
        }));
        return cmd;
    }
}
