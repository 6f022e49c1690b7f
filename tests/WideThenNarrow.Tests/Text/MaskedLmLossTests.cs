using TorchSharp;
using WideThenNarrow.Data;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Losses;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Text;

/// <summary>Masked-LM losses on batches where nothing (or something) is masked: never 0/0 = NaN.</summary>
[Collection("torch-rng")]
public class MaskedLmLossTests
{
    static Bert TinyMlmBert()
    {
        manual_seed(5);
        return (Bert)ModelFactory.Create(new ModelConfig
        {
            Name = "bert", Layers = 1, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = TextFixture.Tokenizer.VocabSize,
            MaxPositions = 32, Head = BertHead.MaskedLm,
        });
    }

    /// <summary>A real-text masked-LM batch, and the same batch with every label set to -100 (nothing masked).</summary>
    static (Batch Masked, Batch Unmasked) Batches()
    {
        var corpus = TokenizedCorpus.Tokenize(TextFixture.Tokenizer, TextFixture.HeldOutTexts.Take(2).ToList());
        var batch = new MaskedLmBatchSource(corpus, TextFixture.Tokenizer.VocabSize, new MaskedLmOptions(BatchSize: 4, SequenceLength: 32, Seed: 3))
            .Epoch(0, CPU).First();
        return (batch, new Batch(batch.Input, full_like(batch.Labels, MaskedLmObjective.IgnoreIndex)));
    }

    [Fact]
    public void Masked_lm_objective_is_zero_with_zero_gradients_when_nothing_is_masked_and_the_mean_otherwise()
    {
        using var model = TinyMlmBert();
        var (masked, unmasked) = Batches();
        var objective = new MaskedLmObjective(model);

        var empty = objective.Compute(unmasked, training: true).Loss;
        Assert.Equal(0.0, empty.ToDouble());
        empty.backward();
        Assert.All(model.parameters(), p => Assert.True(p.grad is null || p.grad.abs().max().ToDouble() == 0));

        Assert.True(masked.Labels.ne(MaskedLmObjective.IgnoreIndex).sum().ToInt64() > 0);
        model.eval();
        using var logits = model.call(masked.Input);
        double expected = nn.functional.cross_entropy(logits.flatten(0, 1), masked.Labels.flatten(), ignore_index: MaskedLmObjective.IgnoreIndex).ToDouble();
        Assert.Equal(expected, objective.Compute(masked, training: true).Loss.ToDouble(), 5);
    }

    [Fact]
    public void Masked_lm_distillation_is_finite_and_zero_when_nothing_is_masked()
    {
        manual_seed(6);
        var zs = randn(2, 4, 7, requires_grad: true);
        var zb = randn(2, 4, 7);
        var none = full([2, 4], MaskedLmObjective.IgnoreIndex, ScalarType.Int64);
        var (total, task, kd) = DistillationLoss.Compute(zs, zb, none, 0.5, 2);
        Assert.Equal(0.0, total.ToDouble());
        Assert.Equal(0.0, task.ToDouble());
        Assert.Equal(0.0, kd.ToDouble());
        total.backward();
        Assert.Equal(0.0, zs.grad!.abs().max().ToDouble());
    }
}
