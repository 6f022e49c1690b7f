using TorchSharp;
using WideThenNarrow.Config;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Losses;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Text;

/// <summary>Tiny BERTs on real text: masked-LM training through the engine, imitation and attention KL.</summary>
[Collection("torch-rng")]
public class BertTrackTests
{
    static readonly Lazy<TokenizedCorpus> Corpus = new(() =>
        TokenizedCorpus.Tokenize(TextFixture.Tokenizer, TextFixture.HeldOutTexts)
    );

    static Bert TinyBert(long seed, int layers = 2, int inner = 1)
    {
        manual_seed(seed);
        return (Bert)
            ModelFactory.Create(
                new ModelConfig
                {
                    Name = "bert",
                    Layers = layers,
                    Hidden = 64,
                    Heads = 2,
                    Intermediate = 128,
                    Vocab = TextFixture.Tokenizer.VocabSize,
                    MaxPositions = 64,
                    Head = BertHead.MaskedLm,
                    Widen = inner > 1 ? Widening.Parse($"inner={inner}", "widen") : Widening.None,
                }
            );
    }

    static MaskedLmBatchSource Batches(int seed) =>
        new(
            Corpus.Value,
            TextFixture.Tokenizer.VocabSize,
            new MaskedLmOptions(BatchSize: 16, SequenceLength: 32, Seed: seed)
        );

    static double EvalLoss(Bert model)
    {
        model.eval();
        using var _ = no_grad();
        var objective = new MaskedLmObjective(model);
        double sum = 0;
        foreach (var batch in Batches(99).Epoch(0, CPU).Take(4))
            using (var scope = NewDisposeScope())
            using (batch)
                sum += objective.Compute(batch, training: false).Loss.item<float>();
        return sum / 4;
    }

    [Fact]
    public void Masked_lm_loss_falls_on_real_text_through_the_trainer()
    {
        using var model = TinyBert(1);
        double before = EvalLoss(model);
        var dir = TestData.NewTempFolder("bert-mlm");
        try
        {
            var result = Trainer.Run(
                new TrainingJob
                {
                    Stage = "mlm",
                    Modules = new Dictionary<string, nn.Module> { ["model"] = model },
                    ParameterGroups = [WideThenNarrow.Training.ParameterGroup.Of("model", model)],
                    Objective = new MaskedLmObjective(model),
                    Train = Batches(1),
                    Settings = new TrainerSettings
                    {
                        Optimizer = new OptimizerConfig
                        {
                            Name = OptimizerKind.AdamW,
                            Lr = 2e-3,
                            WeightDecay = 0.01,
                        },
                        Schedule = new ScheduleConfig { Name = ScheduleKind.Linear, WarmupSteps = 5 },
                        Steps = 60,
                        Eval = new EvalConfig { EveryEpochs = 0 },
                        Logging = new LoggingConfig { Tensorboard = false, EverySteps = 10 },
                    },
                    RunDir = dir,
                }
            );
            Assert.Equal(60, result.Steps);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
        double after = EvalLoss(model);
        Assert.True(
            before > Math.Log(TextFixture.Tokenizer.VocabSize) - 0.5,
            $"untrained loss {before:F2} should be near ln(V)"
        );
        Assert.True(after < before - 1.0, $"masked-LM loss went from {before:F3} to {after:F3}");
    }

    [Fact]
    public void Attention_kl_is_zero_for_identical_attention_and_positive_otherwise_on_real_text()
    {
        using var a = TinyBert(2);
        using var b = TinyBert(3);
        a.eval();
        b.eval();
        using var _ = no_grad();
        using var batch = Batches(5).Epoch(0, CPU).First();
        var input = batch.Input;
        var ha = a.ForwardBlock(0, null, input);
        var hb = b.ForwardBlock(0, null, input);
        var (_, pa) = a.ForwardBlockWithAttention(1, ha, input);
        var (_, pb) = b.ForwardBlockWithAttention(1, hb, input);
        Assert.True(AttentionKlLoss.Compute(pa, pa, input.AttentionMask, averageHeads: false).item<float>() < 1e-6);
        float kl = AttentionKlLoss.Compute(pa, pb, input.AttentionMask, averageHeads: false).item<float>();
        Assert.True(kl > 1e-4, $"KL between two different BERTs' attention was {kl}");
    }

    [Fact]
    public void Imitation_of_a_bert_by_its_own_copy_costs_nothing_and_of_a_wider_bert_costs_something()
    {
        using var wide = TinyBert(4, inner: 2);
        using var copy = TinyBert(4, inner: 2);
        using var thin = TinyBert(5);
        copy.load_state_dict(wide.state_dict());
        // Block by block, the embeddings included (not copied), the attention KL head by head (inner widening keeps the heads).
        var options = new ImitationOptions
        {
            Normalize = true,
            AttentionWeight = 1.0,
            CopyEmbeddings = false,
        };
        using var batch = Batches(6).Epoch(0, CPU).First();
        double Loss(StagedModel student, int k)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            return new LayerwiseImitation(student, wide, options)
                .Unit(k)
                .Objective.Compute(batch, training: false)
                .Loss.item<float>();
        }
        for (int k = 0; k < wide.BlockCount; k++)
        {
            Assert.True(Loss(copy, k) < 1e-5, $"block {k}: a copy of the wide network should imitate it exactly");
            Assert.True(Loss(thin, k) > 1e-3, $"block {k}: a different thin network should not");
        }
    }
}
