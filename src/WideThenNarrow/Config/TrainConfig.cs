using WideThenNarrow.Models;

namespace WideThenNarrow.Config;

public enum OptimizerKind
{
    Sgd,
    AdamW,
}

public enum ScheduleKind
{
    Constant,
    Step,
    MultiStep,
    Cosine,
    Linear,
}

/// <summary>Float32, or the whole model (weights, activations, optimiser state) in bfloat16. See docs/training.md for the caveats.</summary>
public enum Precision
{
    Float32,
    Bfloat16,
}

public sealed record OptimizerConfig : IValidatedConfig
{
    public OptimizerKind Name { get; init; } = OptimizerKind.Sgd;

    /// <summary>Base learning rate; each parameter group multiplies it by its factor.</summary>
    public double Lr { get; init; } = 0.1;

    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    public bool Nesterov { get; init; }
    public double WeightDecay { get; init; } = 5e-4;

    /// <summary>When false, 1-d parameters (norm weights and biases) get no weight decay.</summary>
    public bool DecayNormsAndBiases { get; init; } = true;

    /// <summary>AdamW betas and epsilon.</summary>
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;

    /// <summary>Clip gradients to this global L2 norm; 0 = no clipping.</summary>
    public double ClipGradNorm { get; init; }

    public void Validate(ConfigKeys at)
    {
        at.Positive(nameof(Lr), Lr);
        at.InRange(nameof(Momentum), Momentum, 0, 1, maxExclusive: true);
        at.InRange(nameof(WeightDecay), WeightDecay, 0, double.PositiveInfinity);
        at.InRange(nameof(Beta1), Beta1, 0, 1, maxExclusive: true);
        at.InRange(nameof(Beta2), Beta2, 0, 1, maxExclusive: true);
        at.Positive(nameof(Eps), Eps);
        at.InRange(nameof(ClipGradNorm), ClipGradNorm, 0, double.PositiveInfinity, meaning: "0 = no clipping");
    }
}

/// <summary>The learning rate as a function of the global step: warm-up, then one decay shape.</summary>
public sealed record ScheduleConfig : IValidatedConfig
{
    public ScheduleKind Name { get; init; } = ScheduleKind.Cosine;

    /// <summary>Linear warm-up length, in epochs (fractions allowed) or steps (steps win when both are set).</summary>
    public double WarmupEpochs { get; init; }
    public long WarmupSteps { get; init; }

    /// <summary>Warm-up starts at lr * this factor.</summary>
    public double WarmupStartFactor { get; init; } = 0.1;

    /// <summary>step: multiply by gamma every this many epochs.</summary>
    public double StepEpochs { get; init; } = 30;

    /// <summary>multi_step: multiply by gamma at each of these epochs.</summary>
    public List<double> Milestones { get; init; } = [];
    public double Gamma { get; init; } = 0.1;

    /// <summary>cosine / linear: the floor reached at the last step (0 = decay to zero).</summary>
    public double MinLr { get; init; }

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(WarmupEpochs), WarmupEpochs, 0, double.PositiveInfinity);
        at.InRange(nameof(WarmupSteps), WarmupSteps, 0, long.MaxValue);
        at.InRange(nameof(WarmupStartFactor), WarmupStartFactor, 0, 1);
        at.Positive(nameof(StepEpochs), StepEpochs);
        for (int i = 0; i < Milestones.Count; i++)
            if (!(double.IsFinite(Milestones[i]) && Milestones[i] >= 0))
                throw at.Error(nameof(Milestones), $"must hold epochs, 0 or more, got {Milestones[i]} at [{i}]");
        at.Positive(nameof(Gamma), Gamma);
        at.InRange(nameof(MinLr), MinLr, 0, double.PositiveInfinity);
    }
}

public sealed record EvalConfig : IValidatedConfig
{
    /// <summary>Evaluate every this many epochs (the last epoch is always evaluated); 0 = only at the end.</summary>
    public int EveryEpochs { get; init; } = 1;

    public void Validate(ConfigKeys at) =>
        at.InRange(nameof(EveryEpochs), EveryEpochs, 0, int.MaxValue, "0 = only at the end");
}

public sealed record CheckpointConfig : IValidatedConfig
{
    /// <summary>Also checkpoint every this many steps (0 = at epoch ends only), so kill -9 loses little.</summary>
    public int EverySteps { get; init; } = 500;

    /// <summary>Step checkpoints kept (the newest); best.ckpt is kept separately.</summary>
    public int KeepLast { get; init; } = 2;
    public bool KeepBest { get; init; } = true;

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(EverySteps), EverySteps, 0, int.MaxValue, "0 = at epoch ends only");
        at.InRange(nameof(KeepLast), KeepLast, 1, int.MaxValue);
    }
}

public sealed record LoggingConfig : IValidatedConfig
{
    /// <summary>A metrics.jsonl line (and TensorBoard scalars) every this many steps, besides one per epoch.</summary>
    public int EverySteps { get; init; } = 50;
    public bool Tensorboard { get; init; } = true;

    public void Validate(ConfigKeys at) =>
        at.InRange(nameof(EverySteps), EverySteps, 0, int.MaxValue, "0 = once per epoch only");
}

/// <summary>Everything the trainer needs besides the modules, data and objective. Experiment schemas embed these records.</summary>
public record TrainerSettings : IValidatedConfig
{
    public OptimizerConfig Optimizer { get; init; } = new();
    public ScheduleConfig Schedule { get; init; } = new();

    /// <summary>Budget: epochs, or steps when <see cref="Steps"/> &gt; 0.</summary>
    public int Epochs { get; init; } = 10;
    public long Steps { get; init; }
    public long Seed { get; init; }
    public Precision Precision { get; init; } = Precision.Float32;
    public EvalConfig Eval { get; init; } = new();
    public CheckpointConfig Checkpoint { get; init; } = new();
    public LoggingConfig Logging { get; init; } = new();

    /// <summary>The budget; the nested sections check themselves.</summary>
    public virtual void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Epochs), Epochs, 0, int.MaxValue);
        at.InRange(nameof(Steps), Steps, 0, long.MaxValue, "0 = use epochs");
    }
}

/// <summary>
/// <c>wtn train</c>'s config: a model, a dataset and the trainer settings (inherited, so their keys stay top-level), one
/// YAML file. The model and data sections are the records an experiment file's <c>models.thin</c> and <c>data</c> are,
/// with the same keys and defaults.
/// </summary>
public sealed record TrainConfig : TrainerSettings
{
    /// <summary>The model; classes and input channels default to the dataset's.</summary>
    public ModelSpec Model { get; init; } = new();
    public DataConfig Data { get; init; } = new();

    /// <summary>Label smoothing of the cross-entropy.</summary>
    public double LabelSmoothing { get; init; }

    public override void Validate(ConfigKeys at)
    {
        base.Validate(at);
        at.InRange(nameof(LabelSmoothing), LabelSmoothing, 0, 1, maxExclusive: true);
        if (Data.Text is not null)
            throw at.Nested(nameof(Data))
                .Error(
                    nameof(DataConfig.Text),
                    "is for experiments (wtn run); wtn train reads an image dataset: remove it and set data.dataset"
                );
        if (ModelData.Mismatch(Model.Name, text: false, $"data.dataset {Data.Dataset}") is { } problem)
            throw at.Nested(nameof(Model)).Error(nameof(ModelSpec.Name), problem);
    }
}
