using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Tests.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Method;

/// <summary>Stage 2 on BERT: encoder layers imitate with MSE plus the per-head attention KL.</summary>
public class TransformerImitationTests
{
    static Bert Tiny(string widen, long seed, HeadWidening heads = HeadWidening.Size)
    {
        manual_seed(seed);
        return new Bert(TinyBert.MaskedLm() with { Widen = Widening.Parse(widen), WidenHeads = heads, Dropout = 0 });
    }

    static List<(Tensor X, Tensor Y)> Tokens(int batches)
    {
        var g = new Generator(5);
        return Enumerable
            .Range(0, batches)
            .Select(_ => (randint(0, 50, [8, 12], generator: g), full([8, 12], -100L)))
            .ToList();
    }

    [Fact]
    public void Attention_kl_needs_equal_heads_or_averaging_and_imitation_lowers_the_loss()
    {
        var thin = Tiny("none", 1);
        var wide = Tiny("inner=2", 2, HeadWidening.Count); // 4 heads instead of 2, feed-forward 128 instead of 64
        var data = Tokens(3);
        var strict = new LayerwiseImitation(
            thin,
            wide,
            new ImitationOptions { AttentionWeight = 1, CopyEmbeddings = false }
        );
        Assert.Throws<WtnException>(() => TestSteps.Loss(strict.Unit(1).Objective, data));

        var li = new LayerwiseImitation(
            thin,
            wide,
            new ImitationOptions
            {
                AttentionWeight = 1,
                AverageHeads = true,
                Normalize = true,
                CopyEmbeddings = false,
            }
        );
        Assert.True(li.Adapters.IsEmpty); // inner widening: points keep their shapes
        for (int k = 0; k < li.UnitCount; k++)
        {
            var b = li.Unit(k);
            double before = TestSteps.Loss(b.Objective, data);
            TestSteps.Run(b.Objective, b.Groups.SelectMany(g => g.Parameters), data, 0.05, 15);
            double after = TestSteps.Loss(b.Objective, data);
            Assert.True(after < before, $"block {k}: {before:F4} -> {after:F4}");
        }
        // The tied decoder belongs to the embeddings: copying the head must not overwrite imitated embeddings.
        var embeddings = thin.BlockParameters(0).First().clone();
        Assert.True(HeadTransfer.CopyIfShapesMatch(wide, thin));
        Assert.True(TestSteps.BitIdentical(embeddings, thin.BlockParameters(0).First()));
    }

    [Fact]
    public void A_decoder_tied_to_the_word_embeddings_is_seeded_from_the_wide_network_before_imitation()
    {
        var thin = Tiny("none", 1);
        var wide = Tiny("inner=2", 2);
        var words = thin.BlockParameters(0).First();
        var wideWords = wide.BlockParameters(0).First();
        Assert.Equal(new long[] { 50, 32 }, words.shape);
        Assert.False(TestSteps.BitIdentical(words, wideWords));
        var positions = thin.BlockParameters(0).ElementAt(1).clone();
        var thinHead = thin.HeadModules.SelectMany(m => m.state_dict()).Select(p => p.Value.clone()).ToList();

        // Only the tied tensor moves: the word embeddings, which are the decoder's weight.
        Assert.Equal(1, HeadTransfer.CopyTiedIfShapesMatch(wide, thin));
        Assert.True(TestSteps.BitIdentical(words, wideWords));
        Assert.True(TestSteps.BitIdentical(positions, thin.BlockParameters(0).ElementAt(1)));
        var after = thin.HeadModules.SelectMany(m => m.state_dict()).ToList();
        Assert.Equal(thinHead.Count, after.Count);
        int tiedEntries = after.Count(p => TestSteps.BitIdentical(p.Value, wideWords));
        Assert.Equal(1, tiedEntries);
        for (int i = 0; i < after.Count; i++)
            if (!TestSteps.BitIdentical(after[i].Value, wideWords))
                Assert.True(TestSteps.BitIdentical(thinHead[i], after[i].Value), after[i].Key);

        // A classification head shares nothing with a block: nothing to seed.
        manual_seed(3);
        var cls = new Bert(
            new ModelConfig
            {
                Name = "bert",
                Layers = 2,
                Hidden = 32,
                Heads = 2,
                Intermediate = 64,
                Vocab = 50,
                MaxPositions = 16,
                Dropout = 0,
            }
        );
        manual_seed(4);
        var clsWide = new Bert(
            new ModelConfig
            {
                Name = "bert",
                Layers = 2,
                Hidden = 32,
                Heads = 2,
                Intermediate = 64,
                Vocab = 50,
                MaxPositions = 16,
                Dropout = 0,
                Widen = Widening.Parse("inner=2"),
            }
        );
        var clsWords = cls.BlockParameters(0).First().clone();
        Assert.Equal(0, HeadTransfer.CopyTiedIfShapesMatch(clsWide, cls));
        Assert.True(TestSteps.BitIdentical(clsWords, cls.BlockParameters(0).First()));
    }

