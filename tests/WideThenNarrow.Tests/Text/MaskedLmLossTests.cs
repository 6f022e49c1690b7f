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
        return (Bert)
            ModelFactory.Create(
                new ModelConfig
                {
                    Name = "bert",
                    Layers = 1,
                    Hidden = 32,
                    Heads = 2,
                    Intermediate = 64,
                    Vocab = TextFixture.Tokenizer.VocabSize,
                    MaxPositions = 32,
                    Head = BertHead.MaskedLm,
                }
            );
    }

    /// <summary>A real-text masked-LM batch, and the same batch with every label set to -100 (nothing masked).</summary>
    static (Batch Masked, Batch Unmasked) Batches()
    {
        var corpus = TokenizedCorpus.Tokenize(TextFixture.Tokenizer, TextFixture.HeldOutTexts.Take(2).ToList());
        var batch = new MaskedLmBatchSource(
            corpus,
            TextFixture.Tokenizer.VocabSize,
            new MaskedLmOptions(BatchSize: 4, SequenceLength: 32, Seed: 3)
        )
            .Epoch(0, CPU)
            .First();
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
        double expected = nn
            .functional.cross_entropy(
                logits.flatten(0, 1),
                masked.Labels.flatten(),
                ignore_index: MaskedLmObjective.IgnoreIndex
            )
            .ToDouble();
        Assert.Equal(expected, objective.Compute(masked, training: true).Loss.ToDouble(), 5);
    }

    [Fact]
    public void The_head_on_masked_positions_only_gives_the_full_logits_rows_and_the_same_losses_and_top1()
    {
        using var student = TinyMlmBert();
        manual_seed(8);
        using var teacher = (Bert)
            ModelFactory.Create(
                new ModelConfig
                {
                    Name = "bert",
                    Layers = 1,
                    Hidden = 32,
                    Heads = 4,
                    Intermediate = 128,
                    Vocab = TextFixture.Tokenizer.VocabSize,
                    MaxPositions = 32,
                    Head = BertHead.MaskedLm,
                }
            );
        var (batch, _) = Batches();
        student.eval();
        teacher.eval();
        using var full = student.call(batch.Input);
        using var fullTeacher = teacher.call(batch.Input);
        var (rows, labels) = MaskedLmObjective.MaskedLogits(student, batch.Input, batch.Labels);
        var keep = batch.Labels.reshape(-1).ne(MaskedLmObjective.IgnoreIndex);
        long m = keep.sum().ToInt64();
        Assert.Equal([m, TextFixture.Tokenizer.VocabSize], rows.shape);
        Assert.True(rows.allclose(full.reshape(-1, full.shape[^1])[keep], rtol: 1e-5, atol: 1e-5));
        Assert.Equal(batch.Labels.reshape(-1)[keep].data<long>().ToArray(), labels.data<long>().ToArray());

        // Distillation (a = 0.5, T = 2) as stage 3 runs it, against the loss on the full logits of both networks.
        var objective = new WideThenNarrow.Method.DistillationObjective(student, teacher, 0.5, 2);
        var output = objective.Compute(batch, training: true);
        var (expected, _, _) = DistillationLoss.Compute(full, fullTeacher, batch.Labels, 0.5, 2);
        Assert.Equal(expected.ToDouble(), output.Loss.ToDouble(), 5);
        Assert.Equal(labels.data<long>().ToArray(), output.Targets!.data<long>().ToArray());
        // Top-1 as the trainer counts it (against Targets) equals the full logits' over the masked positions.
        long hitsFull = full.argmax(-1).reshape(-1)[keep].eq(labels).sum().ToInt64();
        Assert.Equal(hitsFull, output.Logits!.argmax(-1).eq(output.Targets).sum().ToInt64());
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
