using TorchSharp;
using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Text;

/// <summary>The downstream half of the BERT track on real IMDB reviews: labels, encoder transfer, learning.</summary>
[Collection("torch-rng")]
public class ImdbFineTuneTests
{
    const int TrainPerClass = 40,
        TestPerClass = 30,
        MaxLength = 64;

    // The same subsets as TextExperimentDataTests, so both hit the same token caches.
    static readonly Lazy<TextExperimentData> Data = new(() =>
    {
        TestData.Ensure("sotu");
        TestData.Ensure("brown");
        TestData.Ensure("imdb");
        return TextExperimentData.Load(
            TestData.DataDir,
            new TextDataOptions
            {
                VocabSize = 8000,
                PretrainDocuments = 400,
                ImdbTrainPerClass = TrainPerClass,
                ImdbTestPerClass = TestPerClass,
                ImdbValPerClass = TestPerClass,
                MaxLength = MaxLength,
                BatchSize = 16,
            }
        );
    });

    [Fact]
    public void Every_imdb_batch_row_carries_the_label_of_its_own_review()
    {
        var data = Data.Value;
        var imdb = ImdbReviews.Load(TextData.ImdbReviewsPath(TestData.DataDir));
        var train = RowsAndLabels(data.ImdbTrainBatches(seed: 3));
        var test = RowsAndLabels(data.ImdbTestBatches());

        // Built independently of TextExperimentData: the first N reviews of each class, tokenised and truncated here.
        CheckAgainst(train, imdb.Train, TrainPerClass, data.Tokenizer);
        CheckAgainst(test, imdb.Test, TestPerClass, data.Tokenizer);
        // Training batches mix the classes (the split itself is ordered by class).
        var firstBatch = train.Take(16).Select(r => r.Label).ToList();
        Assert.Contains(0, firstBatch);
        Assert.Contains(1, firstBatch);
    }

    static List<(string Tokens, int Label)> RowsAndLabels(IBatchSource source)
    {
        var rows = new List<(string, int)>();
        foreach (var batch in source.Epoch(0, CPU))
            using (batch)
            {
                long n = batch.Input.Input.shape[0],
                    t = batch.Input.Input.shape[1];
                var ids = batch.Input.Input.data<long>().ToArray();
                var mask = batch.Input.AttentionMask!.data<long>().ToArray();
                var labels = batch.Labels.data<long>().ToArray();
                for (int r = 0; r < n; r++)
                {
                    var row = ids.AsSpan(r * (int)t, (int)t);
                    int real = (int)mask.AsSpan(r * (int)t, (int)t).ToArray().Sum();
                    Assert.Equal(TextTokenizer.ClsId, row[0]);
                    Assert.Equal(TextTokenizer.SepId, row[real - 1]);
                    rows.Add((string.Join(' ', row[1..(real - 1)].ToArray()), (int)labels[r]));
                }
            }
        return rows;
    }

    static void CheckAgainst(
        List<(string Tokens, int Label)> rows,
        IReadOnlyList<TextExample> split,
        int perClass,
        TextTokenizer tokenizer
    )
    {
        var expected = new Dictionary<string, int>();
        foreach (var label in new[] { 0, 1 })
        foreach (var review in split.Where(e => e.Label == label).Take(perClass))
            expected[string.Join(' ', tokenizer.Encode(review.Text).Take(MaxLength - 2))] = label;
        Assert.Equal(2 * perClass, rows.Count);
        Assert.Equal(expected.Count, rows.Select(r => r.Tokens).Distinct().Count());
        foreach (var (tokens, label) in rows)
        {
            Assert.True(expected.TryGetValue(tokens, out var want), "a batch row is none of the selected reviews");
            Assert.Equal(want, label);
        }
    }

    static ModelConfig TinyBertConfig(BertHead head, int vocab, int positions) =>
        new()
        {
            Name = "bert",
            Layers = 2,
            Hidden = 64,
            Heads = 2,
            Intermediate = 128,
            Vocab = vocab,
            MaxPositions = positions,
            Head = head,
            Classes = 2,
        };

    static Bert TinyBert(long seed, BertHead head, int vocab, int positions)
    {
        manual_seed(seed);
        return (Bert)ModelFactory.Create(TinyBertConfig(head, vocab, positions));
    }

