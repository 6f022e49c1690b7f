namespace WideThenNarrow.Method.Stages;

/// <summary>Stage 3: the imitation-initialised thin network fine-tuned with the task loss, distilling the wide network when alpha &gt; 0.</summary>
[StageOrder(30)]
public sealed class FinetuneStage : ExperimentStage<DistillStageConfig>
{
    /// <summary>The report row of the method, which every other row is compared with.</summary>
    public const string Method = "thin: go wide, then narrow";

    public override string Name => "finetune";
    public override string Model => "thin";
    public override IReadOnlyList<string> StartsFrom => ["imitation"];
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new(Method, Model, ["wide", "imitation", Name], 10)];

    public override DistillStageConfig? Section(ExperimentConfig c) => c.Finetune;

    public override bool IsDeclared(ExperimentConfig c) => c is { Imitation: not null, Finetune: not null };

    public override bool NeedsWide(ExperimentConfig c) => c.Finetune is { Alpha: > 0 };

    public override string? Invalid(ExperimentConfig c) =>
        c is { Finetune: not null, Imitation: null } ? "finetune continues stage 2: add an 'imitation' section" : null;

    internal override PlannedStage Plan(SeedPlan p, DistillStageConfig ft)
    {
        string? teacher = ft.Alpha > 0 ? "wide" : null;
        return p.Add(this, Name, ft, teacher is null ? "thin" : "thin+wide", p.Cost(ft.Train, "thin", teacher), () =>
        {
            var wide = teacher is null ? null : p.Wide();
            var thin = p.Load("imitation", "thin");
            return (thin, () => DistillStage.Run(p.Ctx, Name, thin, wide, ft, p.Cancel));
        });
    }
}
