using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Data.Text;

/// <summary><paramref name="MaxLength"/> includes [CLS] and [SEP]; longer texts keep their beginning.</summary>
public sealed record ClassificationBatchOptions(
    int BatchSize = 32,
    int MaxLength = 256,
    int Seed = 0,
    bool Shuffle = true,
    SpecialTokenIds? Specials = null
);

/// <summary>
/// Sequence-classification batches: [CLS] text [SEP], truncated to MaxLength, padded with [PAD] to the longest row
/// of the batch, with attention mask (1 real, 0 pad) and token type ids (all 0, one segment). Labels are class ids.
/// </summary>
public sealed class SequenceClassificationBatchSource : IBatchSource
{
    readonly TokenizedCorpus corpus;
    readonly int[] labels;
    readonly ClassificationBatchOptions options;

    public SequenceClassificationBatchSource(
        TokenizedCorpus corpus,
        IReadOnlyList<int> labels,
        ClassificationBatchOptions options
    )
    {
        if (labels.Count != corpus.Count)
            throw new ArgumentException($"{labels.Count} labels for {corpus.Count} documents");
        if (options.MaxLength < 3)
            throw new WtnException($"max length {options.MaxLength}: must be at least 3 ([CLS] token [SEP])");
        if (options.BatchSize < 1)
            throw new WtnException($"batch size {options.BatchSize}: must be at least 1");
        this.corpus = corpus;
        this.labels = [.. labels];
        this.options = options;
    }

    public int Count => corpus.Count;
    public int BatchSize => options.BatchSize;
    public int BatchesPerEpoch => (Count + BatchSize - 1) / BatchSize;
    public int ClassCount => labels.Max() + 1;

    public IEnumerable<Batch> Epoch(int epoch, Device device, int skipBatches = 0)
    {
        var order = Enumerable.Range(0, Count).ToArray();
        if (options.Shuffle)
            new Random(Seeds.Mix(options.Seed, epoch)).Shuffle(order);
        int room = options.MaxLength - 2;
        for (int b = Math.Max(0, skipBatches); b < BatchesPerEpoch; b++)
        {
            int first = b * BatchSize,
                n = Math.Min(BatchSize, Count - first);
            int t = 2;
            for (int r = 0; r < n; r++)
                t = Math.Max(t, Math.Min(room, corpus[order[first + r]].Length) + 2);
            // Fresh arrays per batch: torch.tensor pins and shares a managed array instead of copying it.
            var specials = options.Specials ?? SpecialTokenIds.Ours;
            var ids = new long[n * t];
            if (specials.Pad != 0)
                ids.AsSpan().Fill(specials.Pad);
            var mask = new long[n * t];
            var y = new long[n];
            for (int r = 0; r < n; r++)
            {
                var doc = corpus[order[first + r]];
                int len = Math.Min(room, doc.Length);
                var row = ids.AsSpan(r * t, t);
                row[0] = specials.Cls;
                for (int j = 0; j < len; j++)
                    row[1 + j] = doc[j];
                row[1 + len] = specials.Sep;
                mask.AsSpan(r * t, len + 2).Fill(1);
                y[r] = labels[order[first + r]];
            }
            long[] shape = [n, t];
            var input = tensor(ids, shape).to(device);
            var attention = tensor(mask, shape).to(device);
            var types = zeros(shape, ScalarType.Int64, device);
            var target = tensor(y, [n]).to(device);
            yield return new Batch(new ModelInput(input, attention, types), target);
        }
    }
}
