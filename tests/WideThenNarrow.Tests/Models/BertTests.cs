using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

public class BertTests
{
    static long EncoderAndPoolerParameters(StagedModel m) =>
        m.named_parameters().Where(p => p.name.StartsWith("bert.")).Sum(p => p.parameter.numel());

    [Theory]
    [InlineData("bert-base", 109_482_240)]
    [InlineData("bert-large", 335_141_888)]
    public void Encoder_plus_pooler_parameter_counts_match_huggingface(string name, long expected)
    {
        using var model = ModelFactory.Create(new ModelConfig { Name = name, Classes = 2 }, META);
        Assert.Equal(expected, EncoderAndPoolerParameters(model));
    }

    [Fact]
    public void Parameter_names_are_huggingface_names()
    {
        using var cls = ModelFactory.Create(new ModelConfig { Name = "bert-tiny", Classes = 2 }, META);
        var names = cls.state_dict().Keys.ToHashSet();
        foreach (
            var n in new[]
            {
                "bert.embeddings.word_embeddings.weight",
                "bert.embeddings.position_embeddings.weight",
                "bert.embeddings.token_type_embeddings.weight",
                "bert.embeddings.LayerNorm.weight",
                "bert.encoder.layer.0.attention.self.query.weight",
                "bert.encoder.layer.1.attention.self.value.bias",
                "bert.encoder.layer.0.attention.output.dense.weight",
                "bert.encoder.layer.0.attention.output.LayerNorm.weight",
                "bert.encoder.layer.0.intermediate.dense.weight",
                "bert.encoder.layer.0.output.dense.weight",
                "bert.encoder.layer.0.output.LayerNorm.bias",
                "bert.pooler.dense.weight",
                "classifier.weight",
                "classifier.bias",
            }
        )
            Assert.Contains(n, names);
        Assert.Equal(5 + 2 * 16 + 4, names.Count);

        using var mlm = ModelFactory.Create(new ModelConfig { Name = "bert-tiny", Head = BertHead.MaskedLm }, META);
        var mlmNames = mlm.state_dict().Keys.ToHashSet();
        foreach (
            var n in new[]
            {
                "cls.predictions.bias",
                "cls.predictions.transform.dense.weight",
                "cls.predictions.transform.LayerNorm.weight",
                "cls.predictions.decoder.weight",
                "cls.predictions.decoder.bias",
            }
        )
            Assert.Contains(n, mlmNames);
        Assert.DoesNotContain("bert.pooler.dense.weight", mlmNames);
    }

