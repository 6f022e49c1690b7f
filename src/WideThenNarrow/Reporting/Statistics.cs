namespace WideThenNarrow.Reporting;

/// <summary>A paired t-test over seeds: the mean and sample sd of the differences a - b, t = mean / (sd / sqrt(n)), df = n - 1.</summary>
public sealed record PairedTTest(double MeanDifference, double SdDifference, int N, double T, int Df, double P);

/// <summary>
/// McNemar's test on two networks' per-example correctness: <see cref="B"/> examples only the first got right,
/// <see cref="C"/> only the second. <see cref="Exact"/>: the two-sided exact binomial test on b of b + c at 1/2
/// (<see cref="Statistic"/> is then null); otherwise chi-square with continuity correction, (|b - c| - 1)^2 / (b + c), 1 df.
/// </summary>
public sealed record McNemarTest(long B, long C, bool Exact, double? Statistic, double P)
{
    public string Method => Exact ? "exact binomial" : "chi-square, continuity corrected";
}

/// <summary>
/// The statistics the reports use to call a difference (pure functions): mean and sample sd, paired differences, a
/// paired t-test over seeds and McNemar's test on the test examples, and the verdict they support.
/// </summary>
public static class Statistics
{
    /// <summary>Discordant pairs below this use the exact binomial test (the chi-square approximation is poor there).</summary>
    public const long McNemarExactBelow = 25;

    public const double DefaultAlpha = 0.05;

    public static double Mean(IReadOnlyList<double> values) =>
        values.Count > 0 ? values.Average() : throw new ArgumentException("no values", nameof(values));

    /// <summary>Sample standard deviation (n - 1 in the denominator); NaN for a single value, where it is undefined.</summary>
    public static double SampleSd(IReadOnlyList<double> values)
    {
        double mean = Mean(values);
        return values.Count < 2 ? double.NaN : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    /// <summary>a[i] - b[i] for every pair (seed by seed).</summary>
    public static double[] PairedDifferences(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count != b.Count)
            throw new ArgumentException($"paired values need equal counts, got {a.Count} and {b.Count}");
        return a.Zip(b, (x, y) => x - y).ToArray();
    }

    /// <summary>
    /// Two-sided paired t-test of a against b. Needs two pairs at least (else P is NaN). Differences all equal give
    /// sd 0: P = 1 when they are 0, else 0 (t infinite).
    /// </summary>
    public static PairedTTest PairedT(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        var d = PairedDifferences(a, b);
        if (d.Length == 0)
            throw new ArgumentException("no pairs");
        double mean = d.Average(),
            sd = SampleSd(d);
        int n = d.Length,
            df = n - 1;
        if (n < 2)
            return new PairedTTest(mean, sd, n, double.NaN, df, double.NaN);
        if (sd == 0)
            return new PairedTTest(
                mean,
                0,
                n,
                mean == 0 ? 0 : Math.CopySign(double.PositiveInfinity, mean),
                df,
                mean == 0 ? 1 : 0
            );
        double t = mean / (sd / Math.Sqrt(n));
        return new PairedTTest(mean, sd, n, t, df, StudentTTwoSidedP(t, df));
    }

    /// <summary>P(|T| >= |t|) for Student's t with <paramref name="df"/> degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2).</summary>
    public static double StudentTTwoSidedP(double t, double df)
    {
        if (!(df > 0))
            throw new ArgumentOutOfRangeException(nameof(df), df, "degrees of freedom must be positive");
        if (double.IsNaN(t))
            return double.NaN;
        if (double.IsInfinity(t))
            return 0;
        return RegularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
    }

    /// <summary>McNemar's test on per-example correctness of two networks on the same examples, in the same order.</summary>
    public static McNemarTest McNemar(IReadOnlyList<bool> firstCorrect, IReadOnlyList<bool> secondCorrect)
    {
        if (firstCorrect.Count != secondCorrect.Count)
            throw new ArgumentException(
                $"McNemar's test needs the same examples, got {firstCorrect.Count} and {secondCorrect.Count} predictions"
            );
        long b = 0,
            c = 0;
        for (int i = 0; i < firstCorrect.Count; i++)
        {
            if (firstCorrect[i] && !secondCorrect[i])
                b++;
            else if (!firstCorrect[i] && secondCorrect[i])
                c++;
        }
        return McNemar(b, c);
    }

    /// <summary>McNemar's test from the discordant counts b (only the first right) and c (only the second right).</summary>
    public static McNemarTest McNemar(long b, long c)
    {
        if (b < 0 || c < 0)
            throw new ArgumentOutOfRangeException(nameof(b), "discordant counts cannot be negative");
        long n = b + c;
        if (n < McNemarExactBelow)
            return new McNemarTest(b, c, true, null, ExactBinomialTwoSided(Math.Min(b, c), n));
        double x = Math.Abs(b - c) - 1.0;
        double chi2 = Math.Max(0, x) * Math.Max(0, x) / n;
        return new McNemarTest(b, c, false, chi2, ChiSquareOneDfSurvival(chi2));
    }

    /// <summary>
    /// "better" or "worse" (by the sign of <paramref name="difference"/>, first minus second, larger is better) when
    /// p &lt; alpha, else "tie" (an undefined p included).
    /// </summary>
    public static string Verdict(double difference, double p, double alpha = DefaultAlpha) =>
        !(p < alpha) || difference == 0 ? "tie"
        : difference > 0 ? "better"
        : "worse";

