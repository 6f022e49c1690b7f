using System.Reflection;

namespace WideThenNarrow.Method.Stages;

/// <summary>
/// Every stage an experiment can declare, in run order: the one table that validation, the plan, the status, the
/// report's rows and export derive from. It is found by reflection: every concrete <see cref="ExperimentStage"/> of
/// this library with a public parameterless constructor, ordered by its <see cref="StageOrderAttribute"/>. A new
/// baseline is its stage file (a <see cref="BaselineStage{TSection}"/> with a [StageOrder]), its objective, and its
/// section's record if no existing one fits (the strict YAML keys are the record's properties): its section is the
/// experiment file's top-level key named as the stage (<see cref="BaselineSections"/>), with no other file to change.
/// </summary>
public static class StageCatalogue
{
    static readonly ExperimentStage[] Stages = Discover();

    /// <summary>The stages of this library in [StageOrder] order; <see cref="DownstreamStage"/>, made per pretrained stage, has no parameterless constructor.</summary>
    static ExperimentStage[] Discover()
    {
        var types = typeof(ExperimentStage)
            .Assembly.GetTypes()
            .Where(t =>
                t.IsClass
                && !t.IsAbstract
                && typeof(ExperimentStage).IsAssignableFrom(t)
                && t.GetConstructor(Type.EmptyTypes) is not null
            )
            .ToList();
        var unordered = types
            .Where(t => t.GetCustomAttribute<StageOrderAttribute>(inherit: false) is null)
            .Select(t => t.Name)
            .ToList();
        if (unordered.Count > 0)
            throw new InvalidOperationException(
                $"stage {string.Join(", ", unordered)} needs a [StageOrder(N)] attribute: its place in the run order"
            );
        var ordered = types.OrderBy(t => t.GetCustomAttribute<StageOrderAttribute>(inherit: false)!.Order).ToList();
        if (
            ordered
                .GroupBy(t => t.GetCustomAttribute<StageOrderAttribute>(inherit: false)!.Order)
                .FirstOrDefault(g => g.Count() > 1) is
            { } tie
        )
            throw new InvalidOperationException(
                $"stages {string.Join(", ", tie.Select(t => t.Name))} share [StageOrder({tie.Key})]; give each its own place"
            );
        return [.. ordered.Select(t => (ExperimentStage)Activator.CreateInstance(t)!)];
    }

    /// <summary>
    /// The top-level keys of the baselines' sections and the records they are read as, in run order: the sections of
    /// <see cref="ExperimentConfig.Baselines"/> (<see cref="BaselineStage{TSection}"/>).
    /// </summary>
    public static IReadOnlyList<(string Key, Type Type)> BaselineSections { get; } =
    [.. Stages.Where(s => s.BaselineSection is not null).Select(s => (s.Name, s.BaselineSection!))];

    /// <summary>The stages above, then downstream_S for every pretrained stage S (text experiments), in report order.</summary>
    public static readonly IReadOnlyList<ExperimentStage> All =
    [
        .. Stages,
        .. Stages
            .Where(s => s.Pretrained)
            .OrderBy(s => s.Rows.Min(r => r.Position))
            .Select(s => new DownstreamStage(s)),
    ];

    /// <summary>The report's rows: the plain ones, then the downstream ones, each in <see cref="ReportRow.Position"/> order.</summary>
    public static readonly IReadOnlyList<ReportRow> Rows =
    [
        .. All.SelectMany(s => s.Rows).OrderBy(r => DownstreamStage.IsDownstream(r.Stages[^1])).ThenBy(r => r.Position),
    ];

    /// <summary>The stages the experiment runs for every seed, in order (an imported wide network is not a stage).</summary>
    public static IReadOnlyList<ExperimentStage> Declared(ExperimentConfig c) => [.. All.Where(s => s.IsDeclared(c))];

    /// <summary>runs/EXPERIMENT/seed-S: one seed's stage folders.</summary>
    public static string SeedDir(string experimentDir, long seed) => Path.Combine(experimentDir, $"seed-{seed}");

    /// <summary>Every declared stage of the first <paramref name="seeds"/> seeds with its folder: seed after seed, in declared order.</summary>
    public static IEnumerable<(long Seed, string Stage, string Dir)> StageDirs(
        ExperimentConfig config,
        string experimentDir,
        int seeds
    )
    {
        var stages = Declared(config);
        for (int i = 0; i < seeds; i++)
        {
            long seed = config.SeedBase + i;
            foreach (var stage in stages)
                yield return (seed, stage.Name, Path.Combine(SeedDir(experimentDir, seed), stage.Name));
        }
    }

    /// <summary>Refuses sections that cannot run as written: a stage without the wide network it needs, then each stage's own checks.</summary>
    public static void Validate(ExperimentConfig c)
    {
        // A config built in code can hold what no file can: a section no baseline reads, or of another record.
        foreach (var (key, section) in c.Baselines)
            if (!BaselineSections.Any(s => s.Key == key && s.Type.IsInstanceOfType(section)))
                throw new WtnException(
                    BaselineSections.Any(s => s.Key == key)
                        ? $"baseline section {key} is a {section?.GetType().Name ?? "null"}, not the record its stage reads"
                        : $"no stage reads a section '{key}'; the baselines' sections are {string.Join(", ", BaselineSections.Select(s => s.Key))}"
                );
        var needWide = All.Where(s => s.NeedsWide(c)).Select(s => s.Name).ToList();
        if (c.Wide is null && needWide.Count > 0)
            throw new WtnException(
                $"{string.Join(", ", needWide)} need{(needWide.Count == 1 ? "s" : "")} the wide network: add a 'wide' section (train or import)"
            );
        if (All.Select(s => s.Invalid(c)).FirstOrDefault(e => e is not null) is { } error)
            throw new WtnException(error);
    }
}
