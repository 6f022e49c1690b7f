using ScottPlot;

namespace WideThenNarrow.Reporting;

/// <summary>PNG plots of an experiment (ScottPlot, headless).</summary>
public static class ExperimentPlots
{
    /// <summary>Test top-1 per epoch of every method's last stage (mean over seeds).</summary>
    public static void Accuracy(ExperimentResult r, string path)
    {
        var plt = new Plot();
        foreach (var m in r.Methods)
        {
            var pts = m.MeanCurve.Select((v, e) => (e, v)).Where(p => p.v.HasValue).ToList();
            if (pts.Count == 0) continue;
            var s = plt.Add.Scatter(pts.Select(p => (double)p.e + 1).ToArray(), pts.Select(p => 100 * p.v!.Value).ToArray());
            s.LegendText = m.Method;
        }
        plt.Title($"{r.Experiment}: test accuracy per epoch (last stage of each method)");
        plt.XLabel("epoch of the method's last stage");
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
