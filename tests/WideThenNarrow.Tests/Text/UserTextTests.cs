using System.Text;
using WideThenNarrow.Config;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Tests.Cli;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Text;

/// <summary>Your own text: strict readers of labelled CSV/TSV/JSONL and corpora, and a tiny pretrain + fine-tune on them.</summary>
public class UserTextTests
{
    static string Write(string folder, string name, string text)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }

    [Fact]
    public void Csv_with_rfc4180_quoting_tsv_and_jsonl_read_the_same_rows()
    {
        var dir = TestData.NewTempFolder("labelled");
        try
        {
            var csv = Write(
                dir,
                "a.csv",
                "id,text,label\r\n1,\"Fine, really.\nTwo lines, \"\"quoted\"\".\",pos\r\n2,plain text,neg\r\n\r\n3,x,neg\n"
            );
            var rows = LabelledTextFile.Read(csv);
            Assert.Equal(3, rows.Count);
            Assert.Equal("Fine, really.\nTwo lines, \"quoted\".", rows[0].Text);
            Assert.Equal(("pos", 2), (rows[0].Label, rows[0].Line));
            Assert.Equal(("plain text", "neg", 4), (rows[1].Text, rows[1].Label, rows[1].Line));
            Assert.Equal(6, rows[2].Line); // after a blank line, which is skipped
            Assert.Equal(["neg", "pos"], LabelledTextFile.Classes(csv, rows));

            var tsv = Write(dir, "a.tsv", "label\ttext\n10\tit said \"hi\", twice\n2\tanother\n");
            var t = LabelledTextFile.Read(tsv);
            Assert.Equal("it said \"hi\", twice", t[0].Text);
            Assert.Equal(["2", "10"], LabelledTextFile.Classes(tsv, t)); // integer labels in numeric order

            var jsonl = Write(
                dir,
                "a.jsonl",
                "{\"text\": \"first\", \"label\": 1}\n\n{\"text\": \"second\", \"label\": \"0\", \"extra\": [1]}\n"
            );
            var j = LabelledTextFile.Read(jsonl);
            Assert.Equal([("first", "1", 1), ("second", "0", 3)], j.Select(r => (r.Text, r.Label, r.Line)));

            var custom = Write(dir, "b.csv", "review,stars\nnice,5\nbad,1\n");
            Assert.Equal("nice", LabelledTextFile.Read(custom, "review", "stars")[0].Text);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    public static TheoryData<string, string, string> BadRows =>
        new()
        {
            { "fields.csv", "text,label\ngood,1\na, b, c,0\n", ":3: 4 field(s) where the header has 2" },
            {
                "open.csv",
                "text,label\ngood,1\n\"never closed,0\nmore\n",
                ":3: a quoted field opened on this line is never closed"
            },
            { "after.csv", "text,label\n\"quoted\" tail,1\n", ":2: text after the closing quote" },
            { "bare.csv", "text,label\nsay \"hi\",1\n", ":2: a quote inside unquoted field 1" },
            { "empty.csv", "text,label\ngood,1\n   ,0\n", ":3: empty text" },
            { "nolabel.tsv", "text\tlabel\ngood\t\n", ":2: empty label" },
            { "header.csv", "body,label\ngood,1\n", ":1: the header has no column 'text'" },
            { "json.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 0\n", ":2: not valid JSON" },
            { "array.jsonl", "[\"a\", 1]\n", ":1: a JSON array, not an object" },
            { "nokey.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"label\": 0}\n", ":2: no \"text\" key" },
            { "float.jsonl", "{\"text\": \"a\", \"label\": 0.5}\n", ":1: \"label\" is the number 0.5" },
            { "textnum.jsonl", "{\"text\": 3, \"label\": 1}\n", ":1: \"text\" is a JSON number" },
        };

    [Theory]
    [MemberData(nameof(BadRows))]
    public void A_bad_row_is_one_line_naming_file_and_line(string name, string content, string expected)
    {
        var dir = TestData.NewTempFolder("bad-rows");
        try
        {
            var path = Write(dir, name, content);
            var e = Assert.Throws<WtnException>(() => LabelledTextFile.Read(path));
            Assert.Contains(path + expected, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void Invalid_utf8_unknown_test_labels_and_one_class_are_refused_by_line()
    {
        var dir = TestData.NewTempFolder("bad-files");
        try
        {
            var bytes = Path.Combine(dir, "bytes.csv");
            File.WriteAllBytes(bytes, [.. "text,label\nok,1\n"u8, 0xC3, 0x28, .. ",0\n"u8]);
            var e = Assert.Throws<WtnException>(() => LabelledTextFile.Read(bytes));
            Assert.Contains($"{bytes}:3: not valid UTF-8", e.Message);

            var train = Write(dir, "train.csv", "text,label\na,x\nb,y\n");
            var test = Write(
                dir,
                "test.jsonl",
                "{\"text\": \"c\", \"label\": \"x\"}\n{\"text\": \"d\", \"label\": \"z\"}\n"
            );
            e = Assert.Throws<WtnException>(() => LabelledTask.FromFiles(train, test, "text", "label"));
            Assert.Contains($"{test}:2: label 'z' is not one of the classes", e.Message);

            var one = Write(dir, "one.csv", "text,label\na,x\nb,x\n");
            e = Assert.Throws<WtnException>(() => LabelledTask.FromFiles(one, test, "text", "label"));
            Assert.Contains("at least two classes", e.Message);

            e = Assert.Throws<WtnException>(() =>
                TextExperimentData.Load(
                    dir,
                    new TextDataOptions { TrainFile = train, TestFile = Path.Combine(dir, "missing.csv") }
                )
            );
            Assert.Equal($"data.text.test_file: {Path.Combine(dir, "missing.csv")} not found", e.Message);

            e = Assert.Throws<WtnException>(() => LabelledTextFile.Read(Write(dir, "x.txt", "a")));
            Assert.Contains(".csv, .tsv or .jsonl", e.Message);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void A_corpus_file_is_split_into_paragraphs_and_a_folder_into_files()
    {
        var dir = TestData.NewTempFolder("corpus");
        try
        {
            var file = Write(dir, "one.txt", "First line\r\nsame paragraph.\r\n\r\n\n  \nSecond.\n");
            Assert.Equal(["First line\nsame paragraph.", "Second."], PlainTextCorpus.ReadCorpus(file));
            var folder = Directory.CreateDirectory(Path.Combine(dir, "docs")).FullName;
            Write(folder, "b.txt", "bee");
            Write(folder, "a.txt", "ay");
            Write(folder, "skip.md", "not text");
            Assert.Equal(["ay", "bee"], PlainTextCorpus.ReadCorpus(folder));
            Assert.Contains(
                "no .txt files",
                Assert
                    .Throws<WtnException>(() =>
                        PlainTextCorpus.ReadCorpus(Directory.CreateDirectory(Path.Combine(dir, "none")).FullName)
                    )
                    .Message
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void The_readmes_overrides_set_the_users_files()
    {
        var c = ConfigLoader.Load<ExperimentConfig>(
            Path.Combine(TestData.RepoRoot, "experiments", "imdb-bert-quick.yaml"),
            ["data.text.corpus=my-corpus/", "data.text.train_file=train.csv", "data.text.test_file=test.csv"]
        );
        Assert.Equal(
            ("my-corpus/", "train.csv", "test.csv"),
            (c.Data.Text!.Corpus, c.Data.Text.TrainFile, c.Data.Text.TestFile)
        );
        Assert.Empty(ExperimentDatasets.Sources(c.Data)); // nothing to fetch
    }

    static readonly string[] Good = ["good", "great", "lovely", "fine", "superb", "happy"];
    static readonly string[] Bad = ["bad", "awful", "poor", "dull", "boring", "sad"];
    static readonly string[] Filler =
    [
        "the",
        "film",
        "was",
        "and",
        "a",
        "story",
        "with",
        "actors",
        "plot",
        "music",
        "scene",
        "ending",
        "very",
        "quite",
    ];

    static string Sentence(Random rng, string[] mood, int words) =>
        string.Join(
            ' ',
            Enumerable
                .Range(0, words)
                .Select(i => i % 3 == 1 ? mood[rng.Next(mood.Length)] : Filler[rng.Next(Filler.Length)])
        ) + ".";

    /// <summary>
    /// A corpus folder, a CSV to fine-tune on and a JSONL to test on, all written here: the whole track runs on them
    /// (vocabulary built from the corpus, validation carved from the CSV), and <c>wtn eval</c> on the JSONL gives the
    /// fine-tuned classifier's test top-1 again.
    /// </summary>
    [Fact]
    public void A_users_corpus_and_labelled_files_pretrain_fine_tune_and_evaluate()
    {
        var dir = TestData.NewTempFolder("user-text");
        try
        {
            var rng = new Random(7);
            var corpus = Directory.CreateDirectory(Path.Combine(dir, "corpus")).FullName;
            for (int d = 0; d < 12; d++)
                Write(
                    corpus,
                    $"doc{d:D2}.txt",
                    string.Join(" ", Enumerable.Range(0, 30).Select(_ => Sentence(rng, d % 2 == 0 ? Good : Bad, 9)))
                );
            var train = new StringBuilder("text,label\n");
            for (int i = 0; i < 60; i++)
                train.Append(
                    $"\"{Sentence(rng, i % 2 == 0 ? Good : Bad, 8)} It said \"\"{(i % 2 == 0 ? "yes" : "no")}\"\", then more.\",{(i % 2 == 0 ? "pos" : "neg")}\n"
                );
            var test = new StringBuilder();
            for (int i = 0; i < 20; i++)
                test.Append(
                    $"{{\"text\": \"{Sentence(rng, i % 2 == 0 ? Good : Bad, 8)}\", \"label\": \"{(i % 2 == 0 ? "pos" : "neg")}\"}}\n"
                );
            var trainFile = Write(dir, "train.csv", train.ToString());
            var testFile = Write(dir, "test.jsonl", test.ToString());
            var yaml = """
                name: user-text
                data:
                  text: {corpus: @corpus, train_file: @trainFile, test_file: @testFile, vocab_size: 120, sequence_length: 16, max_length: 24, batch_size: 8, mlm_eval_every: 4, imdb_val_fraction: 0.2}
                models:
                  thin: {name: bert, layers: 2, hidden: 16, heads: 2, intermediate: 32}
                  wide: {name: bert, layers: 2, hidden: 16, heads: 2, intermediate: 32, widen: inner=2}
                wide: {train: {steps: 3, eval: {every_epochs: 1}, checkpoint: {every_steps: 0}}}
                imitation: {average_heads: true, train: {steps: 1, checkpoint: {every_steps: 0}}}
                finetune: {train: {steps: 2, eval: {every_epochs: 1}, checkpoint: {every_steps: 0}}}
                standard: {train: {steps: 3, eval: {every_epochs: 1}, checkpoint: {every_steps: 0}}}
                downstream: {train: {steps: 3, eval: {every_epochs: 1}, checkpoint: {every_steps: 0}}}
                report: {latency_repeats: 1}
                """.Replace("@corpus", corpus).Replace("@trainFile", trainFile).Replace("@testFile", testFile);
            var config = ConfigLoader.Parse<ExperimentConfig>(yaml, "user-text.yaml");
            var dataDir = Directory.CreateDirectory(Path.Combine(dir, "data")).FullName; // no built-in corpus is needed
            var runs = Path.Combine(dir, "runs");

            var data = TextExperimentData.Load(dataDir, config.Data.Text!);
            Assert.Equal(["neg", "pos"], data.Task.Classes);
            Assert.Equal((48, 12, 20), (data.ImdbTrain.Count, data.ImdbValidation.Count, data.ImdbTest.Count)); // 20% of each class validates
            Assert.InRange(data.VocabSize, 40, 120);
            Assert.Contains("lovely", File.ReadAllLines(data.VocabPath)); // built from the corpus
            Assert.NotNull(data.UserFilesHash);
            Assert.Empty(ExperimentDatasets.Sources(config.Data));

            var runner = new ExperimentRunner(config, runs, dataDir, CPU);
            var result = runner.Run();
            Assert.Contains(result.Methods, r =>
                r.Method == "thin: go wide, then narrow, fine-tuned on train.csv" && r.TestTop1 is not null
            );
            var exported = Path.Combine(dir, "out", "clf.safetensors");
            var manifest = runner.Exporter.Export("downstream_finetune", 0, exported);
            Assert.Equal(["neg", "pos"], manifest.Input.Classes);

            var (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir {dataDir} eval {Path.ChangeExtension(exported, ".json")} --dataset {testFile} --json"
            );
            Assert.True(code == 0, stderr);
            var eval = System.Text.Json.JsonDocument.Parse(stdout).RootElement;
            Assert.Equal(20, eval.GetProperty("examples").GetInt64());
            Assert.Equal(manifest.TestTop1!.Value, eval.GetProperty("top1").GetDouble(), 9);

            // The files' contents are part of every stage's settings: an edited file is a changed setting, refused.
            Assert.Contains(
                "files.sha256",
                File.ReadAllText(
                    Directory.GetFiles(
                        Path.Combine(runs, "user-text", "seed-0", "standard"),
                        "config.yaml",
                        SearchOption.AllDirectories
                    )[0]
                )
            );
            File.AppendAllText(trainFile, "\"one more good row\",pos\n");
            var edited = Assert.Throws<WtnException>(() => new ExperimentRunner(config, runs, dataDir, CPU).Report());
            Assert.Contains("files.sha256", edited.Message);
            File.WriteAllText(trainFile, train.ToString());

            // The held-out corpus text of a pretraining stage, as wtn eval reads it from the manifest.
            var mlm = runner.Exporter.Export("standard", 0, Path.Combine(dir, "out", "mlm.safetensors"));
            Assert.Equal(Path.GetFullPath(corpus), mlm.Input.HeldOut!.Corpus);
            (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir {dataDir} eval {Path.Combine(dir, "out", "mlm.json")} --json"
            );
            Assert.True(code == 0, stderr);
            Assert.Equal(
                mlm.TestTop1!.Value,
                System.Text.Json.JsonDocument.Parse(stdout).RootElement.GetProperty("top1").GetDouble(),
                9
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
