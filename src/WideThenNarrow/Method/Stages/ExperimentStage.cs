namespace WideThenNarrow.Method.Stages;

/// <summary>
/// One row of the report: a way of obtaining a network, the stages it takes (the last one leaves the network), and
/// its place among the rows (<see cref="Position"/>: the method's rows first, the teacher last).
/// </summary>
public sealed record ReportRow(string Method, string Model, IReadOnlyList<string> Stages, int Position);

/// <summary>
/// One entry of the <see cref="StageCatalogue"/>: a stage an experiment file can declare, run in
/// runs/EXPERIMENT/seed-S/<see cref="Name"/>/. It says when it is declared, what it starts from, which network it
/// trains, how its work is estimated and how it runs (<see cref="Plan"/>), and the report rows it ends.
/// </summary>
public abstract class ExperimentStage
{
    /// <summary>The stage's folder and name in progress, status and reports.</summary>
    public abstract string Name { get; }

    /// <summary>The network it trains and leaves in its folder: thin, wide or deeper.</summary>
    public abstract string Model { get; }

    /// <summary>
    /// The stages whose networks it starts from: they finish before it runs (an imported wide network is no stage to
    /// wait for), and their settings are part of its own.
    /// </summary>
    public virtual IReadOnlyList<string> StartsFrom => [];

    /// <summary>The networks whose specs are part of its settings.</summary>
    public virtual IReadOnlyList<string> Networks => [Model];

    /// <summary>Whether the experiment runs it.</summary>
    public abstract bool IsDeclared(ExperimentConfig c);

    /// <summary>Whether its section, as written, needs the wide network (trained or imported).</summary>
    public virtual bool NeedsWide(ExperimentConfig c) => false;

    /// <summary>What is wrong with its section in <paramref name="c"/>, or null.</summary>
    public virtual string? Invalid(ExperimentConfig c) => null;

    /// <summary>The report rows whose last stage it is.</summary>
    public virtual IReadOnlyList<ReportRow> Rows => [];

    /// <summary>Whether its network is fine-tuned on the downstream task when the experiment has one (text experiments).</summary>
    public virtual bool Pretrained => false;

    /// <summary>This seed's run of the stage: its settings, estimated work, and how to build its model and run it.</summary>
    internal abstract PlannedStage Plan(SeedPlan p);

    /// <summary>
    /// The record its section is read as when the section is its own top-level key of the experiment file, named
    /// <see cref="Name"/> and held in <see cref="ExperimentConfig.Baselines"/> (<see cref="BaselineStage{TSection}"/>);
    /// null when the section is a property of <see cref="ExperimentConfig"/> (the method's stages) or it has none.
    /// </summary>
    internal virtual Type? BaselineSection => null;
}

/// <summary>A stage with its own section of the experiment file (<typeparamref name="TSection"/>), run when the section is there.</summary>
public abstract class ExperimentStage<TSection> : ExperimentStage
    where TSection : class
{
    /// <summary>Its section of <paramref name="c"/>, or null when left out.</summary>
    public abstract TSection? Section(ExperimentConfig c);

    public override bool IsDeclared(ExperimentConfig c) => Section(c) is not null;

    /// <summary>Starting from the wide network, a declared section needs it.</summary>
    public override bool NeedsWide(ExperimentConfig c) => StartsFrom.Contains("wide") && Section(c) is not null;

    internal sealed override PlannedStage Plan(SeedPlan p) => Plan(p, Section(p.Config)!);

    internal abstract PlannedStage Plan(SeedPlan p, TSection section);
}

/// <summary>
/// A baseline or ablation: its section is the experiment file's top-level key named as the stage (<see cref="ExperimentStage.Name"/>),
/// read as <typeparamref name="TSection"/> into <see cref="ExperimentConfig.Baselines"/>. <see cref="Config.ConfigLoader"/>
/// reads, overrides (<c>--set NAME.key=value</c>), validates, writes and flattens it as it does the typed sections, and
/// suggests the key for a typo, from the <see cref="StageCatalogue"/>: a new baseline is this class's subclass with a
/// [StageOrder], and needs no property of <see cref="ExperimentConfig"/>.
/// </summary>
public abstract class BaselineStage<TSection> : ExperimentStage<TSection>
    where TSection : class, new()
{
    public sealed override TSection? Section(ExperimentConfig c) => c.Baseline<TSection>(Name);

    internal sealed override Type BaselineSection => typeof(TSection);
}

/// <summary>
/// A stage's place in the <see cref="StageCatalogue"/>'s run order (ascending; the numbers only order, they are
/// stored nowhere). Every concrete <see cref="ExperimentStage"/> with a public parameterless constructor carries its own.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class StageOrderAttribute(int order) : Attribute
{
    public int Order { get; } = order;
}
