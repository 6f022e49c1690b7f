using TorchSharp;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method.Stages;

/// <summary>The fitnets baseline: a hint run (thin blocks up to the middle point + regressor), then a kd run.</summary>
public static class FitNetsStage
{
    public static StageSummary Run(StageContext ctx, StagedModel student, StagedModel teacher, FitNetsStageConfig c, CancellationToken cancel)
    {
        const string stage = "fitnets";
        var dir = ctx.StageDir(stage);
        var hint = new FitNetsHintObjective(student, teacher);
        hint.Regressor.to(ctx.Device);
        var modules = new Dictionary<string, nn.Module> { ["model"] = student, ["regressor"] = hint.Regressor };
        var groups = new[] { new ParameterGroup("guided", hint.StudentParameters().ToList()), ParameterGroup.Of("regressor", hint.Regressor) };
        var h = ctx.Train("fitnets-hint", Path.Combine(dir, "hint"), modules, groups, hint, c.Hint, evaluate: false, evalOnly: [teacher], cancel: cancel);
        return DistillStage.Run(ctx, stage, student, teacher, new DistillStageConfig { Alpha = c.Alpha, Temperature = c.Temperature, Train = c.Train }, cancel, h.WallTime.TotalSeconds);
    }
}
