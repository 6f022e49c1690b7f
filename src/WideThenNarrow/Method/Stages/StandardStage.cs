using WideThenNarrow.Models;
using WideThenNarrow.Training;

namespace WideThenNarrow.Method.Stages;

/// <summary>
/// A baseline: the thin network from scratch with the standard recipe (the dataset's task loss, every parameter
/// trains), under its own section: standard, or another one in a subclass (<see cref="StandardLongStage"/>).
/// </summary>
[StageOrder(50)]
public class StandardStage(string name, Func<ExperimentConfig, StandardStageConfig?> section, string row, int position)
    : ExperimentStage<StandardStageConfig>
{
    /// <summary>The standard baseline, under the standard section.</summary>
    public StandardStage()
        : this("standard", c => c.Standard, "thin: standard", 40) { }

    public override string Name => name;
    public override string Model => "thin";
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new(row, Model, [Name], position)];

    public override StandardStageConfig? Section(ExperimentConfig c) => section(c);

    internal override PlannedStage Plan(SeedPlan p, StandardStageConfig st) =>
        p.Add(this, Name, st, "thin", p.Cost(st.Train, "thin"), () =>
        {
            var m = p.Ctx.Build("thin");
            return (m, () => Run(p.Ctx, Name, "thin", m, st.Train, p.Cancel));
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
