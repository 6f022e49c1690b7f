using System.Text;
using System.Text.Json;
using WideThenNarrow.Config;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Orchestration;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

/// <summary>
/// A HuggingFace BERT folder (config.json, model.safetensors or pytorch_model.bin, vocab.txt) written by the PyTorch
/// peer at random, imported as the wide network: same logits as the peer's plain-torch BERT, its vocabulary for the
/// text, and the method run end to end with a thinner student.
/// </summary>
public class HuggingFaceImportTests(ITestOutputHelper output)
{
    const string Words = "the,film,was,and,a,story,good,great,bad,awful,plot,music,very";

    string PeerFolder(string parent, string format)
    {
        var folder = Path.Combine(parent, $"hf-{format}");
        var r = PyTorchPeerTests.RunPeer($"hf-folder \"{folder}\" {format} {Words}");
        output.WriteLine($"peer hf-folder {format}: exit {r.Code} {r.Stdout.Trim()} {r.Stderr.Trim()}");
        Assert.True(r.Code == 0, r.Stderr);
        return folder;
    }

    static ModelConfig ModelConfigOf(HuggingFaceBertConfig c) =>
        new()
        {
            Name = "bert",
            Layers = c.Layers,
            Hidden = c.Hidden,
            Heads = c.Heads,
            Intermediate = c.Intermediate,
            Vocab = c.Vocab,
            MaxPositions = c.MaxPositions,
            TypeVocab = c.TypeVocab,
            Head = BertHead.MaskedLm,
        };

