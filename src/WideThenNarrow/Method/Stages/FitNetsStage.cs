using TorchSharp;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method.Stages;

/// <summary>Baseline (Romero et al. 2015): a hint run (thin blocks up to the middle point + regressor), then a kd run.</summary>
[StageOrder(100)]
public sealed class FitNetsStage : BaselineStage<FitNetsStageConfig>
{
    public override string Name => "fitnets";
    public override string Model => "thin";
    public override IReadOnlyList<string> StartsFrom => ["wide"];
    public override bool Pretrained => true;
    public override IReadOnlyList<ReportRow> Rows => [new("thin: fitnets", Model, ["wide", Name], 80)];

    internal override PlannedStage Plan(SeedPlan p, FitNetsStageConfig fn)
    {
        double train = p.Cost(fn.Train, "thin", "wide");
        return p.Add(this, Name, fn, "thin+wide", p.Cost(fn.Hint, "thin", "wide") + train, () =>
        {
            var teacher = p.Wide();
            var m = p.Ctx.Build("thin");
            return (m, () => Run(p.Ctx, m, teacher, fn, p.Cancel));
        }) with { TrainCost = train };
    }

    public static StageSummary Run(
        StageContext ctx,
        StagedModel student,
        StagedModel teacher,
        FitNetsStageConfig c,
        CancellationToken cancel
    )
    {
        const string stage = "fitnets";
        var dir = ctx.StageDir(stage);
        var hint = new FitNetsHintObjective(student, teacher);
        hint.Regressor.to(ctx.Device);
        var modules = new Dictionary<string, nn.Module> { ["model"] = student, ["regressor"] = hint.Regressor };
        var groups = new[]
        {
            new ParameterGroup("guided", hint.StudentParameters().ToList()),
            ParameterGroup.Of("regressor", hint.Regressor),
        };
        var h = ctx.Train(
            "fitnets-hint",
            Path.Combine(dir, "hint"),
            modules,
            groups,
            hint,
            c.Hint,
            evaluate: false,
            evalOnly: [teacher],
            cancel: cancel
        );
        return DistillStage.Run(
            ctx,
            stage,
            student,
            teacher,
            new DistillStageConfig
            {
                Alpha = c.Alpha,
                Temperature = c.Temperature,
                Train = c.Train,
            },
            cancel,
            h.WallTime.TotalSeconds
        );
    }
}
