using WideThenNarrow.Orchestration;

namespace WideThenNarrow.Tests.Orchestration;

/// <summary>
/// <see cref="LocalExecutor"/> on a made-up graph with stand-in processes: what starts when, at most N at once, the
/// critical path first, a failure kept to what starts from it, a stop passed on. (The real processes: RunJobsTests.)
/// </summary>
public class LocalExecutorTests
{
    static StageJobSpec Spec(
        string stage,
        double seconds,
        string[]? needs = null,
        int units = 0,
        bool done = false,
        long seed = 0
    ) =>
        new(seed, stage, needs ?? [], units, done)
        {
            Seconds = seconds,
            Time = TimeSpan.FromMinutes(10),
            MemoryMb = 1024,
        };

    /// <summary>The wide network gates stage 2 (two units), fine-tuning and kd; standard and deeper need nothing.</summary>
    static readonly StageJobSpec[] Graph =
    [
        Spec("wide", 100),
        Spec("imitation", 20, ["wide"], units: 2),
        Spec("finetune", 30, ["imitation"]),
        Spec("standard", 40),
        Spec("kd", 50, ["wide"]),
        Spec("deeper", 120),
    ];

    /// <summary>Stand-in processes: each ends when the test says (or at once), with the exit code the test chose.</summary>
    sealed class Launcher(Func<StageTask, int>? exitOf = null, bool hold = false) : IStageLauncher
    {
        readonly object gate = new();
        readonly Func<StageTask, int>? exitOf = exitOf;
        readonly bool hold = hold;
        int running;
        public List<string> Started { get; } = [];
        public int Count
        {
            get
            {
                lock (gate)
                    return Started.Count;
            }
        }
        public int MostAtOnce { get; private set; }
        public SemaphoreSlim Release { get; } = new(0);
        public List<string> Stopped { get; } = [];

        public IStageProcess Start(StageTask task)
        {
            lock (gate)
            {
                Started.Add(task.ToString());
                MostAtOnce = Math.Max(MostAtOnce, ++running);
            }
            return new Stand(this, task);
        }

        sealed class Stand(Launcher l, StageTask task) : IStageProcess
        {
            public StageExit Wait(CancellationToken stop)
            {
                int code = l.exitOf?.Invoke(task) ?? 0;
                if (l.hold)
                {
                    try
                    {
                        l.Release.Wait(stop);
                    }
                    catch (OperationCanceledException)
                    {
                        lock (l.gate)
                            l.Stopped.Add(task.ToString());
                        code = 130;
                    }
                }
                lock (l.gate)
                    l.running--;
                return new StageExit(code, code == 0 ? null : $"wtn: error: {task} broke", $"/logs/{task.Stage}.log");
            }
        }
    }

    [Fact]
    public void Ready_stages_start_most_time_ahead_first_at_most_N_at_once_and_units_before_their_assembly()
    {
        // Time ahead: wide 100 + max(unit 10 + assembly 0 + finetune 30, kd 50) = 150, deeper 120, kd 50, each unit 40,
        // standard 40 (after the units: ties go in declared order), assembly 30, finetune 30.
        string[] order =
        [
            "seed-0/wide",
            "seed-0/deeper",
            "seed-0/kd",
            "seed-0/imitation unit 0",
            "seed-0/imitation unit 1",
            "seed-0/standard",
            "seed-0/imitation",
            "seed-0/finetune",
        ];
        Assert.Equal(order, LocalExecutor.Order(Graph).Select(t => t.ToString()));
        // One at a time, each start is the ready process with the most time ahead: standard waits for the units, the
        // assembly for both units, fine-tuning for the assembly.
        var one = new Launcher();
        var done = new List<string>();
        new LocalExecutor(1, one, null).Run(Graph, t => done.Add(t.ToString()), default);
        Assert.Equal(order, one.Started);
        Assert.Equal(1, one.MostAtOnce);
        // The interim report follows stages, not units.
        Assert.Equal(
            ["seed-0/wide", "seed-0/deeper", "seed-0/kd", "seed-0/standard", "seed-0/imitation", "seed-0/finetune"],
            done
        );
        // Two at a time: every process once, never more than two.
        var two = new Launcher();
        new LocalExecutor(2, two, null).Run(Graph, _ => { }, default);
        Assert.Equal(order.Order(), two.Started.Order());
        Assert.InRange(two.MostAtOnce, 1, 2);
    }

    [Fact]
    public void Done_stages_and_units_are_not_started_again_and_what_needs_them_is_ready()
    {
        var graph = Graph
            .Select(s =>
                s.Stage switch
                {
                    "wide" => s with { Done = true },
                    "imitation" => s with { UnitsDone = new HashSet<int> { 0 } },
                    _ => s,
                }
            )
            .ToList();
        var log = new List<string>();
        var launcher = new Launcher();
        new LocalExecutor(1, launcher, new Log(log)).Run(graph, _ => { }, default);
        Assert.Equal(["seed 0: wide already done, skipped"], log);
        Assert.DoesNotContain("seed-0/wide", launcher.Started);
        Assert.DoesNotContain("seed-0/imitation unit 0", launcher.Started);
        Assert.Contains("seed-0/imitation unit 1", launcher.Started);
        Assert.Equal(1, launcher.MostAtOnce);
    }

    [Fact]
    public void A_failed_stage_stops_what_starts_from_it_and_nothing_else()
    {
        var log = new List<string>();
        var launcher = new Launcher(t => t.Stage == "imitation" && t.Unit == 1 ? 2 : 0);
        var e = Assert.Throws<WtnException>(() =>
            new LocalExecutor(2, launcher, new Log(log)).Run(Graph, _ => { }, default)
        );
        Assert.Equal(
            "seed-0/imitation unit 1 failed (exit 2: seed-0/imitation unit 1 broke; log /logs/imitation.log); "
                + "not started, as they start from it: seed-0/imitation, seed-0/finetune; every other stage finished; "
                + "see the log, then run the same command again (finished stages are kept)",
            e.Message
        );
        Assert.Equal(
            [
                "seed-0/deeper",
                "seed-0/imitation unit 0",
                "seed-0/imitation unit 1",
                "seed-0/kd",
                "seed-0/standard",
                "seed-0/wide",
            ],
            launcher.Started.Order()
        );
        Assert.Contains("seed-0/finetune not started: it starts from seed-0/imitation unit 1, which failed", log);
    }

    [Fact]
    public void A_stop_reaches_the_running_processes_starts_nothing_more_and_names_them()
    {
        var launcher = new Launcher(hold: true);
        using var cts = new CancellationTokenSource();
        var run = Task.Run(() => new LocalExecutor(2, launcher, null).Run(Graph, _ => { }, cts.Token));
        Assert.True(SpinWait.SpinUntil(() => launcher.Count == 2, TimeSpan.FromSeconds(30)));
        Thread.Sleep(100); // time to start a third, were it to
        cts.Cancel();
        var e = Assert.Throws<RunInterruptedException>(() => run.GetAwaiter().GetResult());
        Assert.Equal(["seed-0/wide", "seed-0/deeper"], launcher.Started);
        Assert.Equal(["seed-0/deeper", "seed-0/wide"], launcher.Stopped.Order());
        Assert.Matches(
            @"^interrupted; seed-0/(wide|deeper), seed-0/(wide|deeper) stopped at a checkpoint; run the same command again to continue$",
            e.Message
        );
    }

    sealed class Log(List<string> lines) : IProgress<string>
    {
        public void Report(string value)
        {
            lock (lines)
                lines.Add(value);
        }
    }
}
