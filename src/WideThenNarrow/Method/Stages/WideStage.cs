namespace WideThenNarrow.Method.Stages;

/// <summary>Stage 1: the wide network, trained with the standard recipe (an imported one is no stage: <see cref="SeedPlan.Wide"/>).</summary>
[StageOrder(10)]
public sealed class WideStage : ExperimentStage<WideStageConfig>
{
    public override string Name => "wide";
    public override string Model => "wide";
    public override IReadOnlyList<ReportRow> Rows => [new("wide (teacher)", Model, [Name], 100)];

    public override WideStageConfig? Section(ExperimentConfig c) => c.Wide is { Import: null } w ? w : null;

    internal override PlannedStage Plan(SeedPlan p, WideStageConfig w) =>
        p.Add(this, Name, w, "wide", p.Cost(w.Train, "wide"), () =>
        {
            var m = p.Ctx.Build("wide");
            return (m, () => StandardStage.Run(p.Ctx, Name, "wide", m, w.Train, p.Cancel));
        });
}
