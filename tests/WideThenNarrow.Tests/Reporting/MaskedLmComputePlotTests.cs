using WideThenNarrow.Reporting;

namespace WideThenNarrow.Tests.Reporting;

/// <summary>mlm-compute.png and the report's masked-LM table: held-out masked-token top-1 and perplexity against training compute.</summary>
public sealed class MaskedLmComputePlotTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("mlm-plot");

    public void Dispose() => TestData.DeleteFolder(_dir);

    static MethodRow Row(string method, string[] stages, double top1, double? perplexity, double? own, double? wide) =>
        new(
            method,
            "thin",
            stages,
            new ModelCostRow("thin", "bert", 1000, 10_000, 1, 10),
            null,
            new Stat(top1, 0, 1),
            stages.ToDictionary(s => s, _ => (Stat?)new Stat(60, 0, 1)),
            [top1],
            1
        )
        {
            TrainMacs = own is { } o ? new Stat(o, 0, 1) : null,
            WideMacs = wide is { } w ? new Stat(w, 0, 1) : null,
            Perplexity = perplexity is { } p ? new Stat(p, 0, 1) : null,
        };

    [Fact]
    public void Every_pretrained_row_is_a_point_and_the_report_lists_top1_perplexity_and_compute()
    {
        var rows = new List<MethodRow>
        {
            Row("wide (teacher)", ["wide"], 0.35, 40, 0, 4e15),
            Row("thin: go wide, then narrow", ["wide", "imitation", "finetune"], 0.28, 70, 5e14, 4e15),
            Row("thin: standard, compute-matched", ["standard_matched"], 0.25, 90, 5e14, null),
            Row("deeper: standard", ["deeper"], 0.27, 75, 1e15, null),
            // A fine-tuned classifier has no perplexity: not a masked-LM point.
            Row(
                "thin: go wide, then narrow, fine-tuned on IMDB",
                ["wide", "imitation", "finetune", "downstream_finetune"],
                0.85,
                null,
                6e14,
                4e15
            ),
        };
        var r = new ExperimentResult("bert", "masked-LM text", 1000, 10, 10, 1, rows, []);
        var png = Path.Combine(_dir, "mlm.png");
        Assert.True(ExperimentPlots.MaskedLmCompute(r, png));
        Assert.True(new FileInfo(png).Length > 1000);
        var md = ExperimentReport.Markdown(r, imitationPlot: false, computePlot: true);
        Assert.Contains("| thin: go wide, then narrow | 28.00% | 70.0 | 500.00 TMAC | 4.00 PMAC |", md);
        Assert.Contains("| wide (teacher) | 35.00% | 40.0 |", md);
        Assert.DoesNotContain(
            "| thin: go wide, then narrow, fine-tuned on IMDB | 85.00% | ",
            md.Split("## Masked-LM pretraining")[1]
        );
        Assert.Contains($"]({ExperimentReport.MaskedLmComputePlot})", md);

        // Image experiments have no perplexity: no plot, no table.
        var images = new ExperimentResult(
            "img",
            "fashion-mnist",
            1000,
            10,
            10,
            1,
            [rows[3] with { Perplexity = null }],
            []
        );
        Assert.False(ExperimentPlots.MaskedLmCompute(images, Path.Combine(_dir, "none.png")));
        Assert.False(File.Exists(Path.Combine(_dir, "none.png")));
        Assert.DoesNotContain("## Masked-LM pretraining", ExperimentReport.Markdown(images, imitationPlot: false));
    }
}
