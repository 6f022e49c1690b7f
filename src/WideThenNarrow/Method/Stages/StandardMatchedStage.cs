namespace WideThenNarrow.Method.Stages;

/// <summary>
/// Baseline: the thin network from scratch, standard recipe, for the epochs whose training compute matches stages
/// 2 + 3 together (their estimated multiply-accumulates; the section's own epochs and steps are replaced).
/// </summary>
public sealed class StandardMatchedStage : ExperimentStage<StandardStageConfig>
{
    public override string Name => "standard_matched";
    public override string Model => "thin";
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new("thin: standard, compute-matched", Model, [Name], 50)];
    public override StandardStageConfig? Section(ExperimentConfig c) => c.StandardMatched;
    public override bool IsDeclared(ExperimentConfig c) => c is { StandardMatched: not null, Imitation: not null, Finetune: not null };

    public override string? Invalid(ExperimentConfig c) => c is { StandardMatched: not null, Finetune: null }
        ? "standard_matched is measured against stages 2 + 3: add 'imitation' and 'finetune' sections" : null;

    internal override PlannedStage Plan(SeedPlan p, StandardStageConfig sm)
    {
        // As many epochs of the standard recipe as stages 2 + 3 cost, at least one.
        double method = p.Planned("imitation").Cost + p.Planned("finetune").Cost;
        int epochs = Math.Max(1, (int)Math.Round(method / (p.Ctx.TrainData.BatchesPerEpoch * 3.0 * p.Size("thin").Macs)));
        var matched = sm.Train with { Epochs = epochs, Steps = 0 };
        return p.Add(this, Name, sm with { Train = matched }, "thin", p.Cost(matched, "thin"), () =>
        {
            var m = p.Ctx.Build("thin");
            return (m, () => StandardStage.Run(p.Ctx, Name, "thin", m, matched, p.Cancel));
        });
    }
}
