using ScottPlot;

namespace WideThenNarrow.Reporting;

/// <summary>PNG plots of an experiment (ScottPlot, headless).</summary>
public static class ExperimentPlots
{
    /// <summary>
    /// Test top-1 per epoch of every method's last stage (mean over seeds), and, while the run is not done, of every
    /// stage training now or stopped part-way, dashed ("wide, running"), so an interim report shows where they are.
    /// </summary>
    public static void Accuracy(ExperimentResult r, string path)
    {
        var plt = new Plot();
        int lines = 0;
        void Line(IReadOnlyList<double?> curve, string legend, bool running)
        {
            var pts = curve.Select((v, e) => (e, v)).Where(p => p.v.HasValue).ToList();
            if (pts.Count == 0) return;
            var s = plt.Add.Scatter(pts.Select(p => (double)p.e + 1).ToArray(), pts.Select(p => 100 * p.v!.Value).ToArray());
            s.LegendText = legend;
            if (running) s.LinePattern = LinePattern.Dashed;
            lines++;
        }
        foreach (var m in r.Methods) Line(m.MeanCurve, m.Method, running: false);
        bool seeds = r.Status.Select(x => x.Seed).Distinct().Count() > 1;
        foreach (var x in r.Status.Where(x => x.State == StageState.Started && x.Curve is not null))
            Line(x.Curve!, $"{x.Stage}{(seeds ? $" (seed {x.Seed})" : "")}, {(x.Holder is null ? "stopped" : "running")}", running: true);
        if (lines == 0)
        {
            plt.Add.Text("no test accuracy recorded yet", 1, 50);
            plt.Axes.SetLimits(0, 10, 0, 100);
        }
        plt.Title($"{r.Experiment}: test accuracy per epoch (last stage of each method)");
        plt.XLabel("epoch of the method's last stage" + (r.Status.Any(x => x.State == StageState.Started) ? " (dashed: stages not finished)" : ""));
        plt.YLabel("test top-1 (%)");
        plt.ShowLegend(Alignment.LowerRight);
        plt.SavePng(path, 900, 560);
    }

    /// <summary>Imitation loss of every block at the start and end of its run (first seed); false when no stage 2 ran.</summary>
    public static bool Imitation(ExperimentResult r, string path)
    {
        var blocks = r.PerSeed.Select(s => s.GetValueOrDefault("imitation")?.Blocks).FirstOrDefault(b => b is { Count: > 0 });
        if (blocks is null) return false;
        var plt = new Plot();
        var xs = blocks.Select(b => (double)b.Block).ToArray();
        var first = plt.Add.Scatter(xs, blocks.Select(b => b.FirstLoss).ToArray());
        first.LegendText = "start of the block's run";
        var last = plt.Add.Scatter(xs, blocks.Select(b => b.LastLoss).ToArray());
        last.LegendText = "end of the block's run";
        plt.Title($"{r.Experiment}: layerwise imitation loss per block");
        plt.XLabel("block (0 = stem)");
        plt.YLabel("imitation loss (MSE)");
        plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(path, 900, 560);
        return true;
    }
}
