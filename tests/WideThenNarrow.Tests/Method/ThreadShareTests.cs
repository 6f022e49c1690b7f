using System.Diagnostics;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Method;

/// <summary>
/// <see cref="ThreadShare"/>: the processes of a run split their thread budget among those training, and a process
/// that stops training (or dies) hands its threads over. In the torch-rng collection: it changes libtorch's thread
/// count, which the bit-for-bit tests there must not see change under them.
/// </summary>
[Collection("torch-rng")]
public class ThreadShareTests
{
    [Fact]
    public void The_budget_is_split_equally_among_the_processes_training_the_remainder_to_the_lowest_ids()
    {
        Assert.Equal(2, ThreadShare.ShareOf(2, [], 7));
        Assert.Equal(2, ThreadShare.ShareOf(2, [7], 7)); // itself listed: counted once
        Assert.Equal(1, ThreadShare.ShareOf(2, [3], 7));
        Assert.Equal(1, ThreadShare.ShareOf(1, [3], 7)); // never 0
        Assert.Equal([2, 1, 1], new[] { 1, 2, 3 }.Select(p => ThreadShare.ShareOf(4, [1, 2, 3], p)));
        Assert.Equal([3, 3], new[] { 5, 9 }.Select(p => ThreadShare.ShareOf(6, [5, 9], p)));
        Assert.Throws<WtnException>(() => new ThreadShare(0, () => []));
    }

    [Fact]
    public void A_training_process_takes_the_threads_of_one_that_stopped_training()
    {
        var runs = TestData.NewTempFolder("share");
        int before = get_num_threads();
        using var other = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        try
        {
            var c = ExperimentRunnerTests.Tiny("share", baselines: false) with
            {
                Wide = null, Imitation = null, Finetune = null,
                Standard = new() { Train = ExperimentRunnerTests.Budget(steps: 8) },
                StandardLong = new() { Train = ExperimentRunnerTests.Budget(steps: 3) },
            };
            // Another process of the run holds standard_long (its owner note names a live process, not this one).
            var longDir = Path.Combine(runs, "share", "seed-0", "standard_long");
            var held = RunLock.TryAcquire(longDir)!;
            File.WriteAllText(Path.Combine(longDir, ".lock.owner"),
                $"process {other.Id} on {Environment.MachineName}, since {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC");
            var threads = new List<(string Stage, long Step, int Threads)>();
            var log = new List<string>();
            var budgets = new List<int?>();
            var progress = new OnStep(p =>
            {
                threads.Add((p.Stage, p.Step, get_num_threads()));
                budgets.Add(ExperimentRunner.RunThreadBudget(Path.Combine(runs, "share"))); // what a --join would take
                if (p.Stage == "standard" && p.Step == 4)
                {
                    other.Kill(); // it dies and leaves its note behind: no longer training
                    other.WaitForExit();
                }
            });
            var logSink = new OnLine(line =>
            {
                log.Add(line);
                if (line.StartsWith("waiting for another process", StringComparison.Ordinal)) held.Dispose();
            });
            set_num_threads(2);
            var runner = new ExperimentRunner(c, runs, Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!, CPU, progress, logSink)
            {
                ThreadBudget = 2,
                ThreadCheckInterval = TimeSpan.Zero,
                PollInterval = TimeSpan.FromMilliseconds(20),
            };
            var result = runner.Run();

            Assert.False(result.Partial);
            // The budget is there for joining processes while the run lasts, and gone after it.
            Assert.All(budgets, b => Assert.Equal(2, b));
            Assert.Null(ExperimentRunner.RunThreadBudget(Path.Combine(runs, "share")));
            // Two processes training: 1 thread each; from the step after the other died, both threads.
            Assert.Equal([1, 1, 1, 1, 2, 2, 2, 2], threads.Where(t => t.Stage == "standard").Select(t => t.Threads));
            Assert.All(threads.Where(t => t.Stage == "standard_long"), t => Assert.Equal(2, t.Threads));
            Assert.Equal(3, threads.Count(t => t.Stage == "standard_long"));
            Assert.Equal(["threads: 2 -> 1 of 2 (2 processes training)", "threads: 1 -> 2 of 2 (no other process is training)"],
                log.Where(l => l.StartsWith("threads:", StringComparison.Ordinal)));
        }
        finally
        {
            set_num_threads(before);
            if (!other.HasExited) other.Kill();
            Directory.Delete(runs, true);
        }
    }

    [Fact]
    public void It_looks_again_on_evaluation_batches_and_training_steps_not_on_other_events()
    {
        int before = get_num_threads();
        var others = new List<int> { int.MaxValue }; // a process id no live process has: only the list counts here
        var share = new ThreadShare(2, () => others) { Interval = TimeSpan.Zero };
        var watch = share.Watch(null);
        static TrainingProgress Event(TrainingEventKind kind) => new(kind, "s", 0, 1, 0, 10, 0, 10, 0, 0, 0, TimeSpan.Zero, null);
        try
        {
            set_num_threads(2);
            watch.Report(Event(TrainingEventKind.Evaluating));
            Assert.Equal(1, get_num_threads()); // another process training: half the budget
            others.Clear();
            watch.Report(Event(TrainingEventKind.EpochEnd));
            watch.Report(Event(TrainingEventKind.CheckpointSaved));
            Assert.Equal(1, get_num_threads());
            watch.Report(Event(TrainingEventKind.Evaluating));
            Assert.Equal(2, get_num_threads()); // it stopped: all of it, in the middle of the evaluation
            others.Add(int.MaxValue);
            watch.Report(Event(TrainingEventKind.Step));
            Assert.Equal(1, get_num_threads());
        }
        finally { set_num_threads(before); }
    }

    sealed class OnStep(Action<TrainingProgress> act) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.Kind == TrainingEventKind.Step) act(p);
        }
    }

    sealed class OnLine(Action<string> act) : IProgress<string>
    {
        public void Report(string value) => act(value);
    }
}
