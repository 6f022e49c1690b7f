namespace WideThenNarrow.Method.Stages;

/// <summary>
/// Ablation: kd from scratch under stage 3's exact recipe (its alpha, temperature, optimizer, schedule and epochs), so
/// that the only difference from the method is the warm start: imitation's share at the same fine-tuning compute.
/// </summary>
[StageOrder(90)]
public sealed class KdFinetuneRecipeStage : BaselineStage<DerivedStageConfig>
{
    public override string Name => "kd_finetune_recipe";
    public override string Model => "thin";
    public override IReadOnlyList<string> StartsFrom => ["wide"];
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new("thin: kd, stage 3's recipe", Model, ["wide", Name], 75)];

    public override bool IsDeclared(ExperimentConfig c) => c is { Finetune: not null } && Section(c) is not null;

    public override string? Invalid(ExperimentConfig c) =>
        c is { Finetune: null } && Section(c) is not null
            ? "kd_finetune_recipe takes its recipe from stage 3: add a 'finetune' section"
            : null;

    /// <summary>
    /// Its settings are finetune's (with the section's own lr, when set): the recipe it shares with the method is what it
    /// is compared under.
    /// </summary>
    internal override PlannedStage Plan(SeedPlan p, DerivedStageConfig own) =>
        KdStage.FromScratch(p, this, "finetune", own.Apply(p.Config.Finetune!));
}
