namespace WideThenNarrow.Method.Stages;

/// <summary>Baseline: the deeper thin network (models.deeper) from scratch, standard recipe.</summary>
[StageOrder(110)]
public sealed class DeeperStage : BaselineStage<StandardStageConfig>
{
    public override string Name => "deeper";
    public override string Model => "deeper";
    public override IReadOnlyList<string> Networks => ["thin", "deeper"];
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new("deeper: standard", Model, [Name], 90)];

    internal override PlannedStage Plan(SeedPlan p, StandardStageConfig dp) =>
        p.Add(this, Name, dp, "deeper", p.Cost(dp.Train, "deeper"), () =>
        {
            int thinBlocks;
            using (var thin = p.Ctx.Build("thin"))
                thinBlocks = thin.BlockCount;
            var m = p.Ctx.Build("deeper");
            if (m.BlockCount <= thinBlocks)
            {
                m.Dispose();
                throw new WtnException(
                    $"models.deeper ({p.Config.Models.Deeper!.Name}) must have more blocks than models.thin ({p.Config.Models.Thin.Name})"
                );
            }
            return (m, () => StandardStage.Run(p.Ctx, Name, "deeper", m, dp.Train, p.Cancel));
        });
}
