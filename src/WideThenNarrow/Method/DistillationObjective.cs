using WideThenNarrow.Data;
using WideThenNarrow.Losses;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// Stage 3 (fine-tuning the thin network) and the kd baseline: <see cref="DistillationLoss"/> with the wide
/// network as teacher, in eval mode under no_grad. With a = 0 the teacher is never run (plain fine-tuning).
/// </summary>
public sealed class DistillationObjective : ITrainingObjective
{
    readonly StagedModel student;
    readonly StagedModel? teacher;
    readonly double alpha,
        temperature;

    public DistillationObjective(StagedModel student, StagedModel? teacher, double alpha, double temperature)
    {
        if (alpha is < 0 or > 1)
            throw new WtnException($"kd.alpha must be in [0, 1], got {alpha}");
        if (temperature <= 0)
            throw new WtnException($"kd.temperature must be positive, got {temperature}");
        if (alpha > 0 && teacher is null)
            throw new WtnException("kd.alpha > 0 needs a teacher (the wide network)");
        this.student = student;
        this.teacher = alpha > 0 ? teacher : null;
        this.alpha = alpha;
        this.temperature = temperature;
    }

    public ObjectiveOutput Compute(Batch batch, bool training)
    {
        // Masked LM (labels (N,T)): both networks run their heads on the masked positions only, where both terms of
        // the loss live (MaskedLmObjective.MaskedLogits); the logits are then (M,V) against labels (M).
        bool masked = batch.Labels.dim() == 2;
        var (zs, labels) = masked
            ? MaskedLmObjective.MaskedLogits(student, batch.Input, batch.Labels)
            : (student.call(batch.Input), batch.Labels);
        var targets = masked ? labels : null;
        if (!training || teacher is null)
        {
            // Evaluation reports the task loss, so every method's eval loss means the same thing.
            var (task, _, _) = DistillationLoss.Compute(zs, null, labels, 0, temperature);
            return new ObjectiveOutput(task, zs, Targets: targets);
        }
        Tensor zb;
        using (no_grad())
        {
            teacher.eval();
            zb = masked
                ? MaskedLmObjective.MaskedLogits(teacher, batch.Input, batch.Labels).Logits
                : teacher.call(batch.Input);
        }
        var (total, taskPart, kd) = DistillationLoss.Compute(zs, zb, labels, alpha, temperature);
        return new ObjectiveOutput(
            total,
            zs,
            new Dictionary<string, Tensor> { ["task"] = taskPart, ["kd"] = kd },
            targets
        );
    }
}
