using WideThenNarrow.Models;
using WideThenNarrow.Training;

namespace WideThenNarrow.Method.Stages;

/// <summary>Baseline: the thin network from scratch with the standard recipe (the dataset's task loss, every parameter trains).</summary>
[StageOrder(50)]
public sealed class StandardStage : ExperimentStage<StandardStageConfig>
{
    public override string Name => "standard";
    public override string Model => "thin";
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new("thin: standard", Model, [Name], 40)];

    public override StandardStageConfig? Section(ExperimentConfig c) => c.Standard;

    internal override PlannedStage Plan(SeedPlan p, StandardStageConfig st) => FromScratch(p, this, st);

    /// <summary><paramref name="stage"/>: a fresh thin network under the standard recipe of <paramref name="st"/>, whose settings are under the stage's name.</summary>
    internal static PlannedStage FromScratch(SeedPlan p, ExperimentStage stage, StandardStageConfig st) =>
        p.Add(stage, stage.Name, st, "thin", p.Cost(st.Train, "thin"), () =>
        {
            var m = p.Ctx.Build("thin");
            return (m, () => Run(p.Ctx, stage.Name, "thin", m, st.Train, p.Cancel));
        });

    /// <summary>Trains <paramref name="model"/> with the standard recipe in STAGE/train (also the wide, deeper and downstream stages' run).</summary>
    public static StageSummary Run(
        StageContext ctx,
        string stage,
        string modelKey,
        StagedModel model,
        Config.TrainerSettings settings,
        CancellationToken cancel
    )
    {
        var dir = ctx.StageDir(stage);
        var r = ctx.Train(
            stage,
            Path.Combine(dir, "train"),
            new Dictionary<string, TorchSharp.torch.nn.Module> { ["model"] = model },
            [ParameterGroup.Of("model", model)],
            ctx.Dataset.TaskObjective(model),
            settings,
            evaluate: true,
            cancel: cancel
        );
        return new StageSummary
        {
            Stage = stage,
            Model = modelKey,
            WallSeconds = r.WallTime.TotalSeconds,
            ValBestTop1 = r.Best?.EvalTop1,
            ValTop1 = r.Last?.EvalTop1,
            Curve = StageSummary.CurveOf(r),
        };
    }
}
