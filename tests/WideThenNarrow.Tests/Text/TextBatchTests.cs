using WideThenNarrow.Data.Text;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Text;

public class TextBatchTests
{
    static readonly Lazy<TokenizedCorpus> Corpus = new(() =>
        TokenizedCorpus.Tokenize(TextFixture.Tokenizer, TextFixture.HeldOutTexts)
    );

    static MaskedLmBatchSource Mlm(int seed = 7) =>
        new(Corpus.Value, TextFixture.Tokenizer.VocabSize, new MaskedLmOptions(BatchSize: 16, Seed: seed));

    static long[] Data(Tensor t) => t.data<long>().ToArray();

    [Fact]
    public void Masking_selects_15_percent_of_real_tokens_and_replaces_them_80_10_10()
    {
        var source = Mlm();
        long real = 0,
            selected = 0,
            masked = 0,
            randomized = 0,
            kept = 0;
        foreach (var batch in source.Epoch(0, CPU))
            using (batch)
            {
                var ids = Data(batch.Input.Input);
                var labels = Data(batch.Labels);
                var mask = Data(batch.Input.AttentionMask!);
                Assert.Equal(128, batch.Input.Input.shape[1]);
                for (int k = 0; k < ids.Length; k++)
                {
                    bool isSpecialSlot =
                        k % 128 == 0 || mask[k] == 0 || (ids[k] < TextTokenizer.FirstRegularId && labels[k] == -100);
                    if (labels[k] == -100)
                    {
                        if (!isSpecialSlot)
                            real++;
                        continue;
                    }
                    Assert.True(labels[k] >= TextTokenizer.FirstRegularId, "a special token was selected");
                    Assert.NotEqual(0, k % 128);
                    real++;
                    selected++;
                    if (ids[k] == TextTokenizer.MaskId)
                        masked++;
                    else if (ids[k] == labels[k])
                        kept++;
                    else
                        randomized++;
                }
            }
        Assert.True(real > 50_000, $"only {real} tokens");
        double p = selected / (double)real;
        Assert.InRange(p, 0.14, 0.16);
        Assert.InRange(masked / (double)selected, 0.77, 0.83);
        Assert.InRange(randomized / (double)selected, 0.08, 0.12);
        Assert.InRange(kept / (double)selected, 0.08, 0.12);
    }

    [Fact]
    public void Packed_rows_start_with_cls_end_with_sep_and_only_the_last_is_padded()
    {
        var source = Mlm();
        var rows = new List<long[]>();
        foreach (
            var batch in new MaskedLmBatchSource(
                Corpus.Value,
                TextFixture.Tokenizer.VocabSize,
                new MaskedLmOptions(BatchSize: 16, Shuffle: false, MaskProbability: 1e-9)
            ).Epoch(0, CPU)
        )
            using (batch)
            {
                var ids = Data(batch.Input.Input);
                for (int r = 0; r < batch.Size; r++)
                    rows.Add(ids[(r * 128)..((r + 1) * 128)]);
            }
        Assert.Equal(source.Count, rows.Count);
        Assert.All(rows, r => Assert.Equal(TextTokenizer.ClsId, r[0]));
        Assert.All(rows[..^1], r => Assert.Equal(TextTokenizer.SepId, r[127]));
        Assert.All(rows[..^1], r => Assert.DoesNotContain(TextTokenizer.PadId, r));
        // Unmasked, the rows concatenate back to the documents joined by [SEP].
        var stream = rows.SelectMany(r => r.Skip(1).TakeWhile(_ => true).Take(126))
            .Where(i => i != TextTokenizer.PadId)
            .ToList();
        var expected = Enumerable
            .Range(0, Corpus.Value.Count)
            .SelectMany(d => (d > 0 ? [TextTokenizer.SepId] : Array.Empty<int>()).Concat(Corpus.Value[d].ToArray()))
            .Select(i => (long)i)
            .ToList();
        Assert.Equal(expected, stream.Take(expected.Count));
    }

    [Fact]
    public void Epochs_reproduce_differ_by_epoch_and_resume_with_skip_batches()
    {
        var a = Mlm()
            .Epoch(3, CPU)
            .Take(4)
            .Select(b =>
            {
                using (b)
                    return Data(b.Input.Input);
            })
            .ToList();
        var again = Mlm()
            .Epoch(3, CPU)
            .Take(4)
            .Select(b =>
            {
                using (b)
                    return Data(b.Input.Input);
            })
            .ToList();
        var resumed = Mlm()
            .Epoch(3, CPU, skipBatches: 2)
            .Take(2)
            .Select(b =>
            {
                using (b)
                    return Data(b.Input.Input);
            })
            .ToList();
        var other = Mlm()
            .Epoch(4, CPU)
            .Take(1)
            .Select(b =>
            {
                using (b)
                    return Data(b.Input.Input);
            })
            .Single();
        Assert.Equal(a, again);
        Assert.Equal(a[2..4], resumed);
        Assert.NotEqual(a[0], other);
    }

