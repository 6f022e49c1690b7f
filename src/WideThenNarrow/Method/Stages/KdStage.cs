namespace WideThenNarrow.Method.Stages;

/// <summary>Baseline: the thin network from scratch with stage 3's loss, distilling the wide network (Hinton et al. 2015).</summary>
[StageOrder(80)]
public sealed class KdStage : BaselineStage<DistillStageConfig>
{
    public override string Name => "kd";
    public override string Model => "thin";
    public override IReadOnlyList<string> StartsFrom => ["wide"];
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new("thin: kd", Model, ["wide", Name], 70)];

    internal override PlannedStage Plan(SeedPlan p, DistillStageConfig kd) => FromScratch(p, this, Name, kd);

    /// <summary><paramref name="stage"/>: a fresh thin network distilling the wide one under <paramref name="recipe"/>, whose settings are under <paramref name="sectionKey"/>.</summary>
    internal static PlannedStage FromScratch(
        SeedPlan p,
        ExperimentStage stage,
        string sectionKey,
        DistillStageConfig recipe
    ) => p.Add(stage, sectionKey, recipe, "thin+wide", p.Cost(recipe.Train, "thin", "wide"), () =>
        {
            var teacher = p.Wide();
            var m = p.Ctx.Build("thin");
            return (m, () => DistillStage.Run(p.Ctx, stage.Name, m, teacher, recipe, p.Cancel));
        });
}
