namespace WideThenNarrow.Method.Stages;

/// <summary>Ablation: stage 3 with the fine-tuning recipe but no distillation (alpha = 0), to separate imitation's share from KD's.</summary>
[StageOrder(40)]
public sealed class FinetuneNoKdStage : BaselineStage<DerivedStageConfig>
{
    public override string Name => "finetune_no_kd";
    public override string Model => "thin";
    public override IReadOnlyList<string> StartsFrom => ["imitation"];
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows =>
        [new("thin: method without kd", Model, ["wide", "imitation", Name], 20)];

    public override bool IsDeclared(ExperimentConfig c) =>
        c is { Imitation: not null, Finetune: not null } && Section(c) is not null;

    public override string? Invalid(ExperimentConfig c) =>
        c is { Finetune: null } && Section(c) is not null
            ? "finetune_no_kd is measured against stages 2 + 3: add 'imitation' and 'finetune' sections"
            : null;

    /// <summary>
    /// Its settings are finetune's with alpha 0 (and the section's own lr, when set): the recipe it shares is what it
    /// is compared under.
    /// </summary>
    internal override PlannedStage Plan(SeedPlan p, DerivedStageConfig own)
    {
        var plain = own.Apply(p.Config.Finetune!) with { Alpha = 0 };
        return p.Add(this, "finetune", plain, "thin", p.Cost(plain.Train, "thin"), () =>
        {
            var thin = p.Load("imitation", "thin");
            return (thin, () => DistillStage.Run(p.Ctx, Name, thin, null, plain, p.Cancel));
        });
    }
}
