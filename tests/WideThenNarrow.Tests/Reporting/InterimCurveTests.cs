using WideThenNarrow.Reporting;
using WideThenNarrow.Tests.Method;
using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Reporting;

/// <summary>The interim report's accuracy plot: stages not finished show their test top-1 so far.</summary>
public sealed class InterimCurveTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("interim-curve");

    public void Dispose() => TestData.DeleteFolder(_dir);

    [Fact]
    public void A_started_stage_gives_its_test_top1_per_epoch_so_far_and_the_plot_draws_it()
    {
        var c = ExperimentRunnerTests.Tiny("curve", baselines: true);
        var exp = Path.Combine(_dir, c.Name);
        // The wide stage is in its train run's fourth epoch: evaluated after epochs 1 and 3 (not 2), with step rows between.
        var run = Directory.CreateDirectory(Path.Combine(exp, "seed-0", "wide", "train")).FullName;
        using (var log = new MetricsLog(run, tensorboard: false, keepUpToStep: null))
        {
            static EpochMetrics Row(string kind, int epoch, long step, double? top1) =>
                new(kind, "wide", epoch, step, 0.1, 1.0, null, null, top1, 100, 1, null);
            log.Write(Row("step", 0, 5, null));
            log.Write(Row("epoch", 0, 10, 0.5));
            log.Write(Row("epoch", 1, 20, null));
            log.Write(Row("step", 2, 25, null));
            log.Write(Row("epoch", 2, 30, 0.7));
            log.Write(Row("step", 3, 35, null));
        }
        Directory.CreateDirectory(Path.Combine(exp, "seed-0", "deeper")); // started, no run yet
        var status = ExperimentStatus.Read(c, exp, 1).ToDictionary(s => s.Stage);
        Assert.Equal([0.5, null, 0.7], status["wide"].Curve!);
        Assert.Equal(StageState.Started, status["deeper"].State);
        Assert.Null(status["deeper"].Curve);
        Assert.Null(status["standard"].Curve); // pending

        var result = new ExperimentResult(c.Name, "fashion-mnist", 400, 40, 100, 1, [], [])
        {
            Status = [.. status.Values],
        };
        var png = Path.Combine(_dir, "accuracy.png");
        ExperimentPlots.Accuracy(result, png);
        var drawn = new FileInfo(png).Length;
        // No method has finished: the Progress section shows the plot.
        Assert.Contains(
            "![test accuracy per epoch so far](accuracy.png)",
            ExperimentReport.Markdown(result, imitationPlot: false)
        );
        // Nothing to draw at all: the plot says so rather than showing empty axes.
        ExperimentPlots.Accuracy(result with { Status = [] }, png);
        var empty = new FileInfo(png).Length;
        Assert.True(drawn > 0 && empty > 0 && drawn != empty, $"{drawn} {empty}");
    }
}
