using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

public class WeightsTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("wtn-weights-").FullName;

    public void Dispose() => TestData.DeleteFolder(dir);

    static StagedModel TrainedCifar(int classes = 5)
    {
        manual_seed(9);
        var model = ModelFactory.Create(new ModelConfig { Name = "cifar-resnet20", Classes = classes });
        model.train();
        using var _ = no_grad();
        for (int i = 0; i < 3; i++)
            model.call(new ModelInput(randn(4, 3, 16, 16) + 1));
        return model;
    }

    [Theory]
    [InlineData("w.pth")]
    [InlineData("w.safetensors")]
    public void Every_tensor_round_trips_including_batchnorm_statistics(string file)
    {
        using var scope = NewDisposeScope();
        using var a = TrainedCifar();
        var path = Path.Combine(dir, file);
        Weights.Save(a, path);
        manual_seed(123);
        using var b = ModelFactory.Create(new ModelConfig { Name = "cifar-resnet20", Classes = 5 });
        Weights.Load(b, path);
        var sa = a.state_dict();
        var sb = b.state_dict();
        Assert.Equal(sa.Keys.Order(), sb.Keys.Order());
        Assert.Contains("layer2.0.bn1.running_var", sa.Keys);
        foreach (var (k, v) in sa)
            Assert.True(
                v.shape.SequenceEqual(sb[k].shape) && v.eq(sb[k]).all().item<bool>(),
                $"{k} differs after the round trip"
            );
        Assert.Equal(3L, sb["bn1.num_batches_tracked"].item<long>());
        Assert.Equal(sa.Keys.Order(), Weights.ReadShapes(path).Keys.Order());
    }

    [Fact]
    public void Shape_mismatch_is_one_line_naming_file_key_and_shapes()
    {
        using var a = TrainedCifar(classes: 5);
        var path = Path.Combine(dir, "five.pth");
        Weights.Save(a, path);
        using var b = ModelFactory.Create(new ModelConfig { Name = "cifar-resnet20", Classes = 7 });
        var e = Assert.Throws<WtnException>(() => Weights.Load(b, path));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(path, e.Message);
        Assert.Contains("fc.weight is 5x64 in the file, 7x64 in the model", e.Message);
    }

    [Fact]
    public void Missing_and_unexpected_keys_are_named()
    {
        using var a = TrainedCifar();
        var path = Path.Combine(dir, "a.safetensors");
        Weights.Save(a, path);
        using var proj = ModelFactory.Create(
            new ModelConfig
            {
                Name = "cifar-resnet20",
                Classes = 5,
                ProjectionShortcuts = true,
            }
        );
        var e = Assert.Throws<WtnException>(() => Weights.Load(proj, path));
        Assert.Contains("missing key(s), first 'layer2.0.downsample.0.weight'", e.Message);
        Weights.Save(proj, path);
        e = Assert.Throws<WtnException>(() => Weights.Load(a, path));
        Assert.Contains("unexpected key(s), first 'layer2.0.downsample.", e.Message);
    }

    [Fact]
    public void Missing_and_corrupt_files_are_user_errors_naming_the_file()
    {
        using var a = ModelFactory.Create(
            new ModelConfig
            {
                Name = "mlp",
                InputDim = 4,
                Width = 8,
                Depth = 2,
            }
        );
        var missing = Path.Combine(dir, "nope.pth");
        Assert.Contains(missing, Assert.Throws<WtnException>(() => Weights.Load(a, missing)).Message);
        foreach (var name in new[] { "bad.pth", "bad.safetensors" })
        {
            var bad = Path.Combine(dir, name);
            File.WriteAllBytes(bad, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
            var e = Assert.Throws<WtnException>(() => Weights.Load(a, bad));
            Assert.Contains(bad, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    /// <summary>
    /// A BERT export: the manifest holds the sizes before widening (inner=2 here doubles the heads and keeps the head size,
    /// so hidden_size is not heads x head size), the network rebuilt from it gives the same outputs bit for bit, and
    /// the vocabulary travels beside the weights.
    /// </summary>
    [Fact]
    public void Bert_export_rebuilds_from_its_manifest_and_carries_the_vocabulary()
    {
        using var scope = NewDisposeScope();
        var config = new ModelConfig
        {
            Name = "bert-tiny",
            Vocab = 60,
            MaxPositions = 16,
            Classes = 3,
            Widen = Widening.Parse("inner=2"),
            WidenHeads = HeadWidening.Count,
        };
        manual_seed(4);
        using var model = ModelFactory.Create(config);
        model.eval();
        var vocab = Path.Combine(dir, "vocab.txt");
        File.WriteAllLines(vocab, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the"]);
        var weights = Path.Combine(dir, "out", "bert.safetensors");
        var m = ModelExport.Write(
            model,
            config,
            weights,
            new ExportInput
            {
                Kind = "tokens",
                Vocab = vocab,
                MaxLength = 16,
            }
        );
        Assert.Equal("bert", m.Family);
        Assert.Equal("bert.vocab.txt", m.Input.Vocab);
        Assert.Equal(File.ReadAllText(vocab), File.ReadAllText(Path.Combine(dir, "out", "bert.vocab.txt")));
        var json = File.ReadAllText(Path.Combine(dir, "out", "bert.json"));
        foreach (
            var field in new[]
            {
                "\"heads\": 2",
                "\"widen_heads\": \"count\"",
                "\"num_attention_heads\": 4",
                "\"hidden_size\": 128",
                "\"attention_head_size\": 64",
                "\"intermediate_size\": 1024",
            }
        )
            Assert.Contains(field, json);
        using var back = ModelExport.Load(Path.Combine(dir, "out", "bert.json"));
        var input = new ModelInput(
            randint(5, 60, [2, 9]),
            ones(2, 9, dtype: ScalarType.Int64),
            zeros(2, 9, dtype: ScalarType.Int64)
        );
        using (no_grad())
            Assert.True(back.call(input).eq(model.call(input)).all().item<bool>());
        Assert.Equal(((Bert)model).Sizes, ((Bert)back).Sizes);
        // widen_heads is required: a manifest without it is refused in one line naming the file and the key.
        var without = Path.Combine(dir, "out", "bert.json");
        File.WriteAllText(without, json.Replace("\"widen_heads\": \"count\",", ""));
        Assert.DoesNotContain("widen_heads", File.ReadAllText(without));
        var e = Assert.Throws<WtnException>(() => ModelExport.Load(without));
        Assert.Equal($"export manifest {without}: model.widen_heads is missing or of the wrong type", e.Message);
        Assert.Throws<WtnException>(() => ModelExport.CheckPath("bert.json"));
    }
}
