using WideThenNarrow.Method;
using WideThenNarrow.Reporting;

namespace WideThenNarrow.Tests.Method;

/// <summary>The report's answer: the method's final top-1 against every other row, paired seed by seed.</summary>
public class ComparisonTests
{
    static MethodRow Row(string method, string model, params string[] stages) =>
        new(
            method,
            model,
            stages,
            new ModelCostRow(model, model, 1, 1, 1, 1),
            null,
            null,
            new Dictionary<string, Stat?>(),
            [],
            1
        );

    static StageSummary Done(string stage, double top1) =>
        new()
        {
            Stage = stage,
            Model = "thin",
            TestTop1 = top1,
        };

    [Fact]
    public void Differences_are_paired_by_seed_over_the_seeds_both_finished_and_kept_within_their_kind()
    {
        var rows = new[]
        {
            Row("thin: go wide, then narrow", "thin", "wide", "imitation", "finetune"),
            Row("thin: standard", "thin", "standard"),
            Row("deeper: standard", "deeper", "deeper"),
            Row(
                "thin: go wide, then narrow, fine-tuned on imdb",
                "thin",
                "wide",
                "imitation",
                "finetune",
                "downstream_finetune"
            ),
            Row("thin: standard, fine-tuned on imdb", "thin", "standard", "downstream_standard"),
        };
        var perSeed = new IReadOnlyDictionary<string, StageSummary>[]
        {
            new Dictionary<string, StageSummary>
            {
                ["finetune"] = Done("finetune", 0.90),
                ["standard"] = Done("standard", 0.88),
                ["deeper"] = Done("deeper", 0.91),
                ["downstream_finetune"] = Done("downstream_finetune", 0.80),
                ["downstream_standard"] = Done("downstream_standard", 0.70),
            },
            new Dictionary<string, StageSummary>
            {
                ["finetune"] = Done("finetune", 0.86),
                ["standard"] = Done("standard", 0.87),
                ["deeper"] = Done("deeper", 0.92),
            },
            // Seed 2 has not finished the method: it does not count, even where the baseline is done.
            new Dictionary<string, StageSummary>
            {
                ["standard"] = Done("standard", 0.10),
                ["deeper"] = Done("deeper", 0.10),
            },
        };
        var c = ExperimentResult.Compare(rows, perSeed);

        Assert.Equal(
            ["thin: standard", "deeper: standard", "thin: standard, fine-tuned on imdb"],
            c.Select(x => x.Against)
        );
        Assert.Equal(
            [
                "thin: go wide, then narrow",
                "thin: go wide, then narrow",
                "thin: go wide, then narrow, fine-tuned on imdb",
            ],
            c.Select(x => x.Method)
        );
        var standard = c[0];
        // Paired: +0.02 and -0.01, mean +0.005, sample sd of the two differences.
        Assert.Equal(0.005, standard.Difference.Mean, 12);
        Assert.Equal(Math.Sqrt((0.015 * 0.015 + 0.015 * 0.015) / 1), standard.Difference.Spread, 12);
        Assert.Equal(2, standard.Difference.N);
        Assert.Equal(1, standard.SeedsBetter);
        Assert.Equal(-0.035, c[1].Difference.Mean, 12);
        Assert.Equal(0, c[1].SeedsBetter);
        Assert.Equal(0.10, c[2].Difference.Mean, 12);
        Assert.Equal(1, c[2].Difference.N);
    }

    static FineTuneRun Ft(int k, double lr, double val, double? test, bool[]? correct = null) =>
        new()
        {
            FineTuneSeed = k,
            Seed = k,
            Lr = lr,
            ValBestTop1 = val,
            ValTop1 = val,
            TestTop1 = test,
            TestCorrect = correct is null ? null : StageSummary.PackBits(correct),
        };

    /// <summary>A downstream stage in units: its runs, the chosen lr, and its own numbers from fine-tuning seed 0 at that lr.</summary>
    static StageSummary Units(string stage, double chosen, params FineTuneRun[] runs)
    {
        var first = runs.Single(r => r.FineTuneSeed == 0 && r.Lr == chosen);
        return new()
        {
            Stage = stage,
            Model = "thin",
            TestTop1 = first.TestTop1,
            TestCorrect = first.TestCorrect,
            FineTunes = [.. runs],
            ChosenLr = chosen,
        };
    }

