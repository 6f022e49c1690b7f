using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Method;

/// <summary>Stage 2 on BERT: encoder layers imitate with MSE plus the per-head attention KL.</summary>
public class TransformerImitationTests
{
    static Bert Tiny(string widen, long seed)
    {
        manual_seed(seed);
        return new Bert(new ModelConfig
        {
            Name = "bert", Layers = 2, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = 50, MaxPositions = 16,
            Widen = Widening.Parse(widen), Head = BertHead.MaskedLm, Dropout = 0,
        });
    }

    static List<(Tensor X, Tensor Y)> Tokens(int batches)
    {
        var g = new Generator(5);
        return Enumerable.Range(0, batches).Select(_ => (randint(0, 50, [8, 12], generator: g), full([8, 12], -100L))).ToList();
    }

    [Fact]
    public void Attention_kl_needs_equal_heads_or_averaging_and_imitation_lowers_the_loss()
    {
        var thin = Tiny("none", 1);
        var wide = Tiny("inner=2", 2); // 4 heads instead of 2, feed-forward 128 instead of 64
        var data = Tokens(3);
        var strict = new LayerwiseImitation(thin, wide, new ImitationOptions { AttentionWeight = 1 });
        Assert.Throws<WtnException>(() => TestSteps.Loss(strict.Unit(1).Objective, data));

        var li = new LayerwiseImitation(thin, wide, new ImitationOptions { AttentionWeight = 1, AverageHeads = true, Normalize = true });
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
            if (!TestSteps.BitIdentical(after[i].Value, wideWords)) Assert.True(TestSteps.BitIdentical(thinHead[i], after[i].Value), after[i].Key);

        // A classification head shares nothing with a block: nothing to seed.
        manual_seed(3);
        var cls = new Bert(new ModelConfig { Name = "bert", Layers = 2, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = 50, MaxPositions = 16, Dropout = 0 });
        manual_seed(4);
        var clsWide = new Bert(new ModelConfig { Name = "bert", Layers = 2, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = 50, MaxPositions = 16, Dropout = 0, Widen = Widening.Parse("inner=2") });
        var clsWords = cls.BlockParameters(0).First().clone();
        Assert.Equal(0, HeadTransfer.CopyTiedIfShapesMatch(clsWide, cls));
        Assert.True(TestSteps.BitIdentical(clsWords, cls.BlockParameters(0).First()));
    }
}
