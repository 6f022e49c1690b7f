using System.Globalization;
using ScottPlot;

namespace WideThenNarrow.Reporting;

/// <summary>PNG plots of an experiment (ScottPlot, headless).</summary>
public static class ExperimentPlots
{
    /// <summary>
    /// Validation top-1 per epoch of every method's last stage (mean over seeds), and, while the run is not done, of every
    /// stage training now or stopped part-way, dashed ("wide, running"), so an interim report shows where they are.
    /// </summary>
    public static void Accuracy(ExperimentResult r, string path)
    {
        var plt = new Plot();
        int lines = 0;
        void Line(IReadOnlyList<double?> curve, string legend, bool running)
        {
            var pts = curve.Select((v, e) => (e, v)).Where(p => p.v.HasValue).ToList();
            if (pts.Count == 0)
                return;
            var s = plt.Add.Scatter(
                pts.Select(p => (double)p.e + 1).ToArray(),
                pts.Select(p => 100 * p.v!.Value).ToArray()
            );
            s.LegendText = legend;
            if (running)
                s.LinePattern = LinePattern.Dashed;
            lines++;
        }
        foreach (var m in r.Methods)
            Line(m.MeanCurve, m.Method, running: false);
        bool seeds = r.Status.Select(x => x.Seed).Distinct().Count() > 1;
        foreach (var x in r.Status.Where(x => x.State == StageState.Started && x.Curve is not null))
            Line(
                x.Curve!,
                $"{x.Stage}{(seeds ? $" (seed {x.Seed})" : "")}, {(x.Holder is null ? "stopped" : "running")}",
                running: true
            );
        if (lines == 0)
        {
            plt.Add.Text("no test accuracy recorded yet", 1, 50);
            plt.Axes.SetLimits(0, 10, 0, 100);
        }
        plt.Title($"{r.Experiment}: test accuracy per epoch (last stage of each method)");
        plt.XLabel(
            "epoch of the method's last stage"
                + (r.Status.Any(x => x.State == StageState.Started) ? " (dashed: stages not finished)" : "")
        );
        plt.YLabel("validation top-1 (%)");
        plt.ShowLegend(Alignment.LowerRight);
        plt.SavePng(path, 900, 560);
    }

    /// <summary>
    /// One arm of <see cref="Compute"/>: its own training compute (the wide row's is its own training), that plus the
    /// wide stage for a row that starts from the wide network (else null), and its test top-1 in %: the mean over seeds
    /// and the sample standard deviation (0 with one seed).
    /// </summary>
    public sealed record ComputePoint(string Method, double Macs, double? WithWide, double Top1, double Spread);

    /// <summary>The points of <see cref="Compute"/>: every finished row scored on a test split (masked-LM rows apart) with a recorded compute.</summary>
    public static IReadOnlyList<ComputePoint> ComputePoints(ExperimentResult r) =>
        PointsOf(r, maskedLm: false).Select(p => p.Point).ToList();

    /// <summary>The rows of one kind (masked-LM: those with a perplexity) with a test top-1 and a recorded compute, as points.</summary>
    static List<(MethodRow Row, ComputePoint Point)> PointsOf(ExperimentResult r, bool maskedLm) =>
        r
            .Methods.Where(m => (m.Perplexity is not null) == maskedLm && m.TestTop1 is not null)
            .Select(m => (Row: m, Own: m.TrainMacs?.Mean is > 0 and var own ? own : m.WideMacs?.Mean))
            .Where(p => p.Own is > 0)
            .Select(p =>
                (
                    p.Row,
                    new ComputePoint(
                        p.Row.Method,
                        p.Own!.Value,
                        p.Row.TrainMacs?.Mean is > 0 && p.Row.WideMacs?.Mean is > 0 and var wide
                            ? p.Own.Value + wide
                            : null,
                        100 * p.Row.TestTop1!.Mean,
                        p.Row.TestTop1.N > 1 ? 100 * p.Row.TestTop1.Spread : 0
                    )
                )
            )
            .ToList();

