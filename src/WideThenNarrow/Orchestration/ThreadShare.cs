using System.Diagnostics;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Orchestration;

/// <summary>
/// Intra-op threads shared by the processes of one run (<c>wtn run --jobs N</c>, <c>--join</c>): a process that is
/// training takes its share of the budget among the processes training at that moment, so one left with nothing to
/// start lends its threads to the others instead of leaving cores idle. The processes training are those holding a
/// stage lock (their owner notes name live processes on this machine). This process looks again when it starts a
/// stage (then only lowering its count) and, during training, at most every <see cref="Interval"/> (on a training
/// step or an evaluation batch, on the training thread: libtorch's thread count is per thread). A stage's weights then depend, at float
/// rounding, on when its thread count changed; a fixed split (no share) keeps every stage bit-reproducible.
/// </summary>
public sealed class ThreadShare
{
    readonly int budget;
    readonly Func<IEnumerable<int>> training;
    readonly IProgress<string>? log;
    readonly Stopwatch sinceCheck = new();

    /// <param name="budget">Threads all processes of the run share.</param>
    /// <param name="training">The processes holding a stage lock now (this one's included or not).</param>
    public ThreadShare(int budget, Func<IEnumerable<int>> training, IProgress<string>? log = null)
    {
        if (budget < 1) throw new WtnException($"the thread budget must be at least 1, got {budget}");
        this.budget = budget;
        this.training = training;
        this.log = log;
    }

    /// <summary>Least time between two looks during training.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// <paramref name="self"/>'s share of <paramref name="budget"/> threads among the <paramref name="training"/>
    /// processes (itself included): an equal split, the remainder to the lowest process ids, at least 1.
    /// </summary>
    public static int ShareOf(int budget, IEnumerable<int> training, int self)
    {
        var all = training.Append(self).Distinct().Order().ToList();
        int n = all.Count, rank = all.IndexOf(self);
        return Math.Max(1, budget / n + (rank < budget % n ? 1 : 0));
    }

    /// <summary>
    /// Sets this thread's libtorch thread count to this process's share now (call on the training thread). With
    /// <paramref name="raise"/> false (a stage starting) it only lowers the count: helpers just started have not taken
    /// a stage yet, and the first look during training comes soon enough.
    /// </summary>
    public void Rebalance(bool raise = true)
    {
        sinceCheck.Restart();
        var others = training().Where(p => p != Environment.ProcessId).Distinct().ToList();
        int share = ShareOf(budget, others, Environment.ProcessId), before = get_num_threads();
        if (share == before || (share > before && !raise)) return;
        set_num_threads(share);
        log?.Report($"threads: {before} -> {share} of {budget} ({(others.Count == 0 ? "no other process is training" : $"{others.Count + 1} processes training")})");
    }

    /// <summary>
    /// Progress that looks again on a training step or an evaluation batch once <see cref="Interval"/> has passed, then
    /// passes the event on.
    /// </summary>
    public IProgress<TrainingProgress> Watch(IProgress<TrainingProgress>? inner) => new Watcher(this, inner);

    sealed class Watcher(ThreadShare share, IProgress<TrainingProgress>? inner) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.Kind is TrainingEventKind.Step or TrainingEventKind.Evaluating && share.sinceCheck.Elapsed >= share.Interval) share.Rebalance();
            inner?.Report(p);
        }
    }
}
