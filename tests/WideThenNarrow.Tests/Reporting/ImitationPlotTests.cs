using WideThenNarrow.Method;
using WideThenNarrow.Reporting;

namespace WideThenNarrow.Tests.Reporting;

/// <summary>imitation.png: every block's loss over its run, from the stage-2 summary.</summary>
public sealed class ImitationPlotTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("imitation-plot");

    public void Dispose() => TestData.DeleteFolder(_dir);

    static ExperimentResult With(List<BlockSummary>? blocks) =>
        new(
            "plot",
            "fashion-mnist",
            400,
            40,
            100,
            1,
            [],
            [
                new Dictionary<string, StageSummary>
                {
                    ["imitation"] = new()
                    {
                        Stage = "imitation",
                        Model = "thin",
                        Blocks = blocks,
                    },
                },
            ]
        );

    [Fact]
    public void Every_blocks_logged_losses_are_drawn_and_empty_or_diverged_ones_still_plot()
    {
        static List<double> Decay(double from, int n) =>
            [.. Enumerable.Range(0, n).Select(j => from * Math.Pow(0.8, j))];
        var blocks = Enumerable
            .Range(0, 4)
            .Select(k => new BlockSummary(
                k,
                k == 0 ? "stem" : $"layer1.{k - 1}",
                k,
                0.2 + k,
                (0.2 + k) * Math.Pow(0.8, 22),
                1,
                Decay(0.2 + k, 23)
            ))
            .ToList();
        string Draw(List<BlockSummary> b, string name)
        {
            var png = Path.Combine(_dir, name);
            Assert.True(ExperimentPlots.Imitation(With(b), png));
            return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(png)));
        }
        var full = Draw(blocks, "full.png");
        // Blocks that logged no window of steps (empty step_losses): their first and last losses are drawn.
        var endsOnly = Draw([.. blocks.Select(b => b with { StepLosses = [] })], "ends.png");
        Assert.NotEqual(full, endsOnly); // the steps between the ends are drawn
        // A diverged block (NaN, then zero and infinite windows) loses those points, not the plot.
        Draw(
            [
                .. blocks.Take(3),
                blocks[3] with
                {
                    StepLosses = [1.0, double.NaN, 0, double.PositiveInfinity],
                    LastLoss = double.NaN,
                },
            ],
            "nan.png"
        );
        // Beyond a dozen blocks (BERT-Large: 25) the slots are numbered.
        Draw(
            [.. Enumerable.Range(0, 25).Select(k => blocks[0] with { Block = k, Point = $"encoder.layer.{k}" })],
            "deep.png"
        );
        // No stage 2: no plot.
        Assert.False(ExperimentPlots.Imitation(With(null), Path.Combine(_dir, "none.png")));
        Assert.False(File.Exists(Path.Combine(_dir, "none.png")));
    }

    [Fact]
    public void A_stage_summary_whose_blocks_lack_step_losses_is_refused_naming_the_file_and_key()
    {
        var stage = Path.Combine(_dir, "imitation");
        Directory.CreateDirectory(stage);
        var path = Path.Combine(stage, StageSummary.FileName);
        File.WriteAllText(
            path,
            """{"stage":"imitation","model":"thin","blocks":[{"block":0,"point":"stem","wide_point":0,"first_loss":0.2,"last_loss":0.01,"seconds":1}]}"""
        );
        var e = Assert.Throws<WtnException>(() => StageSummary.TryLoad(stage));
        Assert.StartsWith($"{path} is corrupt (", e.Message);
        Assert.Contains("'step_losses'", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
