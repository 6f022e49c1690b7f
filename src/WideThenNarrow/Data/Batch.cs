using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Data;

/// <summary>
/// One batch on the target device. <see cref="Labels"/> holds class ids (N) for classification, or token
/// ids (N,T) for masked-LM with -100 at positions that carry no loss (PyTorch's ignore_index). The batch
/// owns its tensors: callers create batches inside a dispose scope.
/// </summary>
public sealed class Batch : IDisposable
{
    public Batch(ModelInput input, Tensor labels)
    {
        Input = input;
        Labels = labels;
    }

    public ModelInput Input { get; }
    public Tensor Labels { get; }
    public long Size => Input.Input.shape[0];

    public void Dispose()
    {
        Input.Input.Dispose();
        Input.AttentionMask?.Dispose();
        Input.TokenTypeIds?.Dispose();
        Labels.Dispose();
    }
}

/// <summary>A finite, seeded stream of batches: one call to <see cref="Epoch"/> per pass over the data.</summary>
public interface IBatchSource
{
    /// <summary>Examples in the split.</summary>
    int Count { get; }

    int BatchSize { get; }

    /// <summary>Batches per epoch (the last partial batch is kept unless the source drops it).</summary>
    int BatchesPerEpoch { get; }

    /// <summary>
    /// The batches of one epoch, shuffled (if the source shuffles) by a generator seeded from the source's
    /// seed and <paramref name="epoch"/>, so epoch k is the same on every run and resume can start at any
    /// batch with <paramref name="skipBatches"/>.
    /// </summary>
    IEnumerable<Batch> Epoch(int epoch, Device device, int skipBatches = 0);
}

public static class BatchSourceExtensions
{
    /// <summary>
    /// One pass (the source's epoch 0) over <paramref name="source"/>, or its first <paramref name="limit"/> batches,
    /// under no_grad: each batch lives in its own dispose scope, so whatever <paramref name="visit"/> computes from it is
    /// freed before the next one loads. <paramref name="visit"/> gets the batch and its 1-based index; returns the
    /// number of batches visited. Evaluation and batch-norm recalibration share it.
    /// </summary>
    public static int ForEachNoGrad(
        this IBatchSource source,
        Device device,
        Action<Batch, int> visit,
        int limit = int.MaxValue
    )
    {
        int seen = 0;
        using var _ = no_grad();
        using var batches = source.Epoch(0, device).GetEnumerator();
        while (seen < limit)
        {
            using var scope = NewDisposeScope();
            if (!batches.MoveNext())
                break;
            using var batch = batches.Current;
            visit(batch, ++seen);
        }
        return seen;
    }
}
