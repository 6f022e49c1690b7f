using WideThenNarrow.Reporting;

namespace WideThenNarrow.Tests.Reporting;

/// <summary>compute.png: test top-1 against training compute, one point per arm, its spread over seeds as error bars.</summary>
public sealed class ComputePlotTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("compute-plot");

    public void Dispose() => TestData.DeleteFolder(_dir);

    static MethodRow Row(string method, double[] top1, double? own, double? wide, double? perplexity = null) =>
        new(
            method,
            "thin",
            ["x"],
            new ModelCostRow("thin", "cifar-resnet20", 1000, 10_000, 1, 10),
            null,
            Stat.Of(top1.Select(v => (double?)v)),
            new Dictionary<string, Stat?> { ["x"] = new Stat(60, 0, 1) },
            [top1[0]],
            1
        )
        {
            TrainMacs = own is { } o ? new Stat(o, 0, top1.Length) : null,
            WideMacs = wide is { } w ? new Stat(w, 0, top1.Length) : null,
            Perplexity = perplexity is { } p ? new Stat(p, 0, 1) : null,
        };

    [Fact]
    public void Each_arm_is_a_point_at_its_own_compute_with_its_seed_spread_and_the_wide_stage_apart()
    {
        var rows = new List<MethodRow>
        {
            Row("thin: go wide, then narrow", [0.90, 0.91, 0.92], 6.5e12, 1.4e13),
            Row("thin: standard", [0.905, 0.905, 0.905], 3.5e12, null),
            Row("wide (teacher)", [0.92, 0.92, 0.93], 0, 1.4e13),
            Row("no compute recorded", [0.5, 0.5, 0.5], null, null),
            Row("a masked-LM row", [0.3, 0.3, 0.3], 1e12, null, perplexity: 80),
        };
        var r = new ExperimentResult("sweep", "fashion-mnist", 1000, 10, 10, 3, rows, []);

        var points = ExperimentPlots.ComputePoints(r);
        Assert.Equal(["thin: go wide, then narrow", "thin: standard", "wide (teacher)"], points.Select(p => p.Method));
        var method = points[0];
        Assert.Equal(6.5e12, method.Macs);
        Assert.Equal(6.5e12 + 1.4e13, method.WithWide);
        Assert.Equal(91.0, method.Top1, 9);
        Assert.Equal(1.0, method.Spread, 9); // sample sd of 90, 91, 92
        Assert.Null(points[1].WithWide); // standard starts from no wide network
        Assert.Equal(0, points[1].Spread, 9);
        Assert.Equal(1.4e13, points[2].Macs); // the teacher's point is its own training
        Assert.Null(points[2].WithWide);

        var png = Path.Combine(_dir, "compute.png");
        Assert.True(ExperimentPlots.Compute(r, png));
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, File.ReadAllBytes(png)[..4]);
        Assert.Contains($"]({ExperimentReport.ComputePlot})", ExperimentReport.Markdown(r, false, false, true));
        Assert.DoesNotContain($"]({ExperimentReport.ComputePlot})", ExperimentReport.Markdown(r, false));

        // Nothing to plot: no file, no link.
        var none = r with { Methods = [rows[3], rows[4]] };
        Assert.Empty(ExperimentPlots.ComputePoints(none));
        Assert.False(ExperimentPlots.Compute(none, Path.Combine(_dir, "none.png")));
        Assert.False(File.Exists(Path.Combine(_dir, "none.png")));
    }
}
