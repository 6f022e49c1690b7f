using WideThenNarrow.Models;
using WideThenNarrow.Training;

namespace WideThenNarrow.Method.Stages;

/// <summary>The standard recipe: the dataset's task loss (classes or masked tokens), every parameter trains (wide, standard, deeper).</summary>
public static class StandardStage
{
    public static StageSummary Run(StageContext ctx, string stage, string modelKey, StagedModel model, Config.TrainerSettings settings, CancellationToken cancel)
    {
        var dir = ctx.StageDir(stage);
        var r = ctx.Train(stage, Path.Combine(dir, "train"), new Dictionary<string, TorchSharp.torch.nn.Module> { ["model"] = model },
            [ParameterGroup.Of("model", model)], ctx.Dataset.TaskObjective(model), settings, evaluate: true, cancel: cancel);
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
