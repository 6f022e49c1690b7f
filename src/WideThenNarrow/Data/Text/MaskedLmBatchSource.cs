using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Data.Text;

/// <summary>
/// Masked-LM settings (BERT's): <paramref name="SequenceLength"/> includes [CLS] and [SEP];
/// <paramref name="MaskProbability"/> of the non-special tokens are selected; of those, <paramref name="MaskFraction"/>
/// become [MASK], <paramref name="RandomFraction"/> a random regular token, the rest stay.
/// </summary>
public sealed record MaskedLmOptions(
    int BatchSize = 32,
    int SequenceLength = 128,
    double MaskProbability = 0.15,
    double MaskFraction = 0.8,
    double RandomFraction = 0.1,
    int Seed = 0,
    bool Shuffle = true,
    SpecialTokenIds? Specials = null
);

/// <summary>
/// Masked-LM batches over packed text: all documents concatenated, separated by [SEP], cut into windows of
/// SequenceLength - 2 tokens, each sent as [CLS] window [SEP] (the last window padded). Window order depends only on
/// (seed, epoch) and a window's masks only on (seed, epoch, window), so an epoch is identical on every run, resume can
/// skip batches, and an evaluation scores the same masked tokens whatever its batch size.
/// Labels hold the original id at selected positions and -100 elsewhere.
/// </summary>
public sealed class MaskedLmBatchSource : IBatchSource
{
    public const long IgnoreIndex = -100;

    readonly int[] stream;
    readonly int window;
    readonly int vocabSize;
    readonly MaskedLmOptions options;
    readonly SpecialTokenIds specials;

    public MaskedLmBatchSource(TokenizedCorpus corpus, int vocabSize, MaskedLmOptions options)
    {
        if (options.SequenceLength < 3)
            throw new WtnException($"sequence length {options.SequenceLength}: must be at least 3 ([CLS] token [SEP])");
        if (options.BatchSize < 1)
            throw new WtnException($"batch size {options.BatchSize}: must be at least 1");
        if (
            options.MaskProbability is <= 0 or > 1
            || options.MaskFraction < 0
            || options.RandomFraction < 0
            || options.MaskFraction + options.RandomFraction > 1
        )
            throw new WtnException(
                $"masking {options.MaskProbability}/{options.MaskFraction}/{options.RandomFraction}: need 0 < probability <= 1 and mask + random fractions <= 1"
            );
        specials = options.Specials ?? SpecialTokenIds.Ours;
        if (vocabSize <= specials.FirstRegular)
            throw new WtnException($"vocab size {vocabSize}: has no regular tokens");
        this.vocabSize = vocabSize;
        this.options = options;
        window = options.SequenceLength - 2;
        stream = new int[corpus.TokenCount + Math.Max(0, corpus.Count - 1)];
        long at = 0;
        for (int d = 0; d < corpus.Count; d++)
        {
            if (d > 0)
                stream[at++] = specials.Sep;
            corpus[d].CopyTo(stream.AsSpan((int)at));
            at += corpus[d].Length;
        }
        Count = (int)((stream.LongLength + window - 1) / window);
        if (Count == 0)
            throw new WtnException("masked-LM corpus is empty: no tokens to pack");
    }

    public int Count { get; }
    public int BatchSize => options.BatchSize;
    public int BatchesPerEpoch => (Count + BatchSize - 1) / BatchSize;

    public IEnumerable<Batch> Epoch(int epoch, Device device, int skipBatches = 0)
    {
        var order = Enumerable.Range(0, Count).ToArray();
        if (options.Shuffle)
            new Random(Seeds.Mix(options.Seed, epoch)).Shuffle(order);
        int t = options.SequenceLength;
        for (int b = Math.Max(0, skipBatches); b < BatchesPerEpoch; b++)
        {
            int n = Math.Min(BatchSize, Count - b * BatchSize);
            // Fresh arrays per batch: torch.tensor pins and shares a managed array instead of copying it.
            var ids = new long[n * t];
            var mask = new long[n * t];
            var labels = new long[n * t];
            for (int r = 0; r < n; r++)
            {
                int sequence = order[b * BatchSize + r];
                FillRow(
                    sequence,
                    new Random(Seeds.Mix(options.Seed, epoch, sequence)),
                    ids.AsSpan(r * t, t),
                    mask.AsSpan(r * t, t),
                    labels.AsSpan(r * t, t)
                );
            }
            long[] shape = [n, t];
            var input = tensor(ids, shape).to(device);
            var attention = tensor(mask, shape).to(device);
            var types = zeros(shape, ScalarType.Int64, device);
            var target = tensor(labels, shape).to(device);
            yield return new Batch(new ModelInput(input, attention, types), target);
        }
    }

    void FillRow(int sequence, Random rng, Span<long> ids, Span<long> mask, Span<long> labels)
    {
        int start = sequence * window;
        int len = (int)Math.Min(window, stream.LongLength - start);
        ids.Fill(specials.Pad);
        mask.Clear();
        labels.Fill(IgnoreIndex);
        ids[0] = specials.Cls;
        for (int j = 0; j < len; j++)
            ids[1 + j] = stream[start + j];
        ids[1 + len] = specials.Sep;
        mask[..(len + 2)].Fill(1);
        for (int j = 1; j <= len; j++)
        {
            long original = ids[j];
            if (original < specials.FirstRegular || rng.NextDouble() >= options.MaskProbability)
                continue;
            labels[j] = original;
            double u = rng.NextDouble();
            if (u < options.MaskFraction)
                ids[j] = specials.Mask;
            else if (u < options.MaskFraction + options.RandomFraction)
                ids[j] = rng.Next(specials.FirstRegular, vocabSize);
        }
    }
}

/// <summary>Deterministic seed mixing (SplitMix64), stable across runs and .NET versions, unlike HashCode.</summary>
internal static class Seeds
{
    public static int Mix(params ReadOnlySpan<long> parts)
    {
        ulong h = 0x9E3779B97F4A7C15;
        foreach (var p in parts)
        {
            h += (ulong)p + 0x9E3779B97F4A7C15;
            h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9;
            h = (h ^ (h >> 27)) * 0x94D049BB133111EB;
            h ^= h >> 31;
        }
        return (int)(h & 0x7fffffff);
    }
}
