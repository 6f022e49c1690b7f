namespace WideThenNarrow.Method.Stages;

/// <summary>
/// Baseline: the thin network from scratch, standard recipe, for the epochs whose training compute matches stages
/// 2 + 3 together (their estimated multiply-accumulates; the section's own epochs and steps are replaced), or for the
/// steps when the section's budget is in steps (steps &gt; 0): masked-LM pretraining, where one epoch can be far more
/// than stages 2 + 3 cost.
/// </summary>
[StageOrder(70)]
public sealed class StandardMatchedStage : BaselineStage<StandardStageConfig>
{
    public override string Name => "standard_matched";
    public override string Model => "thin";
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new("thin: standard, compute-matched", Model, [Name], 50)];

    public override bool IsDeclared(ExperimentConfig c) =>
        c is { Imitation: not null, Finetune: not null } && Section(c) is not null;

    public override string? Invalid(ExperimentConfig c) =>
        c is { Finetune: null } && Section(c) is not null
            ? "standard_matched is measured against stages 2 + 3: add 'imitation' and 'finetune' sections"
            : null;

    internal override PlannedStage Plan(SeedPlan p, StandardStageConfig sm)
    {
        // As many epochs (or steps) of the standard recipe as stages 2 + 3 cost, at least one.
        double method = p.Planned("imitation").Cost + p.Planned("finetune").Cost,
            perStep = 3.0 * p.Size("thin").Macs;
        var matched =
            sm.Train.Steps > 0
                ? sm.Train with
                {
                    Steps = Math.Max(1, (long)Math.Round(method / perStep)),
                }
                : sm.Train with
                {
                    Epochs = Math.Max(1, (int)Math.Round(method / (p.Ctx.TrainData.BatchesPerEpoch * perStep))),
                    Steps = 0,
                };
        return p.Add(this, Name, sm with { Train = matched }, "thin", p.Cost(matched, "thin"), () =>
        {
            var m = p.Ctx.Build("thin");
            return (m, () => StandardStage.Run(p.Ctx, Name, "thin", m, matched, p.Cancel));
        });
    }
}
