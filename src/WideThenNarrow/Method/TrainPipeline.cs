using TorchSharp;
using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// <c>wtn train</c>: one zoo model trained with the standard recipe on an image dataset, from a <see cref="TrainConfig"/>.
/// The run folder holds the trainer's checkpoints and logs; at the end the final network is scored once on the test
/// split and written as PyTorch weights plus the manifest that rebuilds it (<see cref="FinalWeights"/>).
/// </summary>
public static class TrainPipeline
{
    /// <summary>The finished run's network, written beside its checkpoints with the manifest that rebuilds it.</summary>
    public const string FinalWeights = "final.safetensors";

    /// <summary>
    /// Trains (or, with <paramref name="resume"/>, continues) the run in <paramref name="runDir"/>. The dataset must be in
    /// <paramref name="dataDir"/> (the caller fetches catalog datasets); progress goes to <paramref name="progress"/>.
    /// </summary>
    public static TrainingResult Run(
        TrainConfig cfg,
        string dataDir,
        Device device,
        string runDir,
        bool resume,
        IProgress<TrainingProgress>? progress,
        CancellationToken ct
    )
    {
        using var data = new ImageExperimentDataset(
            ImageDataset.Load(cfg.Data.Dataset, dataDir, cfg.Data.Resize),
            cfg.Data
        );
        var modelConfig = data.Resolve(cfg.Model, "model");
        // Same seed, machine and threads give the same run: the initial weights come from this seed too.
        manual_seed(cfg.Seed);
        var model = ModelFactory.Create(modelConfig, device);
        Trainer.ApplyPrecision(cfg.Precision, model);
        using var train = data.Train(cfg.Seed);
        using var val = data.Validation();
        using var test = data.Test();
        var modules = new Dictionary<string, nn.Module> { ["model"] = model };
        var result = Trainer.Run(
            new TrainingJob
            {
                Stage = "train",
                Modules = modules,
                ParameterGroups = [ParameterGroup.Of("model", model)],
                Objective = new ClassificationObjective(model, cfg.LabelSmoothing),
                Train = train,
                Eval = val,
                Settings = cfg,
                RunDir = runDir,
                Device = device,
                Progress = progress,
                ConfigYaml = ConfigLoader.ToYaml(cfg),
                SettingDefault = ConfigLoader.DefaultOf<TrainConfig>,
                Resume = resume,
            },
            ct
        );
        // The last checkpoint holds the final state (also when --resume found the run already finished); exported in
        // float32 whatever the training precision, so the manifest rebuilds it as it is built by default.
        StageContext.LoadFinal(result, modules);
        model.to(ScalarType.Float32);
        // The final network's one look at the test split.
        model.eval();
        var (_, testTop1) = Trainer.Evaluate(new ClassificationObjective(model), test, device);
        ModelExport.Write(
            model,
            modelConfig,
            Path.Combine(result.RunDir, FinalWeights),
            data.ExportInput(),
            $"wtn train, run folder {Path.GetFullPath(result.RunDir)}",
            testTop1,
            result.Last?.EvalTop1
        );
        return result with { TestTop1 = testTop1 };
    }
}