    [Fact]
    public void Downstream_copies_every_encoder_tensor_and_leaves_pooler_and_classifier_fresh()
    {
        using var pretrained = TinyBert(1, BertHead.MaskedLm, 500, 32);
        using var classifier = TinyBert(2, BertHead.Classification, 500, 32);
        var fresh = classifier.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        int copied = DownstreamStage.CopyEncoder(pretrained, classifier);

        var from = pretrained.state_dict();
        var encoderNames = fresh
            .Keys.Where(k => k.StartsWith("bert.embeddings.") || k.StartsWith("bert.encoder."))
            .ToList();
        Assert.Equal(encoderNames.Count, copied);
        foreach (var (name, tensor) in classifier.state_dict())
        {
            bool encoder = encoderNames.Contains(name);
            Assert.True(
                tensor.allclose(encoder ? from[name] : fresh[name], rtol: 0, atol: 0),
                $"{name} should {(encoder ? "be copied" : "stay fresh")}"
            );
        }
        Assert.Contains(fresh.Keys, k => k.StartsWith("bert.pooler."));
        Assert.Contains(fresh.Keys, k => k.StartsWith("classifier."));
    }

    [Fact]
    public void A_tiny_bert_from_scratch_fits_real_imdb_reviews_through_the_trainer()
    {
        var data = Data.Value;
        using var model = TinyBert(11, BertHead.Classification, data.VocabSize, data.MaxPositions);
        var objective = new ClassificationObjective(model);
        var inOrder = new SequenceClassificationBatchSource(
            data.ImdbTrain,
            data.ImdbTrainLabels,
            new ClassificationBatchOptions(40, MaxLength, Shuffle: false)
        );
        model.eval();
        var (lossBefore, _) = Trainer.Evaluate(objective, inOrder, CPU);
        var dir = TestData.NewTempFolder("bert-imdb");
        try
        {
            Trainer.Run(
                new TrainingJob
                {
                    Stage = "imdb",
                    Modules = new Dictionary<string, nn.Module> { ["model"] = model },
                    ParameterGroups = [WideThenNarrow.Training.ParameterGroup.Of("model", model)],
                    Objective = objective,
                    Train = data.ImdbTrainBatches(seed: 1),
                    Settings = new TrainerSettings
                    {
                        Optimizer = new OptimizerConfig
                        {
                            Name = OptimizerKind.AdamW,
                            Lr = 1e-3,
                            WeightDecay = 0.01,
                        },
                        Schedule = new ScheduleConfig { Name = ScheduleKind.Linear, WarmupSteps = 5 },
                        Steps = 60,
                        Eval = new EvalConfig { EveryEpochs = 0 },
                        Checkpoint = new CheckpointConfig { EverySteps = 0 },
                        Logging = new LoggingConfig { Tensorboard = false, EverySteps = 0 },
                    },
                    RunDir = dir,
                }
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
        model.eval();
        var (lossAfter, top1After) = Trainer.Evaluate(objective, inOrder, CPU);
        // A model that predicts one class, or whose classifier or encoder never trains, stays near 50% and ln 2.
        Assert.True(
            top1After >= 0.9,
            $"train top-1 after 60 steps {top1After:P1} (loss {lossBefore:F3} -> {lossAfter:F3})"
        );
        Assert.True(lossAfter < lossBefore - 0.3, $"loss {lossBefore:F3} -> {lossAfter:F3}");

        // Exported and evaluated as wtn eval does it: rebuilt from the manifest, the reviews read and tokenised again with
        // the vocabulary copied beside the weights, cut to the same length; the same 80 reviews give the trainer's numbers.
        var export = TestData.NewTempFolder("bert-export");
        try
        {
            var weights = Path.Combine(export, "imdb.safetensors");
            ModelExport.Write(
                model,
                TinyBertConfig(BertHead.Classification, data.VocabSize, data.MaxPositions),
                weights,
                new ExportInput
                {
                    Kind = "tokens",
                    Vocab = data.VocabPath,
                    MaxLength = MaxLength,
                    Classes = ClassifierEvaluation.ImdbClasses,
                }
            );
            using var back = ModelExport.Load(ModelExport.ManifestPath(weights));
            var r = ClassifierEvaluation.Imdb(
                back,
                TestData.DataDir,
                Path.Combine(export, "imdb.vocab.txt"),
                MaxLength,
                test: false,
                batchSize: 40,
                perClass: TrainPerClass
            );
            Assert.Equal(2 * TrainPerClass, r.Examples);
            Assert.Equal([TrainPerClass, TrainPerClass], r.PerClass.Select(c => c.Examples));
            Assert.Equal(top1After!.Value, r.Top1, 12);
            Assert.Equal(lossAfter!.Value, r.Loss, 5);
        }
        finally
        {
            TestData.DeleteFolder(export);
        }
    }
}
