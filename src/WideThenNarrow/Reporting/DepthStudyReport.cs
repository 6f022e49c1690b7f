using System.Globalization;
using System.Text;
using System.Text.Json;
using WideThenNarrow.Method;
using WideThenNarrow.Models;

namespace WideThenNarrow.Reporting;

/// <summary>An arm's top-point discrepancy at one depth over seeds (mean, sample sd, the seeds' values in seed order).</summary>
public sealed record DepthPoint(int Depth, double Mean, double Sd, IReadOnlyList<double> Seeds);

/// <summary>
/// An arm's growth with depth: ln(discrepancy) = <see cref="Intercept"/> + <see cref="Slope"/> ln(depth), least squares over
/// every (seed, depth) value; slope 1 is linear growth. <see cref="SeedSlopes"/>: the same fit per seed. Null with fewer than two depths.
/// </summary>
public sealed record DepthGrowth(
    string Arm,
    IReadOnlyList<DepthPoint> Points,
    double? Slope,
    double? Intercept,
    IReadOnlyList<double> SeedSlopes
);

/// <summary>What the depth study's report.md, results.json and plot show.</summary>
public sealed record DepthStudyResult(
    string Experiment,
    string Dataset,
    int TrainExamples,
    int ValidationExamples,
    int Seeds,
    string Thin,
    string Wide,
    long StepsPerBlock,
    IReadOnlyList<int> Depths,
    IReadOnlyList<DepthGrowth> Growth,
    IReadOnlyList<DepthCell> Cells
);

public static class DepthStudyReport
{
    public const string PlotFile = "depth-discrepancy.png";

    public static DepthStudyResult Build(
        ExperimentConfig config,
        IExperimentDataset dataset,
        int seeds,
        IReadOnlyList<DepthCell> cells
    )
    {
        var study = config.DepthStudy!;
        var depths = study.Depths.Order().ToList();
        var arms = cells.SelectMany(c => c.Arms.Select(a => a.Arm)).Distinct().ToList();
        var growth = arms.Select(arm =>
            {
                double? Top(DepthCell c) => c.Arms.FirstOrDefault(a => a.Arm == arm)?.Discrepancy[^1];
                var points = depths
                    .Select(d =>
                    {
                        var v = cells
                            .Where(c => c.Depth == d)
                            .OrderBy(c => c.Seed)
                            .Select(Top)
                            .OfType<double>()
                            .ToList();
                        return new DepthPoint(
                            d,
                            v.Count > 0 ? Statistics.Mean(v) : double.NaN,
                            v.Count > 1 ? Statistics.SampleSd(v) : double.NaN,
                            v
                        );
                    })
                    .ToList();
                var all = cells
                    .Select(c => (c.Depth, Value: Top(c)))
                    .Where(p => p.Value is > 0)
                    .Select(p => (p.Depth, p.Value!.Value))
                    .ToList();
                var fit = LogLogFit(all);
                var perSeed = cells
                    .GroupBy(c => c.Seed)
                    .OrderBy(g => g.Key)
                    .Select(g =>
                        LogLogFit(
                            g.Select(c => (c.Depth, Value: Top(c)))
                                .Where(p => p.Value is > 0)
                                .Select(p => (p.Depth, p.Value!.Value))
                                .ToList()
                        )
                    )
                    .Where(f => f is not null)
                    .Select(f => f!.Value.Slope)
                    .ToList();
                return new DepthGrowth(arm, points, fit?.Slope, fit?.Intercept, perSeed);
            })
            .ToList();
        return new DepthStudyResult(
            config.Name,
            dataset.Name,
            dataset.TrainExamples,
            dataset.ValidationExamples,
            seeds,
            Describe(config.Models.Thin),
            Describe(config.Models.Wide),
            study.Imitation.Steps,
            depths,
            growth,
            cells
        );
    }

    static string Describe(ModelSpec m) =>
        $"{m.Name} width {m.Width}{(m.Residual ? ", residual" : "")}, widening {m.Widen}";

    /// <summary>Least squares of ln(value) on ln(depth); null unless two distinct depths have values.</summary>
    internal static (double Slope, double Intercept)? LogLogFit(IReadOnlyList<(int Depth, double Value)> points)
    {
        if (points.Select(p => p.Depth).Distinct().Count() < 2)
            return null;
        var x = points.Select(p => Math.Log(p.Depth)).ToList();
        var y = points.Select(p => Math.Log(p.Value)).ToList();
        double mx = x.Average(),
            my = y.Average();
        double slope = x.Zip(y, (a, b) => (a - mx) * (b - my)).Sum() / x.Sum(a => (a - mx) * (a - mx));
        return (slope, my - slope * mx);
    }

    /// <summary>results.json, report.md and the plot, in the experiment folder.</summary>
    public static void Write(DepthStudyResult r, string dir)
    {
        Directory.CreateDirectory(dir);
        var json = new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        WriteFailure.Replace(Path.Combine(dir, "results.json"), tmp =>
            File.WriteAllText(tmp, JsonSerializer.Serialize(r, json))
        );
        WriteFailure.Replace(Path.Combine(dir, PlotFile), tmp => ExperimentPlots.DepthDiscrepancy(r, tmp));
        WriteFailure.Replace(Path.Combine(dir, "report.md"), tmp => File.WriteAllText(tmp, Markdown(r)));
    }

