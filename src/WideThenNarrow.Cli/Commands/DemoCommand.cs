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
            Description =
                "Seeds to run (about 9 minutes each on 2 cores); more than one reports mean and spread, which on this small subset matter: one seed's gap between methods can be noise",
            DefaultValueFactory = _ => 1,
        };
        var cmd = new Command(
            "demo",
            "Short built-in experiment on Fashion-MNIST: thin ResNet-20 trained the standard way vs. go wide, then narrow (a few minutes on 2 cores)"
        );
        cmd.Add(runsDir);
        cmd.Add(seeds);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, ct) =>
                {
                    var clock = Stopwatch.StartNew();
                    var config = ExperimentConfig.Demo();
                    DataCommand.EnsurePresent(ExperimentDatasets.Sources(config.Data), ctx, ct);
                    Console.WriteLine(Describe(config));
                    RunCommand.Execute(config, parse.GetValue(seeds), parse.GetValue(runsDir)!, ctx, ct);
                    Console.WriteLine(
                        $"demo finished in {clock.Elapsed.TotalMinutes:F1} min. A short run on a subset: for the full experiment, `wtn run experiments/fashion-mnist-resnet.yaml`."
                    );
                    Console.WriteLine(
                        $"the thin network as PyTorch weights: `wtn export {Path.Combine(parse.GetValue(runsDir)!, config.Name)} -o thin.safetensors`"
                    );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    static string Describe(ExperimentConfig c) =>
        $"demo: {c.Data.Dataset}, stratified subset of {c.Data.TrainPerClass} training, {c.Data.ValPerClass} validation and {c.Data.TestPerClass} test images per class; "
        + $"thin {c.Models.Thin.Name} vs. wide {c.Models.Wide.Name} ({c.Models.Wide.Widen}); "
        + $"wide {c.Wide!.Train.Epochs} epochs, imitation {c.Imitation!.Train.Steps} steps per block ({c.Imitation.Input.ToString().ToLowerInvariant()} input), fine-tuning {c.Finetune!.Train.Epochs} epochs "
        + $"(a = {c.Finetune.Alpha}, T = {c.Finetune.Temperature}); thin standard {c.Standard!.Train.Epochs} epochs (the same passes over the data as stages 2 + 3).";
}
