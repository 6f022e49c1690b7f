using System.CommandLine;
using TorchSharp;
using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Cli.Commands;

/// <summary><c>wtn train CONFIG [--set key=value]... [--resume] [--run-dir DIR]</c>: trains any zoo model on any image dataset.</summary>
public static class TrainCommand
{
    public static Command Build(GlobalOptions g)
    {
        var config = new Argument<string>("config") { Description = "YAML config (see experiments/)" };
        var set = new Option<string[]>("--set") { Description = "Override a config key, e.g. --set optimizer.lr=0.05 (repeatable)", AllowMultipleArgumentsPerToken = false };
        var resume = new Option<bool>("--resume") { Description = "Continue the run from its newest checkpoint" };
        var runDir = new Option<string?>("--run-dir") { Description = "Run folder (default runs/<config name>/train)" };
        var cmd = new Command("train", "Train a model on a dataset from a YAML config: checkpoints, exact --resume, metrics.jsonl, TensorBoard");
        cmd.Add(config);
        cmd.Add(set);
        cmd.Add(resume);
        cmd.Add(runDir);
        cmd.SetAction(g.Handler((parse, ctx, ct) =>
        {
            var path = parse.GetValue(config)!;
            var cfg = ConfigLoader.Load<TrainConfig>(path, parse.GetValue(set) ?? []);
            var dir = parse.GetValue(runDir) ?? Path.Combine("runs", Path.GetFileNameWithoutExtension(path), "train");
            TrainingResult result;
            try { result = Run(cfg, ctx, dir, parse.GetValue(resume), ct); }
            catch (TrainingInterruptedException e)
            {
                // Names the checkpoint written on the way out; exit code 130 as for any interruption.
                throw new TrainingInterruptedException(e.Stage, e.Step, e.Checkpoint, e.CancellationToken) { Advice = "continue with the same command plus --resume" };
            }
            Console.WriteLine($"done: {result.Steps} steps in {ProgressRenderer.Format(result.WallTime)}" +
                              (result.Last?.EvalTop1 is { } last ? $"; validation top-1 last {last:P2}" : "") +
                              (result.Best?.EvalTop1 is { } best ? $", best {best:P2} (epoch {result.Best.Epoch + 1})" : "") +
                              (result.TestTop1 is { } test ? $"; test top-1 of the final network {test:P2}" : ""));
            Console.WriteLine($"run folder: {Path.GetFullPath(result.RunDir)}");
            Console.WriteLine($"final weights: {Path.GetFullPath(Path.Combine(result.RunDir, FinalWeights))} (PyTorch state_dict; manifest final.json)");
            return Task.FromResult(0);
        }));
        return cmd;
    }

    /// <summary>The finished run's network, written beside its checkpoints with the manifest that rebuilds it.</summary>
    public const string FinalWeights = "final.safetensors";

    public static TrainingResult Run(TrainConfig cfg, RunContext ctx, string runDir, bool resume, CancellationToken ct)
    {
        if (DatasetCatalog.Find(cfg.Data.Dataset) is { } source) DataCommand.EnsurePresent([source], ctx, ct);
        using var data = new Method.ImageExperimentDataset(ImageDataset.Load(cfg.Data.Dataset, ctx.DataDir, cfg.Data.Resize), cfg.Data);
        var modelConfig = data.Resolve(cfg.Model, "model");
        // Same seed, machine and threads give the same run: the initial weights come from this seed too.
        manual_seed(cfg.Seed);
        var model = ModelFactory.Create(modelConfig, ctx.Device);
        Trainer.ApplyPrecision(cfg.Precision, model);
        using var train = data.Train(cfg.Seed);
        using var val = data.Validation();
        using var test = data.Test();
        var renderer = new ProgressRenderer(RunContext.Interactive);
        var result = renderer.Run(progress => Trainer.Run(new TrainingJob
        {
            Stage = "train",
            Modules = new Dictionary<string, nn.Module> { ["model"] = model },
            ParameterGroups = [ParameterGroup.Of("model", model)],
            Objective = new ClassificationObjective(model, cfg.LabelSmoothing),
            Train = train,
            Eval = val,
            Settings = cfg,
            RunDir = runDir,
            Device = ctx.Device,
            Progress = progress,
            ConfigYaml = ConfigLoader.ToYaml(cfg),
            Resume = resume,
        }, ct));
        // The last checkpoint holds the final state (also when --resume found the run already finished); exported in
        // float32 whatever the training precision, so the manifest rebuilds it as it is built by default.
        Method.StageContext.LoadFinal(result, new Dictionary<string, nn.Module> { ["model"] = model });
        model.to(ScalarType.Float32);
        // The final network's one look at the test split.
        model.eval();
        var (_, testTop1) = Trainer.Evaluate(new ClassificationObjective(model), test, ctx.Device);
        ModelExport.Write(model, modelConfig, Path.Combine(result.RunDir, FinalWeights), data.ExportInput(),
            $"wtn train, run folder {Path.GetFullPath(result.RunDir)}", testTop1, result.Last?.EvalTop1);
        return result with { TestTop1 = testTop1 };
    }
}
