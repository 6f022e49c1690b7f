using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Method.Stages;

namespace WideThenNarrow.Reporting;

/// <summary>Mean and sample standard deviation over seeds (spread 0 for one seed); null when no seed had a value.</summary>
public sealed record Stat(double Mean, double Spread, int N)
{
    public static Stat? Of(IEnumerable<double?> values)
    {
        var v = values.Where(x => x.HasValue).Select(x => x!.Value).ToList();
        if (v.Count == 0)
            return null;
        double mean = v.Average();
        double spread = v.Count > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1)) : 0;
        return new Stat(mean, spread, v.Count);
    }
}

/// <summary>One row of the report: a way of obtaining a network, the stages it took, its accuracy and its cost.</summary>
public sealed record MethodRow(
    string Method,
    string Model,
    IReadOnlyList<string> Stages,
    ModelCostRow Cost,
    Stat? ValTop1,
    Stat? TestTop1,
    IReadOnlyDictionary<string, Stat?> StageSeconds,
    IReadOnlyList<double?> MeanCurve,
    int SeedsDone
)
{
    /// <summary>Training multiply-accumulates of the row's stages other than the wide network's (null when a stage did not record them).</summary>
    public Stat? TrainMacs { get; init; }

    /// <summary>The wide network's training multiply-accumulates, apart: a reader counts them or not (an imported one costs none here).</summary>
    public Stat? WideMacs { get; init; }

    /// <summary>Test loss of the finished network (masked-LM rows: the mean cross-entropy over the held-out text's masked tokens).</summary>
    public Stat? TestLoss { get; init; }

    /// <summary>Masked-LM rows only: exp of each seed's held-out test loss, the perplexity over the masked tokens.</summary>
    public Stat? Perplexity { get; init; }

    /// <summary>
    /// Downstream rows fine-tuned with several seeds or a learning-rate grid: the lrs tried and chosen. The row's
    /// validation and test top-1 are then over every fine-tuning seed at the chosen lr (of every experiment seed).
    /// </summary>
    public DownstreamRow? Downstream { get; init; }
}

/// <summary>
/// A downstream row's fine-tunings: <see cref="FineTuneSeeds"/> networks per pretrained encoder at the lr chosen on
/// validation (<see cref="ChosenLrs"/>, one per experiment seed done), and every lr tried on fine-tuning seed 0.
/// </summary>
public sealed record DownstreamRow(int FineTuneSeeds, IReadOnlyList<double> ChosenLrs, IReadOnlyList<LrTrial> Lrs);

/// <summary>
/// One learning rate of the downstream grid: the validation top-1 of its fine-tuning-seed-0 run (its best epoch's,
/// what the choice is made by; mean ± sd over experiment seeds) and how many experiment seeds chose it. Never tested
/// unless chosen.
/// </summary>
public sealed record LrTrial(double Lr, Stat? ValBestTop1, int Chosen);

/// <summary>One finished network of a row, as compared: fine-tuning seed 0 (the stage's own network) or a downstream fine-tuning seed.</summary>
internal sealed record TestedNetwork(
    int FineTuneSeed,
    double? ValTop1,
    double? TestTop1,
    double? TestLoss,
    string? TestCorrect,
    IReadOnlyList<CurvePoint> Curve
)
{
    /// <summary>
    /// The networks a finished stage leaves: its own, or, for a downstream stage in units, every fine-tuning at its
    /// chosen lr (the losing lrs' networks were never tested).
    /// </summary>
    public static IReadOnlyList<TestedNetwork> Of(StageSummary s) =>
        s is { FineTunes: { } runs, ChosenLr: { } lr }
            ?
            [
                .. runs.Where(r => r.Lr == lr)
                    .OrderBy(r => r.FineTuneSeed)
                    .Select(r => new TestedNetwork(
                        r.FineTuneSeed,
                        r.ValTop1,
                        r.TestTop1,
                        r.TestLoss,
                        r.TestCorrect,
                        r.Curve
                    )),
            ]
            : [new TestedNetwork(0, s.ValTop1, s.TestTop1, s.TestLoss, s.TestCorrect, s.Curve)];
}

