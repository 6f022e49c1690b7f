using WideThenNarrow.Data;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Data;

public class LoaderBenchmarkTests
{
    [Fact]
    public void Benchmark_times_the_loader_and_a_real_training_step()
    {
        using var scope = NewDisposeScope();
        manual_seed(0);
        var x = randint(0, 256, [64, 1, 8, 8]).to(ScalarType.Byte).DetachFromDisposeScope();
        var y = arange(64).remainder(4).DetachFromDisposeScope();
        using var ds = new ImageDataset(
            "tiny",
            new ImageSplit(x, y),
            new ImageSplit(x.clone().DetachFromDisposeScope(), y.clone().DetachFromDisposeScope()),
            ["a", "b", "c", "d"]
        );
        var r = LoaderBenchmark.Run(ds, batchSize: 16, model: "cifar-resnet20", steps: 2, CPU);
        Assert.Equal(4, r.LoaderBatches);
        Assert.True(r.LoaderBatchesPerSecond > 0 && r.AugmentedBatchesPerSecond > 0);
        Assert.True(r.StepMilliseconds > 0);
        Assert.Equal(r.LoaderBatchesPerSecond * r.StepMilliseconds / 1000, r.Ratio, 6);
    }
}
