namespace WideThenNarrow.Training;

/// <summary>
/// A training run stopped on request (Ctrl+C, SIGTERM, a parent process going away) after finishing its step and
/// writing <see cref="Checkpoint"/>: nothing is lost, and resuming continues bit-identically from <see cref="Step"/>.
/// </summary>
public sealed class TrainingInterruptedException(string stage, long step, string checkpoint, CancellationToken token)
    : OperationCanceledException($"stage {stage} interrupted at step {step}; checkpoint {checkpoint}", token)
{
    public string Stage { get; } = stage;
    public long Step { get; } = step;
    public string Checkpoint { get; } = checkpoint;

    /// <summary>How to continue, for the one-line message the CLI prints.</summary>
    public string Advice { get; init; } = "run the same command again to continue";
}