/// <summary>
/// The final test top-1 of <see cref="Method"/> (the method's row) minus another row's, paired seed by seed over the
/// seeds both have finished (<see cref="Difference"/> in fractions: 0.004 is 0.4 points); <see cref="SeedsBetter"/>
/// counts the seeds where the method's is higher. Downstream rows with fine-tuning seeds pair by experiment seed and
/// fine-tuning seed (<see cref="PairedBy"/>).
/// </summary>
public sealed record Comparison(string Method, string Against, Stat Difference, int SeedsBetter)
{
    /// <summary>What a pair is: "seed", or "fine-tuning seed" (of one pretrained encoder per experiment seed).</summary>
    public string PairedBy { get; init; } = "seed";

    /// <summary>Paired t-test of the seeds' test top-1 (two seeds at least).</summary>
    public PairedTTest? TTest { get; init; }

    /// <summary>McNemar's test on the test examples, discordant pairs summed over the seeds both finished (classifiers only).</summary>
    public McNemarTest? McNemar { get; init; }

    /// <summary>
    /// McNemar's test of each pair on its own (the pairs of <see cref="Difference"/>, in order): each is a valid test
    /// of those two trained networks, where the summed <see cref="McNemar"/> counts the same test examples once per
    /// seed. Null where <see cref="McNemar"/> is.
    /// </summary>
    public IReadOnlyList<McNemarTest>? McNemarEach { get; init; }

    /// <summary>How many pairs of <see cref="McNemarEach"/> the method wins (p &lt; 0.05, it alone right more often).</summary>
    public int? McNemarPairsAhead => McNemarEach?.Count(t => t.P < Statistics.DefaultAlpha && t.B > t.C);

    /// <summary>How many pairs of <see cref="McNemarEach"/> the method loses (p &lt; 0.05, the other alone right more often).</summary>
    public int? McNemarPairsBehind => McNemarEach?.Count(t => t.P < Statistics.DefaultAlpha && t.C > t.B);

    /// <summary>better, worse or tie: by the t-test over seeds when there are several, else by McNemar's test; tie when neither says.</summary>
    public string Verdict =>
        Statistics.Verdict(Difference.Mean, TTest is { P: var p } && !double.IsNaN(p) ? p : McNemar?.P ?? double.NaN);
}

/// <summary>A machine the run's stages trained on (<see cref="ExperimentResult.Machines"/>).</summary>
public sealed record MachineStages(WideThenNarrow.Runtime.Machine Machine, int Stages, int Sessions);