    static string G(double v) => double.IsNaN(v) ? "n/a" : v.ToString("G3", CultureInfo.InvariantCulture);

    static string Cell(DepthPoint p) =>
        p.Seeds.Count == 0 ? ""
        : p.Seeds.Count == 1 ? G(p.Mean)
        : $"{G(p.Mean)} ± {G(p.Sd)}";

    static string Markdown(DepthStudyResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# {r.Experiment}: thin-wide discrepancy against depth");
        sb.AppendLine();
        sb.AppendLine(
            $"{r.Dataset}, {r.TrainExamples} training and {r.ValidationExamples} validation examples; {r.Seeds} seed(s). "
                + $"Thin: {r.Thin}. Wide: {r.Wide}. Imitation: {r.StepsPerBlock} steps per block; end to end: depth x {r.StepsPerBlock} steps, the same total."
        );
        sb.AppendLine();
        sb.AppendLine(
            "Relative discrepancy at the top point, sum ||h_thin - h_wide||^2 / sum ||h_wide||^2 over the validation split, "
                + "each network run on its own (mean ± sample sd over seeds):"
        );
        sb.AppendLine();
        sb.AppendLine("| depth | " + string.Join(" | ", r.Growth.Select(g => g.Arm)) + " |");
        sb.AppendLine("|---|" + string.Concat(r.Growth.Select(_ => "---|")));
        foreach (var d in r.Depths)
            sb.AppendLine(
                $"| {d} | " + string.Join(" | ", r.Growth.Select(g => Cell(g.Points.First(p => p.Depth == d)))) + " |"
            );
        sb.AppendLine(
            "| growth: slope of ln discrepancy on ln depth (per seed) | "
                + string.Join(
                    " | ",
                    r.Growth.Select(g =>
                        g.Slope is { } s
                            ? $"{s:F2} ({string.Join(", ", g.SeedSlopes.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))})"
                            : "n/a"
                    )
                )
                + " |"
        );
        sb.AppendLine();
        sb.AppendLine($"![discrepancy against depth]({PlotFile})");
        sb.AppendLine();
        sb.AppendLine(
            "Validation top-1 (%) of each thin network with the wide network's head copied, and of the wide network (mean over seeds):"
        );
        sb.AppendLine();
        sb.AppendLine("| depth | wide | " + string.Join(" | ", r.Growth.Select(g => g.Arm)) + " |");
        sb.AppendLine("|---|---|" + string.Concat(r.Growth.Select(_ => "---|")));
        foreach (var d in r.Depths)
        {
            var cells = r.Cells.Where(c => c.Depth == d).ToList();
            string Pct(IEnumerable<double?> v) =>
                v.OfType<double>().ToList() is { Count: > 0 } l
                    ? (100 * l.Average()).ToString("F2", CultureInfo.InvariantCulture)
                    : "";
            sb.AppendLine(
                $"| {d} | {Pct(cells.Select(c => c.WideValTop1))} | "
                    + string.Join(
                        " | ",
                        r.Growth.Select(g =>
                            Pct(cells.Select(c => c.Arms.FirstOrDefault(a => a.Arm == g.Arm)?.ValTop1))
                        )
                    )
                    + " |"
            );
        }
        if (r.Cells.Count > 0 && r.Cells.Max(c => c.Depth) is var deepest)
        {
            var cells = r.Cells.Where(c => c.Depth == deepest).ToList();
            sb.AppendLine();
            sb.AppendLine(
                $"Discrepancy at every point of the deepest networks (depth {deepest}, mean over seeds), bottom to top:"
            );
            sb.AppendLine();
            sb.AppendLine("| point | " + string.Join(" | ", r.Growth.Select(g => g.Arm)) + " |");
            sb.AppendLine("|---|" + string.Concat(r.Growth.Select(_ => "---|")));
            for (int i = 0; i < deepest; i++)
                sb.AppendLine(
                    $"| {i} | "
                        + string.Join(
                            " | ",
                            r.Growth.Select(g =>
                                cells
                                    .Select(c => c.Arms.FirstOrDefault(a => a.Arm == g.Arm)?.Discrepancy[i])
                                    .OfType<double>()
                                    .ToList()
                                    is { Count: > 0 } v
                                    ? G(v.Average())
                                    : ""
                            )
                        )
                        + " |"
                );
        }
        sb.AppendLine();
        sb.AppendLine(
            $"Wall time: wide networks {Seconds(r.Cells.Sum(c => c.WideSeconds))}, "
                + string.Join(
                    ", ",
                    r.Growth.Select(g =>
                        $"{g.Arm} {Seconds(r.Cells.SelectMany(c => c.Arms).Where(a => a.Arm == g.Arm).Sum(a => a.Seconds))}"
                    )
                )
                + "."
        );
        return sb.ToString();
    }

    static string Seconds(double s) =>
        s >= 3600 ? $"{s / 3600:F1} h"
        : s >= 60 ? $"{s / 60:F1} min"
        : $"{s:F0} s";
}