    [Theory]
    [InlineData("safetensors")]
    [InlineData("bin")]
    public void An_imported_folder_gives_the_peers_logits(string format)
    {
        if (!PyTorchPeerTests.PeerAvailable(output))
            return;
        var dir = TestData.NewTempFolder("hf-logits");
        try
        {
            var folder = PeerFolder(dir, format);
            var hf = HuggingFaceBert.ReadConfig(folder);
            Assert.Equal(
                (2, 32, 4, 64, 64, 2, true),
                (hf.Layers, hf.Hidden, hf.Heads, hf.Intermediate, hf.MaxPositions, hf.TypeVocab, hf.Lowercase)
            );
            using var scope = NewDisposeScope();
            manual_seed(1);
            using var model = ModelFactory.Create(ModelConfigOf(hf));
            Assert.Empty(HuggingFaceBert.Load(model, folder)); // every tensor came from the file
            var io = Weights.Read(Path.Combine(folder, "io.safetensors"));
            model.eval();
            using var _ = no_grad();
            var logits = model.call(new ModelInput(io["input_ids"], io["attention_mask"], io["token_type_ids"]));
            Assert.Equal(io["logits"].shape, logits.shape);
            double diff = (logits - io["logits"]).abs().max().item<float>();
            output.WriteLine(
                $"{format}: max |logits - peer's| = {diff:G3} over {logits.numel()} logits (scale {io["logits"].abs().max().item<float>():G3})"
            );
            Assert.True(diff < 1e-5, $"max abs diff {diff}");
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    /// <summary>A BertModel checkpoint (no prefix, TF-era gamma/beta, a pooler): the encoder loads, the masked-LM head starts fresh.</summary>
    [Fact]
    public void A_bertmodel_checkpoint_gives_the_peers_hidden_states_and_a_fresh_head()
    {
        if (!PyTorchPeerTests.PeerAvailable(output))
            return;
        var dir = TestData.NewTempFolder("hf-bertmodel");
        try
        {
            var folder = PeerFolder(dir, "bertmodel");
            using var scope = NewDisposeScope();
            using var model = ModelFactory.Create(ModelConfigOf(HuggingFaceBert.ReadConfig(folder)));
            var notes = HuggingFaceBert.Load(model, folder);
            Assert.Contains(notes, n => n.Contains("start fresh") && n.Contains("cls.predictions"));
            var io = Weights.Read(Path.Combine(folder, "io.safetensors"));
            model.eval();
            using var _ = no_grad();
            var hidden = model.ForwardTrunk(
                new ModelInput(io["input_ids"], io["attention_mask"], io["token_type_ids"])
            );
            double diff = (hidden - io["hidden"]).abs().max().item<float>();
            output.WriteLine($"bertmodel: max |hidden - peer's| = {diff:G3}");
            Assert.True(diff < 1e-5, $"max abs diff {diff}");
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void A_google_layout_vocab_keeps_its_special_ids_and_casing()
    {
        var dir = TestData.NewTempFolder("hf-vocab");
        try
        {
            var vocab = Path.Combine(dir, "vocab.txt");
            File.WriteAllText(
                vocab,
                string.Join(
                    '\n',
                    ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "The", "film", "##s"]
                ) + "\n"
            );
            var lower = TextTokenizer.Load(vocab);
            Assert.Equal(new SpecialTokenIds(0, 2, 3, 4, 5), lower.Specials);
            Assert.Equal(6, lower.Specials.FirstRegular);
            Assert.Equal([6, 8, 9], lower.Encode("The films"));
            Assert.Equal([7, 8, 9], TextTokenizer.Load(vocab, lowercase: false).Encode("The films"));

            var corpus = TokenizedCorpus.Tokenize(lower, ["the films the film the films the film"]);
            var batch = new MaskedLmBatchSource(
                corpus,
                lower.VocabSize,
                new MaskedLmOptions(1, 12, 1.0, MaskFraction: 0, RandomFraction: 1, Specials: lower.Specials)
            )
                .Epoch(0, CPU)
                .First();
            var ids = batch.Input.Input.data<long>().ToArray();
            Assert.Equal(3, ids[0]); // [CLS]
            Assert.All(ids.Skip(1).Take(10), id => Assert.InRange(id, 6, 9)); // random replacements are regular tokens
            Assert.Equal(4, ids[11]); // [SEP]

            File.WriteAllText(vocab, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n");
            Assert.Contains("no line [MASK]", Assert.Throws<WtnException>(() => TextTokenizer.Load(vocab)).Message);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void Bad_folders_are_refused_naming_the_file_and_key()
    {
        var dir = TestData.NewTempFolder("hf-bad");
        try
        {
            var config = Path.Combine(dir, "config.json");
            File.WriteAllText(
                config,
                """{"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64, "vocab_size": 50}"""
            );
            var e = Assert.Throws<WtnException>(() => HuggingFaceBert.ReadConfig(dir));
            Assert.Contains($"{config}: no \"intermediate_size\"", e.Message);
            File.WriteAllText(
                config,
                """{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64, "vocab_size": 50, "hidden_act": "relu"}"""
            );
            Assert.Contains(
                "hidden_act is 'relu'",
                Assert.Throws<WtnException>(() => HuggingFaceBert.ReadConfig(dir)).Message
            );
            File.WriteAllText(
                config,
                """{"hidden_size": 30, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64, "vocab_size": 50}"""
            );
            Assert.Contains(
                "not a multiple of num_attention_heads",
                Assert.Throws<WtnException>(() => HuggingFaceBert.ReadConfig(dir)).Message
            );
            File.WriteAllText(
                config,
                """{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64, "vocab_size": 50}"""
            );
            Assert.Contains(
                "no model.safetensors or pytorch_model.bin",
                Assert.Throws<WtnException>(() => HuggingFaceBert.WeightsPath(dir)).Message
            );

            // A checkpoint of another depth or width than its config.json.
            var hf = HuggingFaceBert.ReadConfig(dir);
            using (var saved = ModelFactory.Create(ModelConfigOf(hf)))
                Weights.Save(saved, Path.Combine(dir, "pytorch_model.bin"));
            using (var deeper = ModelFactory.Create(ModelConfigOf(hf with { Layers = 3 })))
                Assert.Contains(
                    "pytorch_model.bin: 16 encoder tensor(s) missing, first 'bert.encoder.layer.2.",
                    Assert.Throws<WtnException>(() => HuggingFaceBert.Load(deeper, dir)).Message
                );
            using (var narrower = ModelFactory.Create(ModelConfigOf(hf with { Hidden = 16 })))
                Assert.Contains(
                    "the model built from config.json has",
                    Assert.Throws<WtnException>(() => HuggingFaceBert.Load(narrower, dir)).Message
                );

            // A cased model: tokenizer_config.json's do_lower_case reaches the text settings.
            File.WriteAllText(
                Path.Combine(dir, "vocab.txt"),
                "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"
                    + string.Join('\n', Enumerable.Range(0, 45).Select(i => $"w{i}"))
                    + "\n"
            );
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"do_lower_case": false}""");
            var cased = HuggingFaceImport.Resolve(
                ConfigLoader.Parse<ExperimentConfig>(
                    $"data: {{text: {{sequence_length: 32, max_length: 64}}}}\nmodels: {{thin: {{name: bert, hidden: 16, heads: 2}}}}\nwide: {{import: {dir}}}\n",
                    "x.yaml"
                )
            );
            Assert.False(cased.Data.Text!.Lowercase);
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"do_lower_case": "yes"}""");
            Assert.Contains(
                "do_lower_case must be true or false",
                Assert.Throws<WtnException>(() => HuggingFaceImport.Resolve(cased)).Message
            );
            File.Delete(Path.Combine(dir, "tokenizer_config.json"));

            // Vocabulary and config of two models.
            File.WriteAllText(Path.Combine(dir, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n");
            var c = ConfigLoader.Parse<ExperimentConfig>(
                $"data: {{text: {{}}}}\nmodels: {{thin: {{name: bert, hidden: 16, heads: 2}}}}\nwide: {{import: {dir}}}\n",
                "x.yaml"
            );
            Assert.Contains(
                "has 6 tokens but config.json says vocab_size 50",
                Assert.Throws<WtnException>(() => HuggingFaceImport.Resolve(c)).Message
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    /// <summary>
    /// The method with an imported wide BERT (32 wide, 4 heads) and a thin student of the same depth at hidden 16 with 4
    /// heads: projections in stage 2 only, attention per head; pretraining on a user's corpus tokenised with the
    /// folder's vocab.txt, then fine-tuning on a user's CSV.
    /// </summary>
    [Fact]
    public void The_method_runs_with_an_imported_wide_bert_and_a_thinner_student()
    {
        if (!PyTorchPeerTests.PeerAvailable(output))
            return;
        var dir = TestData.NewTempFolder("hf-run");
        try
        {
            var folder = PeerFolder(dir, "safetensors");
            var words = Words.Split(',');
            var rng = new Random(3);
            string Sentence() =>
                string.Join(' ', Enumerable.Range(0, 10).Select(_ => words[rng.Next(words.Length)])) + ".";
            var corpus = Path.Combine(dir, "corpus.txt");
            File.WriteAllText(
                corpus,
                string.Join("\n\n", Enumerable.Range(0, 16).Select(_ => Sentence() + " " + Sentence()))
            );
            var train = new StringBuilder("text,label\n");
            var test = new StringBuilder("text,label\n");
            for (int i = 0; i < 30; i++)
                (i < 20 ? train : test).Append($"{Sentence()} {(i % 2 == 0 ? "good" : "bad")},{i % 2}\n");
            File.WriteAllText(Path.Combine(dir, "train.csv"), train.ToString());
            File.WriteAllText(Path.Combine(dir, "test.csv"), test.ToString());
            var yaml = """
                name: hf-import
                data:
                  text: {corpus: @dir/corpus.txt, train_file: @dir/train.csv, test_file: @dir/test.csv, sequence_length: 16, max_length: 24, batch_size: 4, mlm_eval_every: 4, imdb_val_fraction: 0.2}
                models:
                  thin: {name: bert, hidden: 16, heads: 4, intermediate: 32}
                wide: {import: @folder}
                imitation: {attention_weight: 1.0, average_heads: false, train: {steps: 2, checkpoint: {every_steps: 0}}}
                finetune: {train: {steps: 2, eval: {every_epochs: 1}, checkpoint: {every_steps: 0}}}
                downstream: {train: {steps: 2, eval: {every_epochs: 1}, checkpoint: {every_steps: 0}}}
                report: {latency_repeats: 1}
                """.Replace("@dir", dir).Replace("@folder", folder);
            var config = ConfigLoader.Parse<ExperimentConfig>(yaml, "hf-import.yaml");
            var resolved = HuggingFaceImport.Resolve(config);
            Assert.Equal(
                (2, 32, 4, 64, 64),
                (
                    resolved.Models.Wide.Layers,
                    resolved.Models.Wide.Hidden,
                    resolved.Models.Wide.Heads,
                    resolved.Models.Wide.Intermediate,
                    resolved.Models.Wide.MaxPositions
                )
            );
            Assert.Equal(2, resolved.Models.Thin.Layers); // the checkpoint's depth
            Assert.Equal(Path.GetFullPath(Path.Combine(folder, "vocab.txt")), resolved.Data.Text!.Vocab);

            var dataDir = Directory.CreateDirectory(Path.Combine(dir, "data")).FullName;
            var logs = new List<string>();
            var runner = new ExperimentRunner(
                config,
                Path.Combine(dir, "runs"),
                dataDir,
                CPU,
                log: new Progress<string>(logs.Add)
            );
            var result = runner.Run();
            var imitation = result.PerSeed[0]["imitation"];
            // Hidden 16 vs 32: every point had a projection pair, and none is left in the thin network.
            Assert.Equal(3, imitation.Adapters!.Count);
            Assert.All(imitation.Adapters, a => Assert.Equal(AdapterFateKind.Dropped, a.Kind));
            // 4 thin heads against 4 wide heads: the attention KL ran head by head in every encoder block's imitation.
            for (int k = 1; k <= 2; k++)
                Assert.Contains(
                    "\"attention_kl\"",
                    File.ReadAllText(
                        Path.Combine(dir, "runs", "hf-import", "seed-0", "imitation", $"block-{k:D2}", "metrics.jsonl")
                    )
                );
            Assert.Contains(result.Methods, r => r.Stages.Contains("downstream_finetune") && r.TestTop1 is not null);
            var runConfig = File.ReadAllText(Path.Combine(dir, "runs", "hf-import", ExperimentRunner.RunConfigFile));
            Assert.Contains("hidden: 32", runConfig);

            // The exported thin encoder keeps the folder's vocabulary and is scored on held-out corpus text.
            var mlm = runner.Exporter.Export("finetune", 0, Path.Combine(dir, "out", "thin.safetensors"));
            Assert.Equal(
                File.ReadAllText(Path.Combine(folder, "vocab.txt")),
                File.ReadAllText(Path.Combine(dir, "out", mlm.Input.Vocab!))
            );
            using var thin = ModelExport.Load(Path.Combine(dir, "out", "thin.json"));
            var r = WideThenNarrow.Training.MaskedLmEvaluation.HeldOut(
                thin,
                dataDir,
                Path.Combine(dir, "out", mlm.Input.Vocab!),
                16,
                mlm.Input.HeldOut!,
                8
            );
            Assert.Equal(mlm.TestTop1!.Value, r.Top1, 9);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
