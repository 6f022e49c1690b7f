using WideThenNarrow.Reporting;

namespace WideThenNarrow.Tests.Reporting;

/// <summary>
/// Reference values computed with Python's math module: closed forms for 1 and 2 degrees of freedom, Simpson's rule
/// on the t density (200,000 intervals) otherwise, exact binomial sums, and math.erfc for chi-square with 1 df.
/// </summary>
public class StatisticsTests
{
    [Theory]
    [InlineData(2.0, 4, 0.11611652351680668)]
    [InlineData(3.1, 7, 0.017322289425462434)]
    [InlineData(-0.5, 10, 0.6278936057429756)]
    [InlineData(2.5, 2, 0.1296117202215108)]
    [InlineData(1.5, 1, 0.3743340836219976)]
    [InlineData(0.0, 3, 1.0)]
    public void Student_t_two_sided_p_matches_reference_values(double t, int df, double expected) =>
        Assert.Equal(expected, Statistics.StudentTTwoSidedP(t, df), 1e-10);

    [Fact]
    public void Incomplete_beta_and_log_gamma_match_closed_forms()
    {
        // Integer a, b: I_x(a, b) is a binomial tail, sum over j = a..a+b-1 of C(a+b-1, j) x^j (1-x)^(a+b-1-j).
        Assert.Equal(0.3529305, Statistics.RegularizedIncompleteBeta(0.3, 3, 5), 1e-12);
        Assert.Equal(
            1 - Statistics.RegularizedIncompleteBeta(0.7, 5, 3),
            Statistics.RegularizedIncompleteBeta(0.3, 3, 5),
            1e-12
        );
        Assert.Equal(Math.Log(362880), Statistics.LogGamma(10), 1e-12);
        Assert.Equal(0.5 * Math.Log(Math.PI), Statistics.LogGamma(0.5), 1e-12);
    }

    [Fact]
    public void Mean_sd_and_paired_t_over_three_seeds()
    {
        double[] method = [0.9462, 0.9470, 0.9455],
            standard = [0.9430, 0.9441, 0.9437];
        Assert.Equal(1.0, Statistics.SampleSd([1.0, 2.0, 3.0]), 1e-15);
        Assert.True(double.IsNaN(Statistics.SampleSd([1.0])));
        var t = Statistics.PairedT(method, standard);
        Assert.Equal(0.0026333333333333395, t.MeanDifference, 1e-12);
        Assert.Equal(0.0007371114795832036, t.SdDifference, 1e-12);
        Assert.Equal(6.187757554904842, t.T, 1e-9);
        Assert.Equal(2, t.Df);
        Assert.Equal(0.02513700970067745, t.P, 1e-10);
        Assert.Equal("better", Statistics.Verdict(t.MeanDifference, t.P));
        Assert.Equal("tie", Statistics.Verdict(t.MeanDifference, t.P, alpha: 0.01));
        Assert.Equal("worse", Statistics.Verdict(-t.MeanDifference, t.P));
        Assert.True(double.IsNaN(Statistics.PairedT([0.9], [0.8]).P));
        Assert.Equal(1.0, Statistics.PairedT([0.9, 0.8], [0.9, 0.8]).P);
        Assert.Equal("tie", Statistics.Verdict(0.1, double.NaN));
    }

    [Fact]
    public void McNemar_is_exact_for_few_discordant_pairs_and_chi_square_otherwise()
    {
        var exact = Statistics.McNemar(10, 2);
        Assert.True(exact.Exact);
        Assert.Null(exact.Statistic);
        Assert.Equal(0.03857421875, exact.P, 1e-12);
        Assert.Equal("exact binomial", exact.Method);
        Assert.Equal(1.0, Statistics.McNemar(5, 5).P);
        Assert.Equal(1.0, Statistics.McNemar(0, 0).P);

        var chi = Statistics.McNemar(30, 10);
        Assert.False(chi.Exact);
        Assert.Equal(9.025, chi.Statistic!.Value, 1e-12);
        Assert.Equal(0.002663119259138554, chi.P, 1e-10);

        // From per-example correctness: b counts only-first-right, c only-second-right; agreements do not count.
        bool[] first = [true, true, true, false, false, true],
            second = [true, false, false, true, false, true];
        var fromExamples = Statistics.McNemar(first, second);
        Assert.Equal((2L, 1L), (fromExamples.B, fromExamples.C));
        Assert.Equal(1.0, fromExamples.P);
    }
}
