using WideThenNarrow.Data;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>The wide network's activations at chosen points for a batch (called under no_grad).</summary>
public interface IWideActivationSource
{
    /// <summary>Activations at <paramref name="indices"/> (ascending or not), in the same order.</summary>
    Tensor[] Points(Batch batch, params int[] indices);
}

/// <summary>Runs the wide network (eval mode) up to the highest requested point on every call.</summary>
public sealed class OnTheFlyWideActivations : IWideActivationSource
{
    readonly StagedModel wide;

    public OnTheFlyWideActivations(StagedModel wide) => this.wide = wide;

    public Tensor[] Points(Batch batch, params int[] indices)
    {
        wide.eval();
        var all = wide.ForwardPoints(batch.Input, indices.Max());
        return indices.Select(i => all[i]).ToArray();
    }
}
