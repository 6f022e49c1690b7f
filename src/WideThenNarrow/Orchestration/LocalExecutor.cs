namespace WideThenNarrow.Orchestration;

/// <summary>One process of a local run: a stage of a seed (<c>wtn run --only seed-S/STAGE</c>) or one unit of it (<c>--unit K</c>).</summary>
public sealed record StageTask(long Seed, string Stage, int? Unit = null)
{
    /// <summary>The stage as <c>--only</c> names it.</summary>
    public string Only => $"seed-{Seed}/{Stage}";

    public override string ToString() => Unit is { } k ? $"{Only} unit {k}" : Only;
}

/// <summary>How a stage process ended: its exit code, the last line it wrote to standard error (wtn's one-line error), its log.</summary>
public sealed record StageExit(int Code, string? Error, string? Log);

/// <summary>Starts a <see cref="StageTask"/> as a process (the CLI starts <c>wtn run --only</c>).</summary>
public interface IStageLauncher
{
    /// <summary>Starts the task's process; a process that cannot start gives a <see cref="IStageProcess"/> that has ended.</summary>
    IStageProcess Start(StageTask task);
}

/// <summary>A started stage process.</summary>
public interface IStageProcess
{
    /// <summary>Waits for the process to end; once <paramref name="stop"/> fires, asks it to stop (it checkpoints) and waits on.</summary>
    StageExit Wait(CancellationToken stop);
}

/// <summary>A local run stopped by its caller after its stage processes had checkpointed: the message names them.</summary>
public sealed class RunInterruptedException(string message, CancellationToken token)
    : OperationCanceledException(message, token);

/// <summary>
/// <c>wtn run --jobs N</c>: the experiment's stage graph (<see cref="ExperimentRunner.Graph"/>) walked on this
/// machine, each stage a process of its own, at most <paramref name="jobs"/> at once. A stage starts once every stage
/// it starts from is done; stage 2 with teacher input runs as one process per unit, then the process that assembles
/// them. Of the ready ones, the one with the most estimated time ahead of it (its own and the longest chain waiting for
/// it: the critical path) starts first, ties in declared order. A stage that fails is named, the stages that need it
/// (directly or down a chain) are not started, the others run to their end. <paramref name="log"/> gets a line per
/// stage already done, failed or not started; the launcher reports starts and ends and relays the processes' lines.
/// </summary>
public sealed class LocalExecutor(int jobs, IStageLauncher launcher, IProgress<string>? log)
{
    sealed class Node(StageTask task, double seconds, int index)
    {
        public StageTask Task { get; } = task;
        public double Seconds { get; } = seconds;
        public int Index { get; } = index;
        public List<Node> Needs { get; } = [];
        public List<Node> Dependents { get; } = [];

        /// <summary>Estimated seconds from its start to the end of the longest chain waiting for it.</summary>
        public double Ahead { get; set; }
        public bool Done { get; set; }
    }

    /// <summary>The processes to run for the stages not done, each with what it waits for and its time ahead, in declared order.</summary>
    static List<Node> Nodes(IReadOnlyList<StageJobSpec> graph)
    {
        var nodes = new List<Node>();
        var stages = new Dictionary<(long, string), Node>();
        foreach (var s in graph.Where(s => !s.Done))
        {
            var needs = s.Needs.Select(n => stages.GetValueOrDefault((s.Seed, n))).OfType<Node>().ToList();
            var units = new List<Node>();
            foreach (var k in Enumerable.Range(0, s.Units).Where(k => !s.UnitsDone.Contains(k)))
            {
                var unit = new Node(new StageTask(s.Seed, s.Stage, k), s.Seconds / s.Units, nodes.Count);
                unit.Needs.AddRange(needs);
                units.Add(unit);
                nodes.Add(unit);
            }
            // With units, the stage's own process only assembles them.
            var stage = new Node(new StageTask(s.Seed, s.Stage), s.Units > 0 ? 0 : s.Seconds, nodes.Count);
            stage.Needs.AddRange(needs.Concat(units));
            nodes.Add(stage);
            stages[(s.Seed, s.Stage)] = stage;
        }
        foreach (var n in nodes)
        foreach (var d in n.Needs)
            d.Dependents.Add(n);
        // Declared order has every node after what it needs: backwards, the dependents' time ahead is known.
        for (int i = nodes.Count - 1; i >= 0; i--)
            nodes[i].Ahead = nodes[i].Seconds + nodes[i].Dependents.Select(d => d.Ahead).DefaultIfEmpty(0).Max();
        return nodes;
    }