    [Fact]
    public void Models_dropout_key_reaches_every_dropout_so_zero_makes_training_mode_deterministic()
    {
        static bool Repeats(ModelSpec spec)
        {
            using var model = ModelFactory.Create(
                spec.ToModelConfig(0, 0, 1, "models.thin") with
                {
                    Vocab = 40,
                    Head = BertHead.MaskedLm,
                }
            );
            model.train();
            using var ids = randint(5, 40, [2, 12], ScalarType.Int64);
            var input = new ModelInput(ids);
            using var a = model.forward(input);
            using var b = model.forward(input);
            return a.allclose(b, rtol: 0, atol: 0);
        }
        var spec = new ModelSpec { Name = "bert-tiny", MaxPositions = 16 };
        Assert.Equal(0.1, spec.ToModelConfig(0, 0, 1, "models.thin").Dropout); // BERT's, unless set
        Assert.False(Repeats(spec));
        Assert.True(Repeats(spec with { Dropout = 0 }));
        var e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<WideThenNarrow.Method.ExperimentConfig>(
                "models:\n  thin: {name: bert-tiny, dropout: 1}\n",
                "e.yaml"
            )
        );
        Assert.StartsWith("e.yaml: key 'models.thin.dropout' must be", e.Message);
    }

    [Fact]
    public void Masked_lm_decoder_is_tied_to_the_word_embeddings()
    {
        using var model = ModelFactory.Create(
            new ModelConfig
            {
                Name = "bert-tiny",
                Vocab = 40,
                MaxPositions = 16,
                Head = BertHead.MaskedLm,
            }
        );
        var sd = model.state_dict();
        using (no_grad())
        {
            sd["bert.embeddings.word_embeddings.weight"].fill_(0.5f);
            sd["cls.predictions.bias"].fill_(0.25f);
        }
        Assert.Equal(0.5f, model.state_dict()["cls.predictions.decoder.weight"].mean().item<float>());
        Assert.Equal(0.25f, model.state_dict()["cls.predictions.decoder.bias"].mean().item<float>());
        // parameters() lists each tied tensor once (an optimizer must not step it twice).
        var names = model.named_parameters().Select(p => p.name).ToList();
        Assert.Contains("bert.embeddings.word_embeddings.weight", names);
        Assert.Contains("cls.predictions.bias", names);
        Assert.DoesNotContain("cls.predictions.decoder.weight", names);
        Assert.DoesNotContain("cls.predictions.decoder.bias", names);
    }

    [Fact]
    public void Attention_probabilities_sum_to_one_and_ignore_masked_keys()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var c = StagedModelTests.Config("bert-tiny");
        using var model = (Bert)ModelFactory.Create(c);
        model.eval();
        var input = StagedModelTests.Input(c); // example 0 has keys 5.. masked
        using var _ = no_grad();
        var h = model.ForwardBlock(0, null, input);
        var (hidden, probs) = model.ForwardBlockWithAttention(1, h, input);
        Assert.Equal(new long[] { 2, model.HeadsAt(1), 7, 7 }, probs.shape);
        Assert.True(probs.sum(-1).allclose(ones(2, 2, 7), atol: 1e-5));
        Assert.True(probs[0, TensorIndex.Ellipsis, TensorIndex.Slice(5)].abs().max().item<float>() < 1e-6);
        Assert.True(probs[1, TensorIndex.Ellipsis, TensorIndex.Slice(5)].min().item<float>() > 0);
        Assert.True(hidden.allclose(model.ForwardBlock(1, h, input)));
        // Padding keys do not change real tokens' outputs.
        var ids = input.Input.clone();
        ids[0, TensorIndex.Slice(5)] = tensor(1L);
        var changed = new ModelInput(ids, input.AttentionMask, input.TokenTypeIds);
        var h2 = model.ForwardBlock(1, model.ForwardBlock(0, null, changed), changed);
        Assert.True(h2[0, TensorIndex.Slice(0, 5)].allclose(hidden[0, TensorIndex.Slice(0, 5)], atol: 1e-5));
    }

    [Fact]
    public void Inner_widening_widens_each_head_or_multiplies_the_heads_and_full_widening_keeps_the_head_size()
    {
        var inner = BertSizes.From(new ModelConfig { Name = "bert-mini", Widen = Widening.Parse("inner=4") });
        Assert.Equal(new BertSizes(4, 256, 4, 4096, 256), inner);
        var count = BertSizes.From(
            new ModelConfig
            {
                Name = "bert-mini",
                Widen = Widening.Parse("inner=4"),
                WidenHeads = HeadWidening.Count,
            }
        );
        Assert.Equal(new BertSizes(4, 256, 16, 4096, 64), count);
        // The same projections either way (hidden x heads x head size), so the same parameters; only how they split differs.
        var tiny = new ModelConfig
        {
            Name = "bert",
            Layers = 2,
            Hidden = 32,
            Heads = 2,
            Intermediate = 64,
            Vocab = 50,
            MaxPositions = 16,
            Widen = Widening.Parse("inner=4"),
        };
        long Count(ModelConfig c)
        {
            using var m = new Bert(c);
            return m.parameters().Sum(p => p.numel());
        }
        // Per layer: Q, K, V 3 x (32 x 128 + 128) (2 heads of 4 x 16), attention output 128 x 32 + 32, its LayerNorm 64,
        // feed-forward 32 x 256 + 256 and 256 x 32 + 32, its LayerNorm 64; embeddings (50 + 16 + 2) x 32 + 64; pooler
        // 32 x 32 + 32; classifier 32 x 10 + 10.
        long layer = 3 * (32 * 128 + 128) + 128 * 32 + 32 + 64 + 32 * 256 + 256 + 256 * 32 + 32 + 64;
        Assert.Equal(2 * layer + 68 * 32 + 64 + 32 * 32 + 32 + 32 * 10 + 10, Count(tiny));
        Assert.Equal(Count(tiny), Count(tiny with { WidenHeads = HeadWidening.Count }));
        var full = BertSizes.From(new ModelConfig { Name = "bert-mini", Widen = Widening.Parse("full=2") });
        Assert.Equal(new BertSizes(4, 512, 8, 2048, 64), full);
        var custom = BertSizes.From(
            new ModelConfig
            {
                Name = "bert",
                Layers = 3,
                Hidden = 96,
                Heads = 3,
                Intermediate = 200,
            }
        );
        Assert.Equal(new BertSizes(3, 96, 3, 200, 32), custom);
        Assert.Contains(
            "heads",
            Assert
                .Throws<WtnException>(() =>
                    BertSizes.From(
                        new ModelConfig
                        {
                            Name = "bert",
                            Layers = 3,
                            Hidden = 96,
                        }
                    )
                )
                .Message
        );
    }

    [Fact]
    public void A_masked_lm_head_counts_the_macs_of_the_positions_it_runs_on()
    {
        var c = TinyBert.MaskedLm(layers: 1);
        using var every = new Bert(c);
        using var masked = new Bert(c with { HeadPositionShare = 0.15 });
        // Transform (32 x 32) and decoder (32 x 50) at each of 16 positions, or at 15 % of them.
        Assert.Equal(16L * (32 * 32 + 32 * 50), every.HeadMacs([16, 32]));
        Assert.Equal((long)Math.Round(0.15 * 16 * (32 * 32 + 32 * 50)), masked.HeadMacs([16, 32]));
        Assert.Equal(every.BlockMacs(1, [16, 32], [16, 32]), masked.BlockMacs(1, [16, 32], [16, 32]));
        Assert.Contains(
            "head_position_share",
            Assert
                .Throws<WtnException>(() =>
                    (c with { HeadPositionShare = 0 }).Validate(new WideThenNarrow.Config.ConfigKeys("t", "model"))
                )
                .Message,
            StringComparison.OrdinalIgnoreCase
        );
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void Every_parameter_of_a_masked_lm_encoder_gets_a_gradient_the_positions_included(double dropout)
    {
        using var model = new Bert(TinyBert.MaskedLm() with { Dropout = dropout, HeadPositionShare = 0.15 });
        model.train();
        using var scope = NewDisposeScope();
        manual_seed(0);
        var ids = randint(5, 50, [4, 16], dtype: ScalarType.Int64);
        var labels = full([4, 16], MaskedLmObjective.IgnoreIndex, dtype: ScalarType.Int64);
        labels[.., 3] = ids[.., 3];
        labels[.., 9] = ids[.., 9];
        ids[.., 3] = 4;
        using var batch = new Batch(new ModelInput(ids, ones_like(ids)), labels);
        var output = new MaskedLmObjective(model).Compute(batch, training: true);
        output.Loss.backward();
        var silent = model
            .named_parameters()
            .Where(p => !p.name.EndsWith("key.bias")) // softmax is blind to a shift shared by every key
            .Where(p => p.parameter.grad is null || p.parameter.grad.abs().max().item<float>() == 0)
            .Select(p => p.name)
            .ToList();
        Assert.Empty(silent);
    }

    /// <summary>
    /// Layer 0's mean attention from each token to the one <c>Offset</c> away, per (head, offset) pair, on 4 random
    /// 64-token inputs (the model's vocabulary at least 100, its window at least 64).
    /// </summary>
    static double[] LayerZeroMass(Bert model, params (int Head, int Offset)[] at)
    {
        model.eval();
        using var scope = NewDisposeScope();
        manual_seed(3);
        var input = new ModelInput(randint(5, 100, [4, 64], dtype: ScalarType.Int64));
        using var _ = no_grad();
        var h = model.ForwardBlock(0, null, input);
        var (_, probs) = model.ForwardBlockWithAttention(1, h, input); // (N, heads, T, T)
        var i = arange(1, 63, dtype: ScalarType.Int64);
        return
        [
            .. at.Select(a =>
                (double)
                    probs
                        .select(1, a.Head)
                        .index([TensorIndex.Colon, TensorIndex.Tensor(i), TensorIndex.Tensor(i + a.Offset)])
                        .mean()
                        .item<float>()
            ),
        ];
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_locality_prior_makes_layer_0s_first_two_heads_look_at_the_next_and_the_previous_token(bool prior)
    {
        var c = TinyBert.MaskedLm(hidden: 128, intermediate: 256, vocab: 100, maxPositions: 64) with
        {
            LocalityPrior = prior,
        };
        using var model = new Bert(c);
        var mass = LayerZeroMass(model, (0, +1), (1, -1), (0, -1));
        if (prior)
        {
            Assert.InRange(mass[0], 0.3, 1.0);
            Assert.InRange(mass[1], 0.3, 1.0);
            Assert.InRange(mass[2], 0.0, 0.1);
        }
        else
            foreach (var m in mass[..2])
                Assert.InRange(m, 0.5 / 64, 2.0 / 64); // about uniform: 1/64
        // Only the initialisation differs: the same parameters, names and shapes.
        using var plain = new Bert(c with { LocalityPrior = false });
        Assert.Equal(
            plain.named_parameters().Select(p => (p.name, string.Join(",", p.parameter.shape))),
            model.named_parameters().Select(p => (p.name, string.Join(",", p.parameter.shape)))
        );
    }

    [Fact]
    public void A_locality_gain_grown_with_the_fourth_root_of_the_head_size_gives_wider_heads_the_same_start()
    {
        // The neighbour's logit is gain^2 / sqrt(head size): heads of 256 (inner x4) start weaker at the same gain.
        double Start(string widen, double gain)
        {
            var c = TinyBert.MaskedLm(hidden: 128, intermediate: 256, vocab: 100, maxPositions: 64) with
            {
                LocalityPrior = true,
                LocalityGain = gain,
                Widen = Widening.Parse(widen),
            };
            manual_seed(1);
            using var model = new Bert(c);
            return LayerZeroMass(model, (0, +1))[0];
        }
        double thin = Start("none", ModelConfig.DefaultLocalityGain);
        double wide = Start("inner=4", ModelConfig.DefaultLocalityGain);
        double scaled = Start("inner=4", ModelConfig.DefaultLocalityGain * Math.Pow(256.0 / 64, 0.25));
        Assert.True(
            wide < thin - 0.1,
            $"heads of 256 at the default gain: {wide:F3} on the next token, heads of 64 {thin:F3}"
        );
        Assert.True(
            Math.Abs(scaled - thin) < 0.05,
            $"heads of 256 at the scaled gain: {scaled:F3}, heads of 64 {thin:F3}"
        );
        var e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<ExperimentConfig>(
                "models:\n  thin: {name: bert, locality_prior: true, locality_gain: 0}\n",
                "exp.yaml"
            )
        );
        Assert.StartsWith("exp.yaml: key 'models.thin.locality_gain' must be in [0.01, 10]", e.Message);
    }

    [Fact]
    public void A_locality_prior_needs_two_heads_of_at_least_32_dimensions()
    {
        var c = TinyBert.MaskedLm(layers: 1) with { LocalityPrior = true };
        var e = Assert.Throws<WtnException>(() => new Bert(c));
        Assert.Contains("locality_prior", e.Message);
    }
}
