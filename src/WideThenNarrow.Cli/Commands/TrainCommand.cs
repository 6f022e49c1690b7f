using System.CommandLine;
using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Training;

namespace WideThenNarrow.Cli.Commands;

/// <summary><c>wtn train CONFIG [--set key=value]... [--resume] [--run-dir DIR]</c>: trains any zoo model on any image dataset.</summary>
public static class TrainCommand
{
    public static Command Build(GlobalOptions g)
    {
        var config = new Argument<string>("config") { Description = "YAML config (see experiments/)" };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a config key, e.g. --set optimizer.lr=0.05 (repeatable)",
            AllowMultipleArgumentsPerToken = false,
        };
        var resume = new Option<bool>("--resume") { Description = "Continue the run from its newest checkpoint" };
        var runDir = new Option<string?>("--run-dir") { Description = "Run folder (default runs/<config name>/train)" };
        var cmd = new Command(
            "train",
            "Train a model on a dataset from a YAML config: checkpoints, exact --resume, metrics.jsonl, TensorBoard"
        );
        cmd.Add(config);
        cmd.Add(set);
        cmd.Add(resume);
        cmd.Add(runDir);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, ct) =>
                {
                    var path = parse.GetValue(config)!;
                    var cfg = ConfigLoader.Load<TrainConfig>(path, parse.GetValue(set) ?? []);
                    var dir = parse.GetValue(runDir)
                        ?? Path.Combine("runs", Path.GetFileNameWithoutExtension(path), "train");
                    TrainingResult result;
                    try
                    {
                        if (DatasetCatalog.Find(cfg.Data.Dataset) is { } source)
                            DataCommand.EnsurePresent([source], ctx, ct);
                        result = new ProgressRenderer(RunContext.Interactive).Run(progress =>
                            TrainPipeline.Run(cfg, ctx.DataDir, ctx.Device, dir, parse.GetValue(resume), progress, ct)
                        );
                    }
                    catch (TrainingInterruptedException e)
                    {
                        // Names the checkpoint written on the way out; exit code 130 as for any interruption.
                        throw new TrainingInterruptedException(e.Stage, e.Step, e.Checkpoint, e.CancellationToken)
                        {
                            Advice = "continue with the same command plus --resume",
                        };
                    }
                    Console.WriteLine(
                        $"done: {result.Steps} steps in {ProgressRenderer.Format(result.WallTime)}"
                            + (result.Last?.EvalTop1 is { } last ? $"; validation top-1 last {last:P2}" : "")
                            + (
                                result.Best?.EvalTop1 is { } best
                                    ? $", best {best:P2} (epoch {result.Best.Epoch + 1})"
                                    : ""
                            )
                            + (result.TestTop1 is { } test ? $"; test top-1 of the final network {test:P2}" : "")
                    );
                    Console.WriteLine($"run folder: {Path.GetFullPath(result.RunDir)}");
                    Console.WriteLine(
                        $"final weights: {Path.GetFullPath(Path.Combine(result.RunDir, TrainPipeline.FinalWeights))} (PyTorch state_dict; manifest final.json)"
                    );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }
}
