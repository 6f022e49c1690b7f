using System.Runtime.InteropServices;

namespace WideThenNarrow.Cli;

/// <summary>
/// SIGINT (Ctrl+C) and SIGTERM cancel the command's token: a training run checkpoints and exits with 130. Every
/// signal is taken here, repeats included: a second Ctrl+C or <c>kill</c> while the checkpoint is being written
/// neither kills the process nor cancels twice, so the first signal's checkpoint is written once and whole.
/// </summary>
sealed class StopSignals : IDisposable
{
    /// <summary>How long a command may take to stop after the first signal before the process exits without it.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    // Not disposed: a signal may still arrive while the process shuts down, and Cancel on a disposed source throws.
    readonly CancellationTokenSource stop = new();
    readonly PosixSignalRegistration[] registrations;

    public StopSignals() =>
        registrations = [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop),
        ];

    public CancellationToken Token => stop.Token;

    void Stop(PosixSignalContext signal)
    {
        signal.Cancel = true;
        stop.Cancel();
    }

    /// <summary>Completes <see cref="Patience"/> after the first signal (never without one).</summary>
    public Task PatienceOver() =>
        Task.Delay(Timeout.InfiniteTimeSpan, stop.Token)
            .ContinueWith(_ => Task.Delay(Patience), TaskScheduler.Default)
            .Unwrap();

    public void Dispose()
    {
        foreach (var r in registrations)
            r.Dispose();
    }
}
