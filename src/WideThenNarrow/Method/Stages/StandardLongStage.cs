namespace WideThenNarrow.Method.Stages;

/// <summary>Baseline: the thin network from scratch with the standard recipe under a longer budget (its own section, standard_long).</summary>
[StageOrder(60)]
public sealed class StandardLongStage : BaselineStage<StandardStageConfig>
{
    public override string Name => "standard_long";
    public override string Model => "thin";
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new("thin: standard, long budget", Model, [Name], 60)];

    internal override PlannedStage Plan(SeedPlan p, StandardStageConfig st) => StandardStage.FromScratch(p, this, st);
}
