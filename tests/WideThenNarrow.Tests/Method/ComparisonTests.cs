using WideThenNarrow.Method;
using WideThenNarrow.Reporting;

namespace WideThenNarrow.Tests.Method;

/// <summary>The report's answer: the method's final top-1 against every other row, paired seed by seed.</summary>
public class ComparisonTests
{
    static MethodRow Row(string method, string model, params string[] stages) =>
        new(method, model, stages, new ModelCostRow(model, model, 1, 1, 1, 1), null, null, new Dictionary<string, Stat?>(), [], 1);

    static StageSummary Done(string stage, double top1) => new() { Stage = stage, Model = "thin", TestTop1 = top1 };

    [Fact]
    public void Differences_are_paired_by_seed_over_the_seeds_both_finished_and_kept_within_their_kind()
    {
        var rows = new[]
        {
            Row("thin: go wide, then narrow", "thin", "wide", "imitation", "finetune"),
            Row("thin: standard", "thin", "standard"),
            Row("deeper: standard", "deeper", "deeper"),
            Row("thin: go wide, then narrow, fine-tuned on imdb", "thin", "wide", "imitation", "finetune", "downstream_finetune"),
            Row("thin: standard, fine-tuned on imdb", "thin", "standard", "downstream_standard"),
        };
        var perSeed = new IReadOnlyDictionary<string, StageSummary>[]
        {
            new Dictionary<string, StageSummary> { ["finetune"] = Done("finetune", 0.90), ["standard"] = Done("standard", 0.88), ["deeper"] = Done("deeper", 0.91),
                ["downstream_finetune"] = Done("downstream_finetune", 0.80), ["downstream_standard"] = Done("downstream_standard", 0.70) },
            new Dictionary<string, StageSummary> { ["finetune"] = Done("finetune", 0.86), ["standard"] = Done("standard", 0.87), ["deeper"] = Done("deeper", 0.92) },
            // Seed 2 has not finished the method: it does not count, even where the baseline is done.
            new Dictionary<string, StageSummary> { ["standard"] = Done("standard", 0.10), ["deeper"] = Done("deeper", 0.10) },
        };
        var c = ExperimentResult.Compare(rows, perSeed);

        Assert.Equal(["thin: standard", "deeper: standard", "thin: standard, fine-tuned on imdb"], c.Select(x => x.Against));
        Assert.Equal(["thin: go wide, then narrow", "thin: go wide, then narrow", "thin: go wide, then narrow, fine-tuned on imdb"], c.Select(x => x.Method));
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
}
