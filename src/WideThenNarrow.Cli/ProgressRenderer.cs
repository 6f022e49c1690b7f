using System.Diagnostics;
using Spectre.Console;
using WideThenNarrow.Training;

namespace WideThenNarrow.Cli;

/// <summary>
/// Renders <see cref="TrainingProgress"/> for any number of stages: a live Spectre.Console display (one bar per
/// stage: epoch, step, loss, LR, samples/s, ETA) on a terminal, plain lines when output is redirected. Epoch
/// results and checkpoints print as lines in both modes. Usage: <c>renderer.Run(sink =&gt; Trainer.Run(job with sink))</c>.
/// </summary>
public sealed class ProgressRenderer
{
    readonly bool _interactive;
    readonly TimeSpan _plainEvery;

    public ProgressRenderer(bool interactive, TimeSpan? plainEvery = null)
    {
        _interactive = interactive;
        _plainEvery = plainEvery ?? TimeSpan.FromSeconds(15);
    }

    /// <summary>Runs <paramref name="work"/> with a progress sink; the live display lasts as long as the work.</summary>
    public T Run<T>(Func<IProgress<TrainingProgress>, T> work)
    {
        if (!_interactive)
            return work(new PlainSink(_plainEvery));
        T result = default!;
        AnsiConsole
            .Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn { Alignment = Justify.Left },
                new ProgressBarColumn(),
                new PercentageColumn(),
                new ElapsedTimeColumn(),
                new RemainingTimeColumn()
            )
            .Start(ctx => result = work(new LiveSink(ctx)));
        return result;
    }

    /// <summary>One status line for a step event.</summary>
    public static string StepLine(in TrainingProgress p) =>
        $"{p.Stage} epoch {p.Epoch + 1}/{p.Epochs} step {p.Step}/{p.TotalSteps} loss {p.Loss:F4} lr {p.LearningRate:G3} "
        + $"{p.SamplesPerSecond:F0} samples/s"
        + (p.Eta is { } eta ? $" eta {Format(eta)}" : "");

    /// <summary>One line for an epoch's record.</summary>
    public static string EpochLine(EpochMetrics m) =>
        $"{m.Stage} epoch {m.Epoch + 1}: train loss {m.TrainLoss:F4}"
        + (m.TrainTop1 is { } tt ? $" top-1 {tt:P2}" : "")
        + (m.EvalLoss is { } el ? $" | eval loss {el:F4}" : "")
        + (m.EvalTop1 is { } et ? $" top-1 {et:P2}" : "")
        + (
            m.Parts is { Count: > 0 } parts
                ? " | " + string.Join(" ", parts.Select(kv => $"{kv.Key} {kv.Value:F4}"))
                : ""
        )
        + $" | lr {m.Lr:G3} {m.SamplesPerSecond:F0} samples/s {Format(TimeSpan.FromSeconds(m.Seconds))}";

    public static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m"
        : t.TotalMinutes >= 1 ? $"{t.Minutes}m{t.Seconds:D2}s"
        : $"{t.TotalSeconds:F1}s";

    sealed class PlainSink(TimeSpan every) : IProgress<TrainingProgress>
    {
        readonly Stopwatch _since = Stopwatch.StartNew();

        public void Report(TrainingProgress p)
        {
            switch (p.Kind)
            {
                case TrainingEventKind.Started:
                    Console.WriteLine(
                        p.Step > 0
                            ? $"{p.Stage}: resuming at step {p.Step}/{p.TotalSteps}"
                            : $"{p.Stage}: {p.TotalSteps} steps ({p.Epochs} epochs of {p.StepsPerEpoch})"
                    );
                    break;
                case TrainingEventKind.Step when _since.Elapsed >= every:
                    Console.WriteLine(StepLine(p));
                    _since.Restart();
                    break;
                case TrainingEventKind.EpochEnd:
                    Console.WriteLine(EpochLine(p.Metrics!));
                    _since.Restart();
                    break;
            }
        }
    }

    sealed class LiveSink(ProgressContext ctx) : IProgress<TrainingProgress>
    {
        readonly Dictionary<string, ProgressTask> _tasks = [];
        readonly Stopwatch _sinceRefresh = Stopwatch.StartNew();

        public void Report(TrainingProgress p)
        {
            if (!_tasks.TryGetValue(p.Stage, out var task))
                _tasks[p.Stage] = task = ctx.AddTask(Markup.Escape(p.Stage), maxValue: Math.Max(1, p.TotalSteps));
            switch (p.Kind)
            {
                case TrainingEventKind.Started:
                    task.Value = p.Step;
                    if (p.Step > 0)
                        AnsiConsole.MarkupLine(
                            $"[grey]{Markup.Escape(p.Stage)}: resuming at step {p.Step}/{p.TotalSteps}[/]"
                        );
                    break;
                case TrainingEventKind.Step:
                    task.Value = p.Step;
                    // Re-rendering the description costs a string per update: a few per second is plenty.
                    if (_sinceRefresh.ElapsedMilliseconds < 200)
                        break;
                    // Short: the bar, elapsed and remaining-time columns show the rest.
                    task.Description = Markup.Escape(
                        $"{p.Stage} ep {p.Epoch + 1}/{p.Epochs} step {p.Step}/{p.TotalSteps} loss {p.Loss:F3} lr {p.LearningRate:G2} {p.SamplesPerSecond:F0}/s"
                    );
                    _sinceRefresh.Restart();
                    break;
                case TrainingEventKind.Evaluating:
                    if (_sinceRefresh.ElapsedMilliseconds < 200)
                        break;
                    task.Description = Markup.Escape(
                        $"{p.Stage} ep {p.Epoch + 1}/{p.Epochs} evaluating {p.StepInEpoch}/{p.StepsPerEpoch}"
                    );
                    _sinceRefresh.Restart();
                    break;
                case TrainingEventKind.EpochEnd:
                    AnsiConsole.MarkupLine(Markup.Escape(EpochLine(p.Metrics!)));
                    break;
                case TrainingEventKind.Finished:
                    task.Description = Markup.Escape($"{p.Stage} done: {p.Step} steps");
                    task.Value = task.MaxValue;
                    task.StopTask();
                    break;
            }
        }
    }
}