    /// <summary>
    /// Test top-1 against training compute, one point per arm with error bars of one sample standard deviation over
    /// seeds, log-scaled compute; a row that starts from the wide network also gets a hollow point with the wide stage
    /// added, joined by a dashed line (issue 24: whether the method pays off at equal compute). False when no row has
    /// both a test top-1 and a compute.
    /// </summary>
    public static bool Compute(ExperimentResult r, string path) =>
        DrawCompute(
            PointsOf(r, maskedLm: false),
            p =>
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"{p.Point.Method} ({p.Point.Top1:F2} ± {p.Point.Spread:F2} %)"
                ),
            errorBars: true,
            $"{r.Experiment}: test top-1 against training compute",
            "test top-1 (%), mean ± sd over seeds",
            path
        );

    /// <summary>
    /// Masked-LM experiments: every pretrained network's held-out masked-token top-1 against its training compute (mean
    /// over seeds), log-scaled compute. A row's own stages give its point (the wide network's is its own pretraining);
    /// a row that starts from the wide network gets a second, hollow point with the wide stage added, joined by a dashed
    /// line. False when no masked-LM row has finished.
    /// </summary>
    public static bool MaskedLmCompute(ExperimentResult r, string path) =>
        DrawCompute(
            PointsOf(r, maskedLm: true),
            p =>
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"{p.Point.Method} ({p.Point.Top1:F1} %, perplexity {p.Row.Perplexity!.Mean:F0})"
                ),
            errorBars: false,
            $"{r.Experiment}: held-out masked-token top-1 against training compute",
            "held-out masked-token top-1 (%)",
            path
        );

    /// <summary>
    /// The compute plots' drawing: each point at log10 of its compute, with its legend, its error bar when asked and
    /// it has a spread, and a dashed line to a hollow point at the compute with the wide stage; false (nothing written)
    /// when there is no point.
    /// </summary>
    static bool DrawCompute(
        List<(MethodRow Row, ComputePoint Point)> points,
        Func<(MethodRow Row, ComputePoint Point), string> legend,
        bool errorBars,
        string title,
        string yLabel,
        string path
    )
    {
        if (points.Count == 0)
            return false;
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < points.Count; i++)
        {
            var p = points[i].Point;
            var color = palette.GetColor(i % palette.Colors.Length);
            double x = Math.Log10(p.Macs);
            var mark = plt.Add.Scatter(new[] { x }, new[] { p.Top1 }, color);
            mark.MarkerSize = 9;
            mark.LegendText = legend(points[i]);
            if (errorBars && p.Spread > 0)
            {
                var bar = plt.Add.ErrorBar(new[] { x }, new[] { p.Top1 }, new[] { p.Spread });
                bar.Color = color;
            }
            if (p.WithWide is { } with)
            {
                var line = plt.Add.Scatter(new[] { x, Math.Log10(with) }, new[] { p.Top1, p.Top1 }, color);
                line.LinePattern = LinePattern.Dashed;
                line.MarkerShape = MarkerShape.OpenCircle;
                line.MarkerSize = 9;
            }
        }
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = x => ExperimentReport.Macs((long)Math.Min(Math.Pow(10, x), long.MaxValue)),
        };
        plt.Title(title);
        plt.XLabel("training compute (multiply-accumulates, log scale; hollow: with the wide stage)");
        plt.YLabel(yLabel);
        plt.ShowLegend(Alignment.LowerRight);
        plt.SavePng(path, 900, 560);
        return true;
    }

    /// <summary>
    /// Imitation loss of every block over its run (first seed), on a log scale: each block's logged windows of steps
    /// left to right in its own slot of the x-axis, labelled with its imitation point, its last window marked; false
    /// when no stage 2 ran.
    /// </summary>
    public static bool Imitation(ExperimentResult r, string path)
    {
        var blocks = r
            .PerSeed.Select(s => s.GetValueOrDefault("imitation")?.Blocks)
            .FirstOrDefault(b => b is { Count: > 0 });
        if (blocks is null)
            return false;
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var (curve, end) = (palette.GetColor(0), palette.GetColor(1));
        var endX = new List<double>();
        var endY = new List<double>();
        for (int i = 0; i < blocks.Count; i++)
        {
            var b = blocks[i];
            // A block that logged no window of steps (logging.every_steps 0, or a shorter run) has its epoch loss as both ends.
            var raw = b.StepLosses.Count > 0 ? b.StepLosses : [b.FirstLoss, b.LastLoss];
            var losses = raw.Select((v, j) => (j, v)).Where(p => p.v > 0 && double.IsFinite(p.v)).ToList();
            if (i > 0)
                plt.Add.VerticalLine(i, 1, Colors.LightGray);
            if (losses.Count == 0)
                continue;
            int n = Math.Max(1, losses[^1].j);
            var xs = losses.Select(p => i + 0.05 + 0.9 * p.j / n).ToArray();
            var line = plt.Add.Scatter(xs, losses.Select(p => Math.Log10(p.v)).ToArray(), curve);
            line.MarkerSize = 3;
            if (i == 0)
                line.LegendText = "loss over the block's run (logged windows of steps)";
            if (losses[^1].j == raw.Count - 1)
            {
                endX.Add(xs[^1]);
                endY.Add(Math.Log10(losses[^1].v));
            }
            else
                plt.Add.Text("not finite at the end", xs[^1], Math.Log10(losses[^1].v)); // diverged: no end to mark
        }
        var ends = plt.Add.Scatter(endX.ToArray(), endY.ToArray(), end);
        ends.LineWidth = 0;
        ends.MarkerSize = 8;
        ends.LegendText = "end of the block's run";
        // Point names while they fit under their slots; block numbers beyond a dozen blocks (BERT-Large has 25).
        bool named = blocks.Count <= 12;
        plt.Axes.Bottom.SetTicks(
            blocks.Select((_, i) => i + 0.5).ToArray(),
            blocks.Select(b => named ? b.Point : b.Block.ToString(CultureInfo.InvariantCulture)).ToArray()
        );
        plt.Axes.SetLimitsX(0, blocks.Count);
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => Math.Pow(10, y).ToString("G3", CultureInfo.InvariantCulture),
        };
        plt.Title($"{r.Experiment}: layerwise imitation loss per block");
        plt.XLabel(named ? "imitation point, bottom to top" : "block (0 = stem or embeddings), bottom to top");
        plt.YLabel("imitation loss (log scale)");
        // Upper blocks imitate worse (their errors compound), so the lower right corner is the emptiest.
        plt.ShowLegend(Alignment.LowerRight);
        plt.SavePng(path, 900, 560);
        return true;
    }

    /// <summary>
    /// The depth study: top-point discrepancy against depth for every arm on log-log axes, the mean over seeds with
    /// sample-sd error bars (on the log scale, mean ± sd clipped above zero) and every seed's value as a small mark.
    /// </summary>
    public static void DepthDiscrepancy(DepthStudyResult r, string path)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int a = 0; a < r.Growth.Count; a++)
        {
            var g = r.Growth[a];
            var color = palette.GetColor(a);
            var pts = g.Points.Where(p => p.Mean > 0).ToList();
            if (pts.Count == 0)
                continue;
            var xs = pts.Select(p => Math.Log10(p.Depth)).ToArray();
            var line = plt.Add.Scatter(xs, pts.Select(p => Math.Log10(p.Mean)).ToArray(), color);
            line.LegendText = g.Slope is { } s
                ? $"{g.Arm} (slope {s.ToString("F2", CultureInfo.InvariantCulture)})"
                : g.Arm;
            if (g.Arm == Method.DepthStudy.Untrained)
                line.LinePattern = LinePattern.Dashed;
            foreach (var p in pts.Where(p => p.Seeds.Count > 1))
            {
                double lo = Math.Log10(Math.Max(p.Mean - p.Sd, p.Mean * 1e-3)),
                    hi = Math.Log10(p.Mean + p.Sd);
                plt.Add.Line(Math.Log10(p.Depth), lo, Math.Log10(p.Depth), hi).Color = color;
            }
            var seedXs = pts.SelectMany(p => p.Seeds.Where(v => v > 0).Select(_ => Math.Log10(p.Depth))).ToArray();
            var seeds = plt.Add.Scatter(
                seedXs,
                pts.SelectMany(p => p.Seeds.Where(v => v > 0).Select(Math.Log10)).ToArray(),
                color
            );
            seeds.LineWidth = 0;
            seeds.MarkerSize = 4;
        }
        var logTicks = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => Math.Pow(10, y).ToString("G3", CultureInfo.InvariantCulture),
        };
        plt.Axes.Left.TickGenerator = logTicks;
        plt.Axes.Bottom.SetTicks(
            r.Depths.Select(d => Math.Log10(d)).ToArray(),
            r.Depths.Select(d => d.ToString(CultureInfo.InvariantCulture)).ToArray()
        );
        plt.Title($"{r.Experiment}: thin-wide discrepancy at the top point");
        plt.XLabel("depth (blocks, log scale)");
        plt.YLabel("||h_thin - h_wide||² / ||h_wide||² (validation, log scale)");
        plt.ShowLegend(Alignment.UpperLeft);
        plt.SavePng(path, 900, 560);
    }
}
