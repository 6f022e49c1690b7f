using WideThenNarrow.Models;
using WideThenNarrow.Training;

namespace WideThenNarrow.Method.Stages;

/// <summary>Stage 3 (from the imitation-initialised thin network) and the kd baseline (from scratch).</summary>
public static class DistillStage
{
    public static StageSummary Run(
        StageContext ctx,
        string stage,
        StagedModel student,
        StagedModel? teacher,
        DistillStageConfig c,
        CancellationToken cancel,
        double priorSeconds = 0
    )
    {
        var dir = ctx.StageDir(stage);
        var objective = new DistillationObjective(student, teacher, c.Alpha, c.Temperature);
        var r = ctx.Train(
            stage,
            Path.Combine(dir, "train"),
            new Dictionary<string, TorchSharp.torch.nn.Module> { ["model"] = student },
            [ParameterGroup.Of("model", student)],
            objective,
            c.Train,
            evaluate: true,
            evalOnly: teacher is null ? null : [teacher],
            cancel: cancel
        );
        return new StageSummary
        {
            Stage = stage,
            Model = "thin",
            WallSeconds = priorSeconds + r.WallTime.TotalSeconds,
            ValBestTop1 = r.Best?.EvalTop1,
            ValTop1 = r.Last?.EvalTop1,
            Curve = StageSummary.CurveOf(r),
        };
    }
}
