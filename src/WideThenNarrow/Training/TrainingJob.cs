using WideThenNarrow.Config;
using WideThenNarrow.Data;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>
/// One training run (one stage): what is checkpointed, what trains at which rate, how a batch becomes a loss,
/// the data, the settings and where the run folder is. <see cref="Trainer.Run"/> executes it.
/// </summary>
public sealed class TrainingJob
{
    /// <summary>Stage name for progress and metrics ("train", "wide", "imitate-3", "finetune", ...).</summary>
    public required string Stage { get; init; }

    /// <summary>
    /// The modules whose state is checkpointed and restored, by a stable name ("model", "adapters", ...);
    /// switched to train mode for training and eval mode for evaluation.
    /// </summary>
    public required IReadOnlyDictionary<string, nn.Module> Modules { get; init; }

    /// <summary>What the optimiser updates. Parameters in no group stay fixed (set requires_grad false on them to save compute).</summary>
    public required IReadOnlyList<ParameterGroup> ParameterGroups { get; init; }

    public required ITrainingObjective Objective { get; init; }
    public required IBatchSource Train { get; init; }
    public IBatchSource? Eval { get; init; }
    public required TrainerSettings Settings { get; init; }

    /// <summary>The run folder (runs/NAME/STAGE): metrics.jsonl, tensorboard/, config.yaml, checkpoints/.</summary>
    public required string RunDir { get; init; }

    public Device Device { get; init; } = CPU;

    /// <summary>Modules kept in eval mode throughout, e.g. a teacher (not checkpointed, not trained).</summary>
    public IReadOnlyList<nn.Module> EvalOnlyModules { get; init; } = [];

    /// <summary>Receives events synchronously on the training thread; keep handlers cheap.</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }

    /// <summary>The resolved config as YAML: written to RunDir/config.yaml and into every checkpoint.</summary>
    public string? ConfigYaml { get; init; }

    /// <summary>
    /// The default of a dotted key of <see cref="ConfigYaml"/> (<see cref="ConfigLoader.DefaultOf{T}"/> of the config's
    /// type), or null when it has none. On resume, a key the checkpoint's settings lack (a setting added to wtn since)
    /// is no change while its value is this default, as in the stage check; without it, any such key is a change.
    /// </summary>
    public Func<string, string?>? SettingDefault { get; init; }

    /// <summary>Continue from the newest checkpoint in RunDir/checkpoints (exactly: same weights as an uninterrupted run).</summary>
    public bool Resume { get; init; }
}