    [Fact]
    public void Widening_each_head_keeps_the_head_count_so_attention_transfers_head_by_head()
    {
        var thin = Tiny("none", 1);
        var wide = Tiny("inner=2", 2); // 2 heads of 32 instead of 16, feed-forward 128 instead of 64
        Assert.Equal(new BertSizes(2, 32, 2, 128, 32), wide.Sizes);
        using var ids = randint(0, 50, [3, 12], generator: new Generator(7));
        var input = new ModelInput(ids);
        using (no_grad())
        {
            using var h = wide.ForwardBlock(0, null, input);
            var (hidden, probs) = wide.ForwardBlockWithAttention(1, h, input);
            Assert.Equal(new long[] { 3, 2, 12, 12 }, probs.shape);
            Assert.Equal(new long[] { 3, 12, 32 }, hidden.shape); // the residual stream keeps its width
        }
        // Per head, without averaging; each encoder layer's MSE + KL falls as it imitates.
        var li = new LayerwiseImitation(thin, wide, new ImitationOptions { AttentionWeight = 1, Normalize = true });
        var data = Tokens(3);
        foreach (int k in Enumerable.Range(0, li.UnitCount))
        {
            var b = li.Unit(k);
            var parts = b.Objective.Compute(new Batch(new ModelInput(data[0].X), data[0].Y), training: false).Parts!;
            Assert.True(parts.ContainsKey("attention_kl"), $"unit {k}");
            double before = TestSteps.Loss(b.Objective, data);
            TestSteps.Run(b.Objective, b.Groups.SelectMany(g => g.Parameters), data, 0.05, 15);
            double after = TestSteps.Loss(b.Objective, data);
            Assert.True(after < before, $"unit {k}: {before:F4} -> {after:F4}");
        }
    }

    [Fact]
    public void Embeddings_of_equal_shape_are_copied_not_imitated_when_the_option_is_on()
    {
        var thin = Tiny("none", 1);
        var wide = Tiny("inner=2", 2);
        var before = thin.BlockModules(0)
            .SelectMany(m => m.named_parameters())
            .Select(p => (p.name, p.parameter.clone()))
            .ToList();
        Assert.Equal(
            [
                "word_embeddings.weight",
                "position_embeddings.weight",
                "token_type_embeddings.weight",
                "LayerNorm.weight",
                "LayerNorm.bias",
            ],
            before.Select(p => p.name)
        );

        // Off: nothing copied, block 0 is imitated like any other block.
        var imitated = new LayerwiseImitation(thin, wide, new ImitationOptions { CopyEmbeddings = false });
        Assert.Empty(imitated.Copied);
        Assert.Equal(3, imitated.UnitCount);
        Assert.Equal(new BlockRange(0, 0), imitated.Units[0]);
        var after = thin.BlockModules(0).SelectMany(m => m.named_parameters()).ToList();
        for (int i = 0; i < before.Count; i++)
            Assert.True(TestSteps.BitIdentical(before[i].Item2, after[i].parameter), before[i].name);
        // (the random initialisations differ, so a copy would show)
        Assert.False(
            TestSteps.BitIdentical(wide.BlockParameters(0).ElementAt(1), thin.BlockParameters(0).ElementAt(1))
        );

        // On (the default): every block-0 tensor has the wide shape under inner widening, so all are copied bit for bit,
        // block 0 is no unit, and no unit trains a copied tensor.
        var li = new LayerwiseImitation(thin, wide, new ImitationOptions());
        Assert.Equal(before.Select(p => p.name), li.Copied.Select(c => c.Name));
        var wideEmbeddings = wide.BlockModules(0).SelectMany(m => m.named_parameters()).ToList();
        var thinEmbeddings = thin.BlockModules(0).SelectMany(m => m.named_parameters()).ToList();
        for (int i = 0; i < wideEmbeddings.Count; i++)
            Assert.True(
                TestSteps.BitIdentical(wideEmbeddings[i].parameter, thinEmbeddings[i].parameter),
                wideEmbeddings[i].name
            );
        Assert.Equal([new BlockRange(1, 1), new BlockRange(2, 2)], li.Units);
        var copied = li.Copied.Select(c => c.Parameter.Handle).ToHashSet();
        var trained = Enumerable
            .Range(0, li.UnitCount)
            .SelectMany(u => li.Unit(u).Groups)
            .SelectMany(g => g.Parameters)
            .ToList();
        Assert.NotEmpty(trained);
        Assert.DoesNotContain(trained, p => copied.Contains(p.Handle));

        // Full widening: the hidden size differs, so no embedding has the wide shape; nothing is copied.
        var fullWide = Tiny("full=2", 3);
        var full = new LayerwiseImitation(Tiny("none", 4), fullWide, new ImitationOptions());
        Assert.Empty(full.Copied);
        Assert.Equal(3, full.UnitCount);
    }
}