    /// <summary>Two-sided exact binomial p at 1/2: twice P(X &lt;= k) for X ~ Bin(n, 1/2), k the smaller count, at most 1.</summary>
    static double ExactBinomialTwoSided(long k, long n)
    {
        // Binomial coefficients and 2^n are exact in doubles for the n below McNemarExactBelow.
        double coefficient = 1,
            tail = 0;
        for (long j = 0; j <= k; j++)
        {
            tail += coefficient;
            coefficient = coefficient * (n - j) / (j + 1);
        }
        return Math.Min(1, 2 * tail / Math.Pow(2, n));
    }

    /// <summary>P(X >= x) for chi-square with 1 df: the regularized upper incomplete gamma Q(1/2, x/2).</summary>
    public static double ChiSquareOneDfSurvival(double x) => x <= 0 ? 1 : RegularizedUpperGamma(0.5, x / 2);

    /// <summary>
    /// The regularized incomplete beta function I_x(a, b), by the continued fraction of Numerical Recipes (betacf,
    /// modified Lentz), taken directly where it converges fast (x &lt; (a+1)/(a+b+2)) and through I_x(a,b) = 1 - I_{1-x}(b,a) elsewhere.
    /// </summary>
    public static double RegularizedIncompleteBeta(double x, double a, double b)
    {
        if (!(a > 0 && b > 0))
            throw new ArgumentOutOfRangeException(nameof(a), "a and b must be positive");
        if (double.IsNaN(x) || x < 0 || x > 1)
            throw new ArgumentOutOfRangeException(nameof(x), x, "x must lie in [0, 1]");
        if (x == 0 || x == 1)
            return x;
        double front = Math.Exp(LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x));
        return x < (a + 1) / (a + b + 2)
            ? front * BetaContinuedFraction(x, a, b) / a
            : 1 - front * BetaContinuedFraction(1 - x, b, a) / b;
    }

    static double BetaContinuedFraction(double x, double a, double b)
    {
        const int maxIterations = 10_000;
        const double eps = 1e-16,
            tiny = 1e-300;
        double qab = a + b,
            qap = a + 1,
            qam = a - 1;
        double c = 1,
            d = 1 - qab * x / qap;
        if (Math.Abs(d) < tiny)
            d = tiny;
        d = 1 / d;
        double h = d;
        for (int m = 1; m <= maxIterations; m++)
        {
            int m2 = 2 * m;
            // Even step of the fraction, then the odd one.
            double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1 + aa * d;
            if (Math.Abs(d) < tiny)
                d = tiny;
            c = 1 + aa / c;
            if (Math.Abs(c) < tiny)
                c = tiny;
            d = 1 / d;
            h *= d * c;
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1 + aa * d;
            if (Math.Abs(d) < tiny)
                d = tiny;
            c = 1 + aa / c;
            if (Math.Abs(c) < tiny)
                c = tiny;
            d = 1 / d;
            double del = d * c;
            h *= del;
            if (Math.Abs(del - 1) < eps)
                return h;
        }
        throw new ArithmeticException($"incomplete beta: no convergence for x={x}, a={a}, b={b}");
    }

    /// <summary>Q(a, x) = Gamma(a, x) / Gamma(a): the series for P below x = a + 1, the continued fraction above (Numerical Recipes' gser/gcf).</summary>
    static double RegularizedUpperGamma(double a, double x)
    {
        const int maxIterations = 10_000;
        const double eps = 1e-16,
            tiny = 1e-300;
        double logFront = -x + a * Math.Log(x) - LogGamma(a);
        if (x < a + 1)
        {
            double ap = a,
                sum = 1 / a,
                del = sum;
            for (int n = 0; n < maxIterations && Math.Abs(del) > Math.Abs(sum) * eps; n++)
            {
                ap++;
                del *= x / ap;
                sum += del;
            }
            return 1 - sum * Math.Exp(logFront);
        }
        double b = x + 1 - a,
            c = 1 / tiny,
            d = 1 / b,
            h = d;
        for (int i = 1; i <= maxIterations; i++)
        {
            double an = -i * (i - a);
            b += 2;
            d = an * d + b;
            if (Math.Abs(d) < tiny)
                d = tiny;
            c = b + an / c;
            if (Math.Abs(c) < tiny)
                c = tiny;
            d = 1 / d;
            double del = d * c;
            h *= del;
            if (Math.Abs(del - 1) < eps)
                return Math.Exp(logFront) * h;
        }
        throw new ArithmeticException($"incomplete gamma: no convergence for a={a}, x={x}");
    }

    /// <summary>ln Gamma(x) for x > 0: Lanczos (g = 7, 9 coefficients), about 15 significant digits (reflection below 1/2).</summary>
    public static double LogGamma(double x)
    {
        if (!(x > 0))
            throw new ArgumentOutOfRangeException(nameof(x), x, "LogGamma takes x > 0");
        if (x < 0.5)
            return Math.Log(Math.PI / Math.Sin(Math.PI * x)) - LogGamma(1 - x);
        x -= 1;
        double sum = Lanczos[0];
        for (int i = 1; i < Lanczos.Length; i++)
            sum += Lanczos[i] / (x + i);
        double t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }

    static readonly double[] Lanczos =
    [
        0.99999999999980993,
        676.5203681218851,
        -1259.1392167224028,
        771.32342877765313,
        -176.61502916214059,
        12.507343278686905,
        -0.13857109526572012,
        9.9843695780195716e-6,
        1.5056327351493116e-7,
    ];
}
