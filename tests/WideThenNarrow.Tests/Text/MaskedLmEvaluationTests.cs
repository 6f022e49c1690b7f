using System.Text.Json;
using TorchSharp;
using WideThenNarrow.Config;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Tests.Cli;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Text;

/// <summary><c>wtn eval</c> on a masked-LM encoder: the run's held-out text gives the run's own number, through the export.</summary>
[Collection("torch-rng")]
public class MaskedLmEvaluationTests
{
    // The same subsets as ImdbFineTuneTests and TextExperimentDataTests, so all three hit the same token caches.
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
                ImdbTrainPerClass = 40,
                ImdbTestPerClass = 30,
                MaxLength = 64,
                BatchSize = 16,
            }
        );
    });

    static ModelConfig Config(int vocab, int positions) =>
        new()
        {
            Name = "bert",
            Layers = 2,
            Hidden = 64,
            Heads = 2,
            Intermediate = 128,
            Vocab = vocab,
            MaxPositions = positions,
            Head = BertHead.MaskedLm,
        };

    [Fact]
    public void The_export_on_its_runs_held_out_text_gives_the_runs_masked_token_top1_at_any_batch_size()
    {
        var data = Data.Value;
        manual_seed(21);
        using var model = (Bert)ModelFactory.Create(Config(data.VocabSize, data.MaxPositions));
        var dir = TestData.NewTempFolder("mlm-eval");
        try
        {
            // Briefly pretrained, so that it gets some masked tokens right (the frequent ones): equal numbers then mean something.
            Trainer.Run(
                new TrainingJob
                {
                    Stage = "mlm",
                    Modules = new Dictionary<string, nn.Module> { ["model"] = model },
                    ParameterGroups = [WideThenNarrow.Training.ParameterGroup.Of("model", model)],
                    Objective = new MaskedLmObjective(model),
                    Train = data.MaskedLmTrain(seed: 1),
                    Settings = new TrainerSettings
                    {
                        Optimizer = new OptimizerConfig { Name = OptimizerKind.AdamW, Lr = 2e-3 },
                        Schedule = new ScheduleConfig { Name = ScheduleKind.Constant },
                        Steps = 30,
                        Eval = new EvalConfig { EveryEpochs = 0 },
                        Checkpoint = new CheckpointConfig { EverySteps = 0 },
                        Logging = new LoggingConfig { Tensorboard = false, EverySteps = 0 },
                    },
                    RunDir = Path.Combine(dir, "run"),
                }
            );
            model.eval();
            // What a run reports for a masked-LM stage: the trainer's evaluation of the held-out source (batches of 16).
            var (_, runTop1) = Trainer.Evaluate(new MaskedLmObjective(model), data.MaskedLmEval(), CPU);
            Assert.True(runTop1 > 0.02, $"masked-token top-1 after 30 steps {runTop1:P2}: pretraining did not learn");
            // The mean over masked tokens: the whole held-out text in one batch, where the trainer's per-batch mean is that.
            var whole = new MaskedLmBatchSource(
                data.PretrainEval,
                data.VocabSize,
                new MaskedLmOptions(
                    10_000,
                    data.Options.SequenceLength,
                    data.Options.MaskProbability,
                    Seed: TextExperimentData.EvalMaskSeed,
                    Shuffle: false
                )
            );
            var (tokenLoss, _) = Trainer.Evaluate(new MaskedLmObjective(model), whole, CPU);
            long masked,
                shownMask,
                shownKept;
            using (var all = whole.Epoch(0, CPU).Single())
            {
                var selected = all.Labels.ne(MaskedLmBatchSource.IgnoreIndex);
                masked = selected.sum().item<long>();
                // What the encoder saw at the selected positions, counted straight from the batch.
                shownMask = all.Input.Input.eq(SpecialTokenIds.Ours.Mask).logical_and(selected).sum().item<long>();
                shownKept = all.Input.Input.eq(all.Labels).logical_and(selected).sum().item<long>();
            }
            // Top-1 is a count of tokens; the same tokens in other batches may differ in the last bits of their scores, which
            // could flip a near tie, so the run's top-1 is matched to within one token.
            double oneToken = 1.0 / masked;

            var weights = Path.Combine(dir, "mlm.safetensors");
            ModelExport.Write(
                model,
                Config(data.VocabSize, data.MaxPositions),
                weights,
                new MaskedLmExperimentDataset(data).ExportInput(),
                "test",
                runTop1,
                runTop1
            );
            var manifest = ExportManifest.Read(ModelExport.ManifestPath(weights));
            Assert.Equal(data.HeldOut, manifest.Input.HeldOut);
            using var back = ModelExport.Load(ModelExport.ManifestPath(weights));
            var vocab = Path.Combine(dir, manifest.Input.Vocab!);
            foreach (var batch in new[] { 5, 64 })
            {
                // Read again from the data folder by the manifest's recipe, tokenised with the vocabulary copied beside the weights.
                var r = MaskedLmEvaluation.HeldOut(
                    back,
                    TestData.DataDir,
                    vocab,
                    manifest.Input.MaxLength!.Value,
                    manifest.Input.HeldOut!,
                    batch
                );
                Assert.Equal(data.PretrainEval.Count, r.Documents);
                Assert.True(masked > 100, $"{masked} masked tokens");
                Assert.Equal(masked, r.MaskedTokens);
                Assert.InRange(r.Top1, runTop1!.Value - oneToken, runTop1.Value + oneToken);
                Assert.Equal(tokenLoss!.Value, r.Loss, 4);
                Assert.Equal(Math.Exp(r.Loss), r.Perplexity, 9);
                // By what was shown in the token's place: BERT's 80/10/10, the same tokens at every batch size, and
                // the three shares' hits add up to the top-1.
                var by = r.ByShown!;
                Assert.Equal((shownMask, shownKept), (by.MaskTokens, by.KeptTokens));
                Assert.Equal(masked, by.MaskTokens + by.ReplacedTokens + by.KeptTokens);
                Assert.InRange((double)by.MaskTokens / masked, 0.7, 0.9);
                Assert.InRange((double)by.KeptTokens / masked, 0.04, 0.16);
                Assert.Equal(
                    r.Top1 * masked,
                    by.MaskTop1!.Value * by.MaskTokens
                        + by.ReplacedTop1!.Value * by.ReplacedTokens
                        + by.KeptTop1!.Value * by.KeptTokens,
                    6
                );
            }

            // Through the CLI, as a user runs it: the default text is the held-out one.
            var (code, stdout, stderr) = WtnProcess.Run(
                $"eval \"{ModelExport.ManifestPath(weights)}\" --json --threads 1 --data-dir \"{TestData.DataDir}\""
            );
            Assert.True(code == 0, stderr);
            using var json = JsonDocument.Parse(stdout);
            Assert.InRange(
                json.RootElement.GetProperty("top1").GetDouble(),
                runTop1.Value - oneToken,
                runTop1.Value + oneToken
            );
            Assert.Equal(masked, json.RootElement.GetProperty("maskedTokens").GetInt64());
            Assert.Equal("held-out", json.RootElement.GetProperty("split").GetString());
            Assert.Equal(shownMask, json.RootElement.GetProperty("byShown").GetProperty("maskTokens").GetInt64());

            // Other text: IMDB's test half (never pretraining text), N reviews per class; a user's .txt file.
            var imdb = MaskedLmEvaluation.Text(
                back,
                "imdb",
                TestData.DataDir,
                vocab,
                128,
                test: true,
                perClass: 5,
                batchSize: 8
            );
            Assert.Equal((10, "test"), (imdb.Documents, imdb.Split));
            Assert.InRange(imdb.Top1, 0.0, 1.0);
            var txt = Path.Combine(dir, "mine.txt");
            File.WriteAllText(txt, string.Join("\n\n", TextFixture.HeldOutTexts.Take(2)));
            var mine = MaskedLmEvaluation.Text(
                back,
                txt,
                TestData.DataDir,
                vocab,
                128,
                test: true,
                perClass: null,
                batchSize: 8
            );
            Assert.Equal(1, mine.Documents);
            Assert.True(mine.MaskedTokens > 0);

            // Refused with the option named: classes where there are none, a vocabulary the network was not built for.
            var e = Assert.Throws<WtnException>(() =>
                MaskedLmEvaluation.Text(back, "sotu", TestData.DataDir, vocab, 128, true, perClass: 5, batchSize: 8)
            );
            Assert.StartsWith("--per-class", e.Message);
            var small = Path.Combine(dir, "small.vocab.txt");
            File.WriteAllLines(small, File.ReadLines(vocab).Take(500));
            e = Assert.Throws<WtnException>(() =>
                MaskedLmEvaluation.Text(back, txt, TestData.DataDir, small, 128, true, null, 8)
            );
            Assert.Contains("500 tokens", e.Message);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
