using static TorchSharp.torch;

namespace WideThenNarrow.Losses;

/// <summary>
/// Stage 3 and the kd baseline (Hinton et al. 2015):
/// <c>(1 - a) * task + a * T^2 * KL(softmax(z_B / T) || softmax(z_S / T))</c>. Logits are (N, classes) with
/// labels (N), or (N, T, vocab) with labels (N, T) where -100 marks positions without loss (masked LM):
/// then both terms run over the labelled (masked) positions only.
/// </summary>
public static class DistillationLoss
{
    public const long IgnoreIndex = -100;

    /// <summary>Returns the total and its two parts (task, kd); kd is zero and the teacher unused when a = 0.</summary>
    public static (Tensor Total, Tensor Task, Tensor Kd) Compute(
        Tensor studentLogits,
        Tensor? teacherLogits,
        Tensor labels,
        double alpha,
        double temperature
    )
    {
        var (zs, zb, y) = Flatten(studentLogits, teacherLogits, labels);
        // Sum over rows divided by at least 1: a masked-LM batch without a masked position gives 0, not 0/0 = NaN.
        double rows = Math.Max(1, zs.shape[0]);
        var task = nn.functional.cross_entropy(zs, y, ignore_index: IgnoreIndex, reduction: nn.Reduction.Sum) / rows;
        if (alpha == 0 || zb is null)
            return (task, task, zeros_like(task));
        var kd = KlDivergence(zs, zb, temperature) * (temperature * temperature);
        return ((1 - alpha) * task + alpha * kd, task, kd);
    }

    /// <summary>KL(softmax(teacher/T) || softmax(student/T)) averaged over rows (0 when there are none).</summary>
    public static Tensor KlDivergence(Tensor studentLogits, Tensor teacherLogits, double temperature)
    {
        var logPs = nn.functional.log_softmax(studentLogits / temperature, 1);
        var logPb = nn.functional.log_softmax(teacherLogits / temperature, 1);
        return (logPb.exp() * (logPb - logPs)).sum() / Math.Max(1, studentLogits.shape[0]);
    }

    static (Tensor Student, Tensor? Teacher, Tensor Labels) Flatten(Tensor zs, Tensor? zb, Tensor y)
    {
        if (zs.dim() == 2)
            return (zs, zb, y);
        // Masked LM: keep only labelled positions so the KL, like the task loss, covers masked tokens only.
        var vocab = zs.shape[^1];
        var keep = y.reshape(-1).ne(IgnoreIndex).nonzero().squeeze(1);
        return (
            zs.reshape(-1, vocab).index_select(0, keep),
            zb?.reshape(-1, vocab).index_select(0, keep),
            y.reshape(-1).index_select(0, keep)
        );
    }
}
