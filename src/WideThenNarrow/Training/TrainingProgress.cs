namespace WideThenNarrow.Training;

public enum TrainingEventKind
{
    /// <summary>The job begins (or resumes: <see cref="TrainingProgress.Step"/> &gt; 0).</summary>
    Started,

    /// <summary>One optimisation step finished.</summary>
    Step,

    /// <summary>Evaluation running (Step carries batches done in <see cref="TrainingProgress.StepInEpoch"/>).</summary>
    Evaluating,

    /// <summary>An epoch ended; <see cref="TrainingProgress.Metrics"/> holds its record.</summary>
    EpochEnd,

    /// <summary>A checkpoint was written to <see cref="TrainingProgress.CheckpointPath"/>.</summary>
    CheckpointSaved,
    Finished,
}

/// <summary>
/// One progress event. A struct so step events allocate nothing; reported synchronously on the training thread.
/// Epoch is 0-based; <see cref="Loss"/> is the step's loss (Step) or a running mean over the epoch so far.
/// </summary>
public readonly record struct TrainingProgress(
    TrainingEventKind Kind,
    string Stage,
    int Epoch,
    int Epochs,
    long Step,
    long TotalSteps,
    int StepInEpoch,
    int StepsPerEpoch,
    double Loss,
    double LearningRate,
    double SamplesPerSecond,
    TimeSpan Elapsed,
    TimeSpan? Eta,
    EpochMetrics? Metrics = null,
    string? CheckpointPath = null
);

/// <summary>
/// One row of metrics.jsonl. Kind is "epoch" or "step". Train* are means over the epoch (or the last logging
/// window); Eval* are null when no evaluation ran; Top1 values are fractions in [0, 1].
/// </summary>
public sealed record EpochMetrics(
    string Kind,
    string Stage,
    int Epoch,
    long Step,
    double Lr,
    double TrainLoss,
    double? TrainTop1,
    double? EvalLoss,
    double? EvalTop1,
    double SamplesPerSecond,
    double Seconds,
    IReadOnlyDictionary<string, double>? Parts
);

/// <summary>What a finished job returns.</summary>
public sealed record TrainingResult(
    string RunDir,
    EpochMetrics? Best,
    EpochMetrics? Last,
    IReadOnlyList<EpochMetrics> Epochs,
    string? LastCheckpoint,
    string? BestCheckpoint,
    long Steps,
    TimeSpan WallTime,
    bool Resumed
)
{
    /// <summary>The finished network's test top-1, when its caller scored it (the trainer itself evaluates on validation only).</summary>
    public double? TestTop1 { get; init; }
}
