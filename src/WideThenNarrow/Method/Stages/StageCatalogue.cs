namespace WideThenNarrow.Method.Stages;

/// <summary>
/// Every stage an experiment can declare, in run order: the one table that validation, the plan, the status, the
/// report's rows and export derive from. A new baseline is its stage file (an <see cref="ExperimentStage"/>), its
/// objective, its section's record with its <see cref="ExperimentConfig"/> property (the strict YAML keys are the
/// record's properties), and one line here.
/// </summary>
public static class StageCatalogue
{
    static readonly ExperimentStage[] Stages =
    [
        new WideStage(),
        new ImitationStage(),
        new FinetuneStage(),
        new FinetuneNoKdStage(),
        new StandardStage("standard", c => c.Standard, "thin: standard", 40),
        new StandardStage("standard_long", c => c.StandardLong, "thin: standard, long budget", 60),
        new StandardMatchedStage(),
        new KdStage(),
        new KdFinetuneRecipeStage(),
        new FitNetsStage(),
        new DeeperStage(),
    ];

    /// <summary>The stages above, then downstream_S for every pretrained stage S (text experiments), in report order.</summary>
    public static readonly IReadOnlyList<ExperimentStage> All =
        [.. Stages, .. Stages.Where(s => s.Pretrained).OrderBy(s => s.Rows.Min(r => r.Position)).Select(s => new DownstreamStage(s))];

    /// <summary>The report's rows: the plain ones, then the downstream ones, each in <see cref="ReportRow.Position"/> order.</summary>
    public static readonly IReadOnlyList<ReportRow> Rows =
        [.. All.SelectMany(s => s.Rows).OrderBy(r => DownstreamStage.IsDownstream(r.Stages[^1])).ThenBy(r => r.Position)];

    /// <summary>The stages the experiment runs for every seed, in order (an imported wide network is not a stage).</summary>
    public static IReadOnlyList<ExperimentStage> Declared(ExperimentConfig c) => [.. All.Where(s => s.IsDeclared(c))];

    /// <summary>runs/EXPERIMENT/seed-S: one seed's stage folders.</summary>
    public static string SeedDir(string experimentDir, long seed) => Path.Combine(experimentDir, $"seed-{seed}");

    /// <summary>Every declared stage of the first <paramref name="seeds"/> seeds with its folder: seed after seed, in declared order.</summary>
    public static IEnumerable<(long Seed, string Stage, string Dir)> StageDirs(ExperimentConfig config, string experimentDir, int seeds)
    {
        var stages = Declared(config);
        for (int i = 0; i < seeds; i++)
        {
            long seed = config.SeedBase + i;
            foreach (var stage in stages) yield return (seed, stage.Name, Path.Combine(SeedDir(experimentDir, seed), stage.Name));
        }
    }

    /// <summary>Refuses sections that cannot run as written: a stage without the wide network it needs, then each stage's own checks.</summary>
    public static void Validate(ExperimentConfig c)
    {
        var needWide = All.Where(s => s.NeedsWide(c)).Select(s => s.Name).ToList();
        if (c.Wide is null && needWide.Count > 0)
            throw new WtnException($"{string.Join(", ", needWide)} need{(needWide.Count == 1 ? "s" : "")} the wide network: add a 'wide' section (train or import)");
        if (All.Select(s => s.Invalid(c)).FirstOrDefault(e => e is not null) is { } error) throw new WtnException(error);
    }
}
