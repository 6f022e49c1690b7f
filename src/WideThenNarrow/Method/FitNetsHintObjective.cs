using TorchSharp;
using WideThenNarrow.Data;
using WideThenNarrow.Losses;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// FitNets' hint stage (Romero et al. 2015): the thin network up to its middle point ("guided layer") learns,
/// through a learned regressor (1x1 conv / linear), to reproduce the wide network's middle point ("hint").
/// The kd stage follows as a <see cref="DistillationObjective"/> run.
/// </summary>
public sealed class FitNetsHintObjective : ITrainingObjective
{
    readonly StagedModel student,
        teacher;
    readonly int studentPoint,
        teacherPoint;

    public FitNetsHintObjective(StagedModel student, StagedModel teacher)
    {
        this.student = student;
        this.teacher = teacher;
        studentPoint = (student.BlockCount - 1) / 2;
        teacherPoint = (teacher.BlockCount - 1) / 2;
        var sp = student.Points[studentPoint];
        var tp = teacher.Points[teacherPoint];
        if (sp.Layout != tp.Layout)
            throw new WtnException($"fitnets: middle points differ in layout ({sp.Layout} vs {tp.Layout})");
        Regressor =
            sp.Layout == ActivationLayout.Channels ? nn.Conv2d(sp.Width, tp.Width, 1) : nn.Linear(sp.Width, tp.Width);
    }

    /// <summary>The learned map from the student's guided layer to the teacher's hint (trains with the student).</summary>
    public nn.Module<Tensor, Tensor> Regressor { get; }

    /// <summary>The student's parameters this stage trains: blocks up to the guided layer.</summary>
    public IEnumerable<TorchSharp.Modules.Parameter> StudentParameters() =>
        Enumerable.Range(0, studentPoint + 1).SelectMany(student.BlockParameters);

    public ObjectiveOutput Compute(Batch batch, bool training)
    {
        Tensor hint;
        using (no_grad())
        {
            teacher.eval();
            hint = teacher.ForwardPoints(batch.Input, teacherPoint)[^1];
        }
        var guided = student.ForwardPoints(batch.Input, studentPoint)[^1];
        var loss = ImitationLoss.Mse(
            Regressor.call(guided),
            hint,
            student.Points[studentPoint].Layout,
            normalize: false
        );
        return new ObjectiveOutput(loss, Parts: new Dictionary<string, Tensor> { ["hint_mse"] = loss });
    }
}