    [Fact]
    public void A_windows_masks_do_not_depend_on_the_batch_size_or_its_place_in_the_epoch()
    {
        // Unshuffled, the epoch's k-th row is window k whatever the batch size.
        static List<(long[] Ids, long[] Labels)> Rows(int batchSize, bool shuffle, int epoch)
        {
            var source = new MaskedLmBatchSource(
                Corpus.Value,
                TextFixture.Tokenizer.VocabSize,
                new MaskedLmOptions(BatchSize: batchSize, Seed: 5, Shuffle: shuffle)
            );
            var rows = new List<(long[], long[])>();
            foreach (var batch in source.Epoch(epoch, CPU))
                using (batch)
                {
                    var ids = Data(batch.Input.Input);
                    var labels = Data(batch.Labels);
                    for (int r = 0; r < batch.Size; r++)
                        rows.Add((ids[(r * 128)..((r + 1) * 128)], labels[(r * 128)..((r + 1) * 128)]));
                }
            return rows;
        }
        var by3 = Rows(3, shuffle: false, epoch: 0);
        var by16 = Rows(16, shuffle: false, epoch: 0);
        Assert.True(by3.Count > 20);
        Assert.Equal(by3.Select(r => r.Ids), by16.Select(r => r.Ids));
        Assert.Equal(by3.Select(r => r.Labels), by16.Select(r => r.Labels));
        // Shuffled, the same windows come in another order with the same masks: every shuffled row is one of the rows.
        var unshuffled = by16.Select(r => string.Join(',', r.Ids) + "|" + string.Join(',', r.Labels)).ToHashSet();
        var shuffled = Rows(16, shuffle: true, epoch: 0);
        Assert.NotEqual(by16.Select(r => r.Ids), shuffled.Select(r => r.Ids));
        Assert.All(shuffled, r =>
            Assert.Contains(string.Join(',', r.Ids) + "|" + string.Join(',', r.Labels), unshuffled)
        );
        // Another epoch masks the same window afresh.
        Assert.NotEqual(by16.Select(r => r.Labels), Rows(16, shuffle: false, epoch: 1).Select(r => r.Labels));
    }

    [Fact]
    public void Classification_batches_truncate_pad_and_mask()
    {
        var labels = Enumerable.Range(0, Corpus.Value.Count).Select(i => i % 2).ToArray();
        var source = new SequenceClassificationBatchSource(
            Corpus.Value,
            labels,
            new ClassificationBatchOptions(BatchSize: 4, MaxLength: 64, Shuffle: false)
        );
        Assert.Equal((Corpus.Value.Count + 3) / 4, source.BatchesPerEpoch);
        using var batch = source.Epoch(0, CPU).First();
        Assert.Equal([4L, 64L], batch.Input.Input.shape);
        Assert.Equal([4L], batch.Labels.shape);
        var ids = Data(batch.Input.Input);
        var mask = Data(batch.Input.AttentionMask!);
        Assert.Equal([0L, 1L, 0L, 1L], Data(batch.Labels));
        Assert.Equal(Corpus.Value[0][..62].ToArray().Select(i => (long)i), ids[1..63]);
        Assert.Equal(TextTokenizer.ClsId, ids[0]);
        Assert.Equal(TextTokenizer.SepId, ids[63]);
        Assert.All(mask, m => Assert.Equal(1L, m));
        Assert.All(Data(batch.Input.TokenTypeIds!), t => Assert.Equal(0L, t));

        // A short text is padded with [PAD] and masked out.
        var shortCorpus = TokenizedCorpus.Tokenize(
            TextFixture.Tokenizer,
            ["A short review.", TextFixture.HeldOutTexts[0]]
        );
        using var mixed = new SequenceClassificationBatchSource(
            shortCorpus,
            [1, 0],
            new ClassificationBatchOptions(BatchSize: 2, MaxLength: 32, Shuffle: false)
        )
            .Epoch(0, CPU)
            .Single();
        var row = Data(mixed.Input.Input)[..32];
        var rowMask = Data(mixed.Input.AttentionMask!)[..32];
        int n = shortCorpus[0].Length + 2;
        Assert.Equal(TextTokenizer.SepId, row[n - 1]);
        Assert.All(row[n..], t => Assert.Equal(TextTokenizer.PadId, t));
        Assert.Equal(n, rowMask.Sum());
    }

    [Fact]
    public void Token_cache_hits_on_second_load_and_rebuilds_a_corrupt_file()
    {
        var folder = TestData.NewTempFolder("token-cache");
        try
        {
            var tok = TextFixture.Tokenizer;
            var docs = TextFixture.HeldOutTexts;
            var (first, hit1) = TokenCache.LoadOrBuild(folder, tok, docs);
            var (second, hit2) = TokenCache.LoadOrBuild(folder, tok, docs);
            Assert.False(hit1);
            Assert.True(hit2);
            Assert.Equal(first.Ids, second.Ids);
            Assert.Equal(first.Offsets, second.Offsets);

            // Different texts, different cache entry.
            var (_, hitOther) = TokenCache.LoadOrBuild(folder, tok, docs.Take(2).ToList());
            Assert.False(hitOther);

            var path = TokenCache.PathFor(folder, tok, docs);
            var bytes = File.ReadAllBytes(path);
            bytes[bytes.Length / 2] ^= 0x5A;
            File.WriteAllBytes(path, bytes);
            Assert.Null(TokenCache.TryRead(path));
            var (rebuilt, hit3) = TokenCache.LoadOrBuild(folder, tok, docs);
            Assert.False(hit3);
            Assert.Equal(first.Ids, rebuilt.Ids);

            File.WriteAllBytes(path, File.ReadAllBytes(path)[..1000]);
            var (_, hit4) = TokenCache.LoadOrBuild(folder, tok, docs);
            Assert.False(hit4);
            Assert.True(TokenCache.LoadOrBuild(folder, tok, docs).Hit);
        }
        finally
        {
            TestData.DeleteFolder(folder);
        }
    }
}
