using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

public class WeightsTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("wtn-weights-").FullName;

    public void Dispose() => Directory.Delete(dir, true);

    static StagedModel TrainedCifar(int classes = 5)
    {
        manual_seed(9);
        var model = ModelFactory.Create(new ModelConfig { Name = "cifar-resnet20", Classes = classes });
        model.train();
        using var _ = no_grad();
        for (int i = 0; i < 3; i++) model.call(new ModelInput(randn(4, 3, 16, 16) + 1));
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
        foreach (var (k, v) in sa) Assert.True(v.shape.SequenceEqual(sb[k].shape) && v.eq(sb[k]).all().item<bool>(), $"{k} differs after the round trip");
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
        using var proj = ModelFactory.Create(new ModelConfig { Name = "cifar-resnet20", Classes = 5, ProjectionShortcuts = true });
        var e = Assert.Throws<WtnException>(() => Weights.Load(proj, path));
        Assert.Contains("missing key(s), first 'layer2.0.downsample.0.weight'", e.Message);
        Weights.Save(proj, path);
        e = Assert.Throws<WtnException>(() => Weights.Load(a, path));
        Assert.Contains("unexpected key(s), first 'layer2.0.downsample.", e.Message);
    }

    [Fact]
    public void Missing_and_corrupt_files_are_user_errors_naming_the_file()
    {
        using var a = ModelFactory.Create(new ModelConfig { Name = "mlp", InputDim = 4, Width = 8, Depth = 2 });
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
}