/// <summary>Everything report.md, results.json and the plots show.</summary>
public sealed record ExperimentResult(
    string Experiment,
    string Dataset,
    int TrainExamples,
    int ValidationExamples,
    int TestExamples,
    int Seeds,
    IReadOnlyList<MethodRow> Methods,
    IReadOnlyList<IReadOnlyDictionary<string, StageSummary>> PerSeed
)
{
    /// <summary>Every declared stage of every seed: done, started or pending (all done once the run has finished).</summary>
    public IReadOnlyList<StageStatus> Status { get; init; } = [];

    /// <summary>The depth experiment's results, when the experiment is one (it then has no stages and no methods).</summary>
    public DepthStudyResult? DepthStudy { get; init; }

    /// <summary>How much training is left, when the run is unfinished and some stage has measured its pace; else null.</summary>
    public TimeLeft? Left { get; init; }

    /// <summary>False when the files were left as they were (a finished run's final report is never replaced by a later look).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Written { get; init; } = true;

    /// <summary>True when some declared stage has not finished (an interim report).</summary>
    public bool Partial => StagesDone < Status.Count;

    public int StagesDone => Status.Count(s => s.State == StageState.Done);

    /// <summary>
    /// The trained wide network the run imported (<c>wide.import</c>), when it did: one network then serves every seed
    /// as teacher, and its training compute is not in any row's wide-stage column.
    /// </summary>
    public string? WideImport { get; init; }

    /// <summary>The thin network trained by the method against every other row of its kind (plain, or fine-tuned downstream).</summary>
    public IReadOnlyList<Comparison> Comparisons { get; init; } = [];

    /// <summary>
    /// Every machine the finished stages trained on (<see cref="StageSummary.Machines"/>), with how many stages and
    /// training sessions ran there; a stage resumed on another machine counts for both. Most stages first.
    /// </summary>
    public IReadOnlyList<MachineStages> Machines =>
        [
            .. PerSeed
                .SelectMany(s => s.Values)
                .Where(x => x.Machines is not null)
                .SelectMany(x => x.Machines!.Select(u => (u.Machine, u.Sessions)))
                .GroupBy(u => u.Machine)
                .Select(g => new MachineStages(g.Key, g.Count(), g.Sum(u => u.Sessions)))
                .OrderByDescending(m => m.Stages),
        ];

    /// <summary>Finished stages whose stage.json records no machine (written before wtn recorded them).</summary>
    public int StagesWithoutMachines => PerSeed.Sum(s => s.Values.Count(x => x.Machines is null));

    public static ExperimentResult Build(
        ExperimentConfig config,
        IReadOnlyList<IReadOnlyDictionary<string, StageSummary>> perSeed,
        IReadOnlyDictionary<string, ModelCostRow> costs,
        string experimentDir,
        IExperimentDataset dataset
    )
    {
        var rows = new List<MethodRow>();
        bool maskedLm = dataset is MaskedLmExperimentDataset;
        // Text experiments: each pretrained network fine-tuned on the downstream task is a row of its own.
        // A downstream row names the task the run fine-tuned on: IMDB, or the user's data.text.train_file.
        var task = dataset is MaskedLmExperimentDataset text ? text.Data.Task.Name : DownstreamStage.Task;
        foreach (var (catalogued, model, stages, _) in StageCatalogue.Rows)
        {
            var last = stages[^1];
            var method = DownstreamStage.IsDownstream(last)
                ? catalogued.Replace(DownstreamStage.RowSuffix(DownstreamStage.Task), DownstreamStage.RowSuffix(task))
                : catalogued;
            // A row appears once one seed has finished its last stage; its statistics cover the seeds that have (Stat.N),
            // and a downstream stage's every fine-tuning seed at its chosen lr.
            var finals = perSeed.Where(s => s.ContainsKey(last)).Select(s => s[last]).ToList();
            if (finals.Count == 0)
                continue;
            var networks = finals.SelectMany(TestedNetwork.Of).ToList();
            var seconds = stages.ToDictionary(
                st => st,
                st => Stat.Of(perSeed.Select(s => s.TryGetValue(st, out var x) ? x.WallSeconds : (double?)null))
            );
            int epochs = networks.Max(f => f.Curve.Count);
            var curve = Enumerable
                .Range(0, epochs)
                .Select(e => Stat.Of(networks.Select(f => e < f.Curve.Count ? f.Curve[e].ValTop1 : null))?.Mean)
                .ToList();
            double? Macs(IReadOnlyDictionary<string, StageSummary> seed, IEnumerable<string> of)
            {
                double sum = 0;
                foreach (var st in of)
                    if (seed.TryGetValue(st, out var x) && x.TrainMacs is { } m)
                        sum += m;
                    else
                        return null;
                return sum;
            }
            var done = perSeed.Where(s => s.ContainsKey(last)).ToList();
            rows.Add(
                new MethodRow(
                    method,
                    model,
                    stages,
                    costs[model],
                    Stat.Of(networks.Select(f => f.ValTop1)),
                    Stat.Of(networks.Select(f => f.TestTop1)),
                    seconds,
                    curve,
                    finals.Count
                )
                {
                    TrainMacs = Stat.Of(done.Select(s => Macs(s, stages.Where(st => st != "wide")))),
                    WideMacs =
                        stages.Contains("wide") && config.Wide?.Import is null
                            ? Stat.Of(done.Select(s => Macs(s, ["wide"])))
                            : null,
                    TestLoss = Stat.Of(networks.Select(f => f.TestLoss)),
                    Perplexity =
                        maskedLm && !DownstreamStage.IsDownstream(last)
                            ? Stat.Of(finals.Select(f => f.TestLoss is { } l ? Math.Exp(l) : (double?)null))
                            : null,
                    Downstream = DownstreamOf(finals),
                }
            );
        }
        return new ExperimentResult(
            config.Name,
            dataset.Name,
            dataset.TrainExamples,
            dataset.ValidationExamples,
            dataset.TestExamples,
            perSeed.Count,
            rows,
            perSeed
        )
        {
            Comparisons = Compare(rows, perSeed),
            WideImport = config.Wide?.Import,
        };
    }

    /// <summary>The lrs a downstream row's stages tried and chose, when they ran in units (null otherwise).</summary>
    static DownstreamRow? DownstreamOf(IReadOnlyList<StageSummary> finals)
    {
        var units = finals.Where(f => f is { FineTunes: not null, ChosenLr: not null }).ToList();
        if (units.Count == 0)
            return null;
        var seedZero = units.SelectMany(f => f.FineTunes!.Where(r => r.FineTuneSeed == 0)).ToList();
        var trials = seedZero
            .Select(r => r.Lr)
            .Distinct()
            .Order()
            .Select(lr => new LrTrial(
                lr,
                Stat.Of(seedZero.Where(r => r.Lr == lr).Select(r => r.ValBestTop1)),
                units.Count(f => f.ChosenLr == lr)
            ))
            .ToList();
        return new DownstreamRow(
            units.Max(f => TestedNetwork.Of(f).Count),
            [.. units.Select(f => f.ChosenLr!.Value)],
            trials
        );
    }

    /// <summary>
    /// For each method row (plain and downstream): its test top-1 minus every other row's of the same kind, paired by
    /// seed (and, downstream, by fine-tuning seed: both encoders' fine-tunings with the same data order and fresh head).
    /// </summary>
    internal static List<Comparison> Compare(
        IReadOnlyList<MethodRow> rows,
        IReadOnlyList<IReadOnlyDictionary<string, StageSummary>> perSeed
    )
    {
        static bool Downstream(MethodRow r) => DownstreamStage.IsDownstream(r.Stages[^1]);
        bool InUnits(MethodRow r) => perSeed.Any(s => s.GetValueOrDefault(r.Stages[^1])?.FineTunes is not null);
        // Every tested network of a row, by (experiment seed, fine-tuning seed).
        Dictionary<(int Seed, int FineTune), TestedNetwork> Networks(MethodRow r) =>
            perSeed
                .Select((s, i) => (Seed: i, Summary: s.GetValueOrDefault(r.Stages[^1])))
                .Where(x => x.Summary is not null)
                .SelectMany(x => TestedNetwork.Of(x.Summary!).Select(n => (Key: (x.Seed, n.FineTuneSeed), Network: n)))
                .ToDictionary(x => x.Key, x => x.Network);
        var result = new List<Comparison>();
        foreach (var method in rows.Where(r => r.Method.StartsWith(FinetuneStage.Method, StringComparison.Ordinal)))
        foreach (var other in rows.Where(r => r != method && Downstream(r) == Downstream(method)))
        {
            var (mine, theirs) = (Networks(method), Networks(other));
            var pairs = mine
                .Keys.Where(theirs.ContainsKey)
                .Order()
                .Select(k => (A: mine[k], B: theirs[k]))
                .Where(p => p.A.TestTop1 is not null && p.B.TestTop1 is not null)
                .ToList();
            var diffs = pairs.Select(p => p.A.TestTop1 - p.B.TestTop1).ToList();
            if (Stat.Of(diffs) is not { } diff)
                continue;
            long b = 0,
                c = 0;
            var each = new List<McNemarTest>();
            bool verdicts = pairs.All(p => p.A.TestCorrect is not null && p.B.TestCorrect is not null);
            foreach (var (x, y) in verdicts ? pairs : [])
            {
                var bytesX = Convert.FromBase64String(x.TestCorrect!);
                var bytesY = Convert.FromBase64String(y.TestCorrect!);
                if (bytesX.Length != bytesY.Length)
                {
                    verdicts = false;
                    break;
                }
                long bi = 0,
                    ci = 0;
                for (int i = 0; i < bytesX.Length; i++)
                {
                    bi += System.Numerics.BitOperations.PopCount((uint)(bytesX[i] & ~bytesY[i] & 0xff));
                    ci += System.Numerics.BitOperations.PopCount((uint)(bytesY[i] & ~bytesX[i] & 0xff));
                }
                each.Add(Statistics.McNemar(bi, ci));
                (b, c) = (b + bi, c + ci);
            }
            result.Add(
                new Comparison(method.Method, other.Method, diff, diffs.Count(d => d > 0))
                {
                    PairedBy = InUnits(method) || InUnits(other) ? "fine-tuning seed" : "seed",
                    TTest =
                        pairs.Count >= 2
                            ? Statistics.PairedT(
                                [.. pairs.Select(p => p.A.TestTop1!.Value)],
                                [.. pairs.Select(p => p.B.TestTop1!.Value)]
                            )
                            : null,
                    McNemar = verdicts ? Statistics.McNemar(b, c) : null,
                    McNemarEach = verdicts ? each : null,
                }
            );
        }
        return result;
    }
}