    /// <summary>The processes for the stages not done, most time ahead first (the order among ready ones), ties in declared order.</summary>
    public static IReadOnlyList<StageTask> Order(IReadOnlyList<StageJobSpec> graph) =>
        [.. Nodes(graph).OrderByDescending(n => n.Ahead).ThenBy(n => n.Index).Select(n => n.Task)];

    /// <summary>
    /// Runs every stage of <paramref name="graph"/> not done; <paramref name="stageDone"/> is called on this thread after
    /// each stage (not unit) finishes. Throws when a stage failed, once every stage that could run has run (a one-line
    /// <see cref="WtnException"/> naming it and the stages not started), and when <paramref name="cancel"/> fired, once
    /// the processes running have stopped (<see cref="RunInterruptedException"/>).
    /// </summary>
    public void Run(IReadOnlyList<StageJobSpec> graph, Action<StageTask> stageDone, CancellationToken cancel)
    {
        foreach (var s in graph.Where(s => s.Done))
            log?.Report($"seed {s.Seed}: {s.Stage} already done, skipped");
        var pending = Nodes(graph);
        var running = new Dictionary<Task<StageExit>, Node>();
        var failed = new List<string>();
        var notStarted = new List<string>();
        var stopped = new List<string>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        try
        {
            while (true)
            {
                while (
                    !stop.IsCancellationRequested
                    && running.Count < jobs
                    && pending
                        .Where(n => n.Needs.All(d => d.Done))
                        .OrderByDescending(n => n.Ahead)
                        .ThenBy(n => n.Index)
                        .FirstOrDefault()
                        is { } next
                )
                {
                    pending.Remove(next);
                    var process = launcher.Start(next.Task);
                    running[
                        Task.Factory.StartNew(
                            () => process.Wait(stop.Token),
                            CancellationToken.None,
                            TaskCreationOptions.LongRunning,
                            TaskScheduler.Default
                        )
                    ] = next;
                }
                if (running.Count == 0)
                    break;
                var ended = running.Keys.ElementAt(Task.WaitAny([.. running.Keys]));
                var node = running[ended];
                running.Remove(ended);
                var exit = ended.Result;
                if (exit.Code == 0)
                {
                    node.Done = true;
                    if (node.Task.Unit is null)
                        stageDone(node.Task);
                    continue;
                }
                if (stop.IsCancellationRequested)
                {
                    stopped.Add(node.Task.ToString());
                    continue;
                }
                var why = exit.Error is { Length: > 0 } e
                    ? e.StartsWith("wtn: error: ", StringComparison.Ordinal)
                        ? e["wtn: error: ".Length..]
                        : e
                    : "no error line";
                failed.Add(
                    $"{node.Task} failed (exit {exit.Code}: {why}{(exit.Log is null ? "" : $"; log {exit.Log}")})"
                );
                log?.Report(failed[^1]);
                var skipped = Downstream(node).Where(pending.Contains).OrderBy(n => n.Index).ToList();
                foreach (var d in skipped)
                {
                    pending.Remove(d);
                    notStarted.Add(d.Task.ToString());
                    log?.Report($"{d.Task} not started: it starts from {node.Task}, which failed");
                }
            }
        }
        finally
        {
            // An error here (an interim report that could not be written): the stage processes stop and checkpoint first.
            if (running.Count > 0)
            {
                stop.Cancel();
                Task.WaitAll([.. running.Keys]);
            }
        }
        if (cancel.IsCancellationRequested)
            throw stopped.Count == 0
                ? new OperationCanceledException(cancel)
                : new RunInterruptedException(
                    $"interrupted; {string.Join(", ", stopped)} stopped at a checkpoint; run the same command again to continue",
                    cancel
                );
        if (failed.Count > 0)
            throw new WtnException(
                string.Join("; ", failed)
                    + (
                        notStarted.Count > 0
                            ? $"; not started, as they start from it: {string.Join(", ", notStarted)}"
                            : ""
                    )
                    + "; every other stage finished; see the log, then run the same command again (finished stages are kept)"
            );
    }

    /// <summary>Every node waiting for <paramref name="node"/>, directly or down a chain.</summary>
    static IEnumerable<Node> Downstream(Node node)
    {
        var seen = new HashSet<Node>();
        var todo = new Stack<Node>(node.Dependents);
        while (todo.Count > 0)
        {
            var n = todo.Pop();
            if (!seen.Add(n))
                continue;
            yield return n;
            foreach (var d in n.Dependents)
                todo.Push(d);
        }
    }
}
