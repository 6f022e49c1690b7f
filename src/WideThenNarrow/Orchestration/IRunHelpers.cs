namespace WideThenNarrow.Orchestration;

/// <summary>Processes helping a <see cref="ExperimentRunner.Run"/> (<c>wtn run --jobs N</c>), told how the run ended.</summary>
public interface IRunHelpers
{
    /// <summary>
    /// Every stage is done: wait for the helpers, which exit on their own once they see it, and give the calling thread
    /// the run's threads again (the final report measures latency on them).
    /// </summary>
    void Finished();

    /// <summary>The run failed or was cancelled: stop the helpers now (they checkpoint and exit).</summary>
    void Stop();
}
