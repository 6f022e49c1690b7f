using System.CommandLine;
using System.Diagnostics;
using WideThenNarrow.Data;
using WideThenNarrow.Method;

namespace WideThenNarrow.Cli.Commands;

/// <summary><c>wtn demo</c>: fetches Fashion-MNIST if missing and runs the built-in short experiment.</summary>
public static class DemoCommand
{
    public static Command Build(GlobalOptions g)
    {
        var runsDir = RunCommand.RunsDirOption();
        var seeds = new Option<int>("--seeds")
        {
            Description = "Seeds to run (about 9 minutes each on 2 cores); more than one reports mean and spread, which on this small subset matter: one seed's gap between methods can be noise",
            DefaultValueFactory = _ => 1,
        };
        var cmd = new Command("demo", "Short built-in experiment on Fashion-MNIST: thin ResNet-20 trained the standard way vs. go wide, then narrow (a few minutes on 2 cores)");
        cmd.Add(runsDir);
        cmd.Add(seeds);
        cmd.SetAction(g.Handler((parse, ctx, ct) =>
        {
            var clock = Stopwatch.StartNew();
            var config = DemoExperiment.Build();
            DataCommand.EnsurePresent(ExperimentDatasets.Sources(config.Data), ctx, ct);
            Console.WriteLine(DemoExperiment.Describe(config));
            RunCommand.Execute(config, parse.GetValue(seeds), parse.GetValue(runsDir)!, ctx, ct);
            Console.WriteLine($"demo finished in {clock.Elapsed.TotalMinutes:F1} min. A short run on a subset: for the full experiment, `wtn run experiments/fashion-mnist-resnet.yaml`.");
            Console.WriteLine($"the thin network as PyTorch weights: `wtn export {Path.Combine(parse.GetValue(runsDir)!, config.Name)} -o thin.safetensors`");
            return Task.FromResult(0);
        }));
        return cmd;
    }
}