    [Fact]
    public void Fine_tunings_pair_by_experiment_seed_and_fine_tuning_seed_and_losing_lrs_never_count()
    {
        var rows = new[]
        {
            Row("thin: go wide, then narrow, fine-tuned on IMDB", "thin", "finetune", "downstream_finetune"),
            Row("thin: standard, fine-tuned on IMDB", "thin", "standard", "downstream_standard"),
        };
        bool[] A = [true, true, false, false],
            B = [true, false, true, false],
            C = [false, false, false, true];
        var perSeed = new IReadOnlyDictionary<string, StageSummary>[]
        {
            new Dictionary<string, StageSummary>
            {
                // The losing lr (1e-4) has a higher test top-1 nobody may see: it must not enter any number.
                ["downstream_finetune"] = Units(
                    "downstream_finetune",
                    2e-4,
                    Ft(0, 1e-4, 0.70, 0.99),
                    Ft(0, 2e-4, 0.80, 0.75, A),
                    Ft(1, 2e-4, 0.80, 0.50, B)
                ),
                ["downstream_standard"] = Units(
                    "downstream_standard",
                    1e-4,
                    Ft(0, 1e-4, 0.72, 0.50, B),
                    Ft(0, 2e-4, 0.71, null),
                    Ft(1, 1e-4, 0.72, 0.25, C)
                ),
            },
            new Dictionary<string, StageSummary>
            {
                ["downstream_finetune"] = Units(
                    "downstream_finetune",
                    1e-4,
                    Ft(0, 1e-4, 0.80, 0.75, A),
                    Ft(0, 2e-4, 0.80, null),
                    Ft(1, 1e-4, 0.80, 0.50, B)
                ),
                // Fine-tuning seed 1 not finished yet: its pair is left out.
                ["downstream_standard"] = Units(
                    "downstream_standard",
                    1e-4,
                    Ft(0, 1e-4, 0.70, 0.25, C),
                    Ft(0, 2e-4, 0.69, null)
                ),
            },
        };
        var c = Assert.Single(ExperimentResult.Compare(rows, perSeed));
        Assert.Equal("fine-tuning seed", c.PairedBy);
        // Pairs (seed 0, ft 0): 0.75 - 0.50, (0, 1): 0.50 - 0.25, (1, 0): 0.75 - 0.25.
        Assert.Equal(3, c.Difference.N);
        Assert.Equal((0.25 + 0.25 + 0.50) / 3, c.Difference.Mean, 12);
        Assert.Equal(Statistics.PairedT([0.75, 0.50, 0.75], [0.50, 0.25, 0.25]), c.TTest);
        // McNemar over the pairs: A vs B (b 1, c 1), B vs C (b 2, c 1), A vs C (b 2, c 1).
        Assert.Equal((5L, 3L), (c.McNemar!.B, c.McNemar.C));
        // And each pair on its own, in the pairs' order: (0, 0), (0, 1), (1, 0).
        Assert.Equal([(1L, 1L), (2L, 1L), (2L, 1L)], c.McNemarEach!.Select(t => (t.B, t.C)).ToArray());
        Assert.Equal((0, 0), (c.McNemarPairsAhead, c.McNemarPairsBehind)); // 3 discordant pairs cannot reach p < 0.05
    }

    [Fact]
    public void McNemar_per_pair_counts_the_pairs_won_and_lost_at_5_percent()
    {
        var c = new Comparison("m", "o", Stat.Of([0.01, -0.01, 0.0])!, 1)
        {
            McNemarEach = [Statistics.McNemar(30, 5), Statistics.McNemar(5, 30), Statistics.McNemar(3, 2)],
        };
        Assert.True(c.McNemarEach[0].P < 0.05 && c.McNemarEach[1].P < 0.05 && c.McNemarEach[2].P > 0.05);
        Assert.Equal((1, 1), (c.McNemarPairsAhead, c.McNemarPairsBehind));
        Assert.Null(new Comparison("m", "o", Stat.Of([0.01])!, 1).McNemarPairsAhead);
    }

    [Fact]
    public void The_report_gives_each_lrs_validation_top_1_the_choice_per_seed_and_the_test_top_1_over_the_fine_tuning_seeds()
    {
        var cost = new ModelCostRow("thin", "bert", 1000, 2000, 1, 2);
        var row = new MethodRow(
            "thin: standard, fine-tuned on IMDB",
            "thin",
            ["standard", "downstream_standard"],
            cost,
            Stat.Of([0.8, 0.8, 0.7, 0.7]),
            Stat.Of([0.80, 0.82, 0.70, 0.72]),
            new Dictionary<string, Stat?> { ["standard"] = null, ["downstream_standard"] = null },
            [],
            2
        )
        {
            Downstream = new DownstreamRow(
                2,
                [2e-4, 1e-4],
                [
                    new LrTrial(1e-4, Stat.Of([0.70, 0.80]), 1),
                    new LrTrial(2e-4, Stat.Of([0.80, 0.70]), 1),
                    new LrTrial(5e-4, Stat.Of([0.5, 0.5]), 0),
                ]
            ),
        };
        var result = new ExperimentResult("x", "imdb", 10, 10, 10, 2, [row], []);
        var md = ExperimentReport.Markdown(result, imitationPlot: false);
        Assert.Contains("## Downstream fine-tuning", md);
        Assert.Contains(
            "| method | chosen lr | val top-1 at lr 0.0001 | val top-1 at lr 0.0002 | val top-1 at lr 0.0005 | fine-tunings tested | test top-1 |",
            md
        );
        Assert.Contains(
            "| thin: standard, fine-tuned on IMDB | 0.0001 (1 seed), 0.0002 (1 seed) | **75.00 ± 7.07%** | **75.00 ± 7.07%** | 50.00 ± 0.00% | 4 | 76.00 ± 5.89% |",
            md
        );
        Assert.Contains("fine-tuning seeds 1 to 1 run at it only", md);
        Assert.Contains("of every experiment seed", md);
    }
}
