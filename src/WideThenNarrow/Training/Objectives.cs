using WideThenNarrow.Data;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>Plain supervised classification: cross-entropy of the model's logits against class ids (N).</summary>
public sealed class ClassificationObjective : ITrainingObjective
{
    readonly nn.Module<ModelInput, Tensor> _model;
    readonly double _labelSmoothing;

    public ClassificationObjective(nn.Module<ModelInput, Tensor> model, double labelSmoothing = 0)
    {
        if (labelSmoothing is < 0 or >= 1)
            throw new WtnException($"label_smoothing must be in [0, 1), got {labelSmoothing}");
        _model = model;
        _labelSmoothing = labelSmoothing;
    }

    public ObjectiveOutput Compute(Batch batch, bool training)
    {
        var logits = _model.call(batch.Input);
        var loss = nn.functional.cross_entropy(
            logits.to(ScalarType.Float32),
            batch.Labels,
            label_smoothing: _labelSmoothing
        );
        return new ObjectiveOutput(loss, logits);
    }
}

/// <summary>
/// Masked-LM: mean cross-entropy over positions whose label is not -100; labels (N,T). A batch with no labelled
/// position (possible with short rows: 15% of few tokens) has loss 0 and zero gradients, not 0/0 = NaN. A staged
/// model (BERT) runs its MLM head on the labelled positions only (<see cref="MaskedLogits"/>: logits (M,V) and their
/// labels (M), as BERT's original pretraining code gathers masked_lm_positions), which saves the head's work and
/// memory on the other 85 % of positions; any other model gives logits (N,T,V).
/// </summary>
public sealed class MaskedLmObjective : ITrainingObjective
{
    public const long IgnoreIndex = -100;
    readonly nn.Module<ModelInput, Tensor> _model;

    public MaskedLmObjective(nn.Module<ModelInput, Tensor> model) => _model = model;

    /// <summary>
    /// The head's scores at the labelled positions only, in row-major order: logits (M, V) and labels (M), M the number
    /// of labels that are not -100. The head runs per position, so these rows equal the full logits' rows (to float
    /// rounding: the matrix products see fewer rows).
    /// </summary>
    public static (Tensor Logits, Tensor Labels) MaskedLogits(StagedModel model, ModelInput input, Tensor labels)
    {
        var flat = labels.reshape(-1);
        using var keep = Labelled(labels);
        using var h = model.ForwardTrunk(input);
        using var all = h.reshape(-1, h.shape[^1]);
        using var rows = all.index_select(0, keep);
        return (model.ForwardHead(rows, input), flat.index_select(0, keep));
    }

    /// <summary>The flat (row-major) indices of the labelled positions of labels (N,T): the order <see cref="MaskedLogits"/> gives its rows in.</summary>
    public static Tensor Labelled(Tensor labels) => labels.reshape(-1).ne(IgnoreIndex).nonzero().squeeze(1);

    public ObjectiveOutput Compute(Batch batch, bool training)
    {
        if (_model is StagedModel staged)
        {
            if (batch.Labels.dim() != 2)
                throw new WtnException($"masked-LM expects labels (N,T), got [{string.Join(",", batch.Labels.shape)}]");
            var (z, y) = MaskedLogits(staged, batch.Input, batch.Labels);
            var total = nn.functional.cross_entropy(z.to(ScalarType.Float32), y, reduction: nn.Reduction.Sum);
            return new ObjectiveOutput(total / Math.Max(1, y.shape[0]), z, Targets: y);
        }
        var logits = _model.call(batch.Input);
        if (logits.dim() != 3 || batch.Labels.dim() != 2)
            throw new WtnException(
                $"masked-LM expects logits (N,T,V) and labels (N,T), got [{string.Join(",", logits.shape)}] and [{string.Join(",", batch.Labels.shape)}]"
            );
        var labels = batch.Labels.flatten();
        var sum = nn.functional.cross_entropy(
            logits.flatten(0, 1).to(ScalarType.Float32),
            labels,
            ignore_index: IgnoreIndex,
            reduction: nn.Reduction.Sum
        );
        var labelled = labels.ne(IgnoreIndex).sum().clamp_min(1).to(ScalarType.Float32);
        return new ObjectiveOutput(sum / labelled, logits);
    }
}
