using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Method;

// Bit-exact comparisons need the global torch RNG to themselves: no test may draw from it concurrently.
[Collection("torch-rng")]
public class LayerwiseImitationTests
{
    const int Features = 20,
        Classes = 5;

    [Fact]
    public void Layer_map_is_identity_for_equal_depths_and_rounds_for_different_ones()
    {
        Assert.Equal([0, 1, 2, 3], LayerMap.Build(4, 4));
        // 12-layer thin imitating a 24-layer wide transformer (plus embeddings as point 0).
        var m = LayerMap.Build(13, 25);
        Assert.Equal(0, m[0]);
        Assert.Equal(2, m[1]);
        Assert.Equal(24, m[12]);
        Assert.Equal([0, 2, 3, 5], LayerMap.Build(4, 6)); // round(1.67)=2, round(3.33)=3
    }

    [Fact]
    public void Frozen_blocks_stay_bit_identical_in_student_mode()
    {
        var thin = new TinyStagedMlp(Features, 16, 4, Classes, seed: 1);
        var wide = new TinyStagedMlp(Features, 16, 4, Classes, seed: 2, inner: 4);
        var data = TestSteps.RandomBatches(3, 32, Features, Classes, seed: 3);
        var before = TestSteps.Snapshot(thin);
        var li = new LayerwiseImitation(thin, wide, new ImitationOptions { Input = ImitationInput.Student });
        var b2 = li.Unit(2);
        TestSteps.Run(b2.Objective, b2.Groups.SelectMany(g => g.Parameters), data, 0.05, 5);
        var after = thin.state_dict();
        foreach (var (name, t) in before)
        {
            bool inBlock2 = name.StartsWith("blocks.2.", StringComparison.Ordinal);
            Assert.True(
                inBlock2 != TestSteps.BitIdentical(t, after[name]),
                $"{name}: changed={!TestSteps.BitIdentical(t, after[name])}"
            );
        }
        // The stem's batch-norm statistics are buffers: they must not move either (eval mode while frozen).
        Assert.Contains("blocks.0.1.running_mean", before.Keys);
    }

    [Fact]
    public void Teacher_mode_result_does_not_depend_on_block_order()
    {
        var data = TestSteps.RandomBatches(3, 32, Features, Classes, seed: 4);
        var wide = new TinyStagedMlp(Features, 16, 4, Classes, seed: 5, inner: 4);
        Dictionary<string, Tensor> Train(IEnumerable<int> order)
        {
            var thin = new TinyStagedMlp(Features, 16, 4, Classes, seed: 6);
            var li = new LayerwiseImitation(thin, wide, new ImitationOptions());
            foreach (var k in order)
            {
                var b = li.Unit(k);
                TestSteps.Run(b.Objective, b.Groups.SelectMany(g => g.Parameters), data, 0.05, 4);
            }
            return TestSteps.Snapshot(thin);
        }
        var up = Train([0, 1, 2, 3]);
        var down = Train([3, 2, 1, 0]);
        var initial = TestSteps.Snapshot(new TinyStagedMlp(Features, 16, 4, Classes, seed: 6));
        foreach (var (name, t) in up)
        {
            Assert.True(TestSteps.BitIdentical(t, down[name]), name);
            if (
                name.StartsWith("blocks.", StringComparison.Ordinal)
                && name.EndsWith("weight", StringComparison.Ordinal)
            )
                Assert.False(TestSteps.BitIdentical(t, initial[name]), $"{name} did not train");
        }
    }

    [Fact]
    public void Student_mode_result_depends_on_block_order()
    {
        // The counterpart of the teacher-mode test: it shows that test can fail.
        var data = TestSteps.RandomBatches(3, 32, Features, Classes, seed: 4);
        var wide = new TinyStagedMlp(Features, 16, 3, Classes, seed: 5, inner: 4);
        Dictionary<string, Tensor> Train(IEnumerable<int> order)
        {
            var thin = new TinyStagedMlp(Features, 16, 3, Classes, seed: 6);
            var li = new LayerwiseImitation(thin, wide, new ImitationOptions { Input = ImitationInput.Student });
            foreach (var k in order)
            {
                var b = li.Unit(k);
                TestSteps.Run(b.Objective, b.Groups.SelectMany(g => g.Parameters), data, 0.05, 4);
            }
            return TestSteps.Snapshot(thin);
        }
        var up = Train([0, 1, 2]);
        var down = Train([2, 1, 0]);
        Assert.False(TestSteps.BitIdentical(up["blocks.2.0.weight"], down["blocks.2.0.weight"]));
    }

    [Fact]
    public void Stage_units_group_a_resnets_blocks_and_lower_the_stage_end_mse_on_fashion_mnist()
    {
        StagedModel Resnet(string widen, long seed)
        {
            manual_seed(seed);
            return ModelFactory.Create(
                new ModelConfig
                {
                    Name = "cifar-resnet20",
                    InputChannels = 1,
                    Widen = Widening.Parse(widen),
                }
            );
        }
        var data = FashionBatches(6, 30);
        var wide = Resnet("inner=4", 31);
        var thin = Resnet("none", 32);
        var before = TestSteps.Snapshot(thin);
        var li = new LayerwiseImitation(
            thin,
            wide,
            new ImitationOptions { Unit = ImitationUnit.Stage, Input = ImitationInput.Student }
        );
        // The stem, then layer1.0-2, layer2.0-2, layer3.0-2.
        Assert.Equal(
            [new BlockRange(0, 0), new BlockRange(1, 3), new BlockRange(4, 6), new BlockRange(7, 9)],
            li.Units
        );
        var u = li.Unit(1);
        Assert.Equal("layer1.2", u.PointName);
        double first = TestSteps.Loss(u.Objective, data);
        TestSteps.Run(u.Objective, u.Groups.SelectMany(g => g.Parameters), data, 0.02, 40);
        double last = TestSteps.Loss(u.Objective, data);
        Assert.True(last < 0.8 * first, $"layer1 unit: mse {first:F4} -> {last:F4}");
        // All three blocks of layer1 trained; nothing else moved (batch-norm statistics included).
        foreach (var (name, t) in before)
            Assert.True(
                name.StartsWith("layer1.", StringComparison.Ordinal)
                    != TestSteps.BitIdentical(t, thin.state_dict()[name]),
                name
            );

        var e = Assert.Throws<WtnException>(() =>
            new LayerwiseImitation(
                Resnet("none", 1),
                Resnet("full=2", 2),
                new ImitationOptions { Unit = ImitationUnit.Stage }
            )
        );
        Assert.Contains("imitation.unit", e.Message);
        var mlp = Assert.Throws<WtnException>(() =>
            new LayerwiseImitation(
                MlpOf(8, 3, "none", true, 1),
                MlpOf(8, 3, "inner=2", true, 2),
                new ImitationOptions { Unit = ImitationUnit.Stage }
            )
        );
        Assert.Contains("imitation.unit", mlp.Message);
    }

    [Fact]
    public void Batch_norm_recalibration_recomputes_the_statistics_and_nothing_else()
    {
        using var source = new ImageBatchSource(
            TestData.FashionMnist,
            TestData.FashionMnist.Train,
            new ImageLoaderOptions
            {
                BatchSize = 20,
                Seed = 1,
                PerClassLimit = 4,
            }
        );
        StagedModel Net()
        {
            manual_seed(41);
            return ModelFactory.Create(new ModelConfig { Name = "cifar-resnet20", InputChannels = 1 });
        }
        var clean = Net();
        var corrupt = Net();
        using (no_grad())
            foreach (var (name, t) in corrupt.state_dict())
                if (name.EndsWith("running_mean", StringComparison.Ordinal))
                    t.fill_(5);
        corrupt.eval();
        var weightsBefore = TestSteps.Snapshot(clean);
        Assert.Equal((19, 2), BatchNormRecalibration.Run(clean, source, CPU, batches: 2));
        Assert.Equal((19, 2), BatchNormRecalibration.Run(corrupt, source, CPU, batches: 2));
        // Whatever the statistics were, they are now those of the same 2 batches; weights did not move.
        foreach (var (name, t) in clean.state_dict())
        {
            bool stat =
                name.Contains("running_", StringComparison.Ordinal)
                || name.EndsWith("num_batches_tracked", StringComparison.Ordinal);
            Assert.True(TestSteps.BitIdentical(t, corrupt.state_dict()[name]), name);
            Assert.True(stat != TestSteps.BitIdentical(t, weightsBefore[name]), name);
        }
        Assert.False(corrupt.training);
        Assert.All(clean.modules().OfType<TorchSharp.Modules.BatchNorm2d>(), bn => Assert.Equal(0.1, bn.momentum));
        Assert.Equal((0, 0), BatchNormRecalibration.Run(MlpOf(8, 2, "none", false, 1), source, CPU, batches: 2));
    }

    /// <summary>A few stratified Fashion-MNIST batches (real data), flattened images and labels.</summary>
    static List<(Tensor X, Tensor Y)> FashionBatches(int perClass, int batchSize)
    {
        using var source = new ImageBatchSource(
            TestData.FashionMnist,
            TestData.FashionMnist.Train,
            new ImageLoaderOptions
            {
                BatchSize = batchSize,
                Seed = 1,
                PerClassLimit = perClass,
            }
        );
        return source
            .Epoch(0, CPU)
            .Select(b => (b.Input.Input.DetachFromDisposeScope(), b.Labels.DetachFromDisposeScope()))
            .ToList();
    }

    static Mlp MlpOf(int width, int depth, string widen, bool residual, long seed)
    {
        manual_seed(seed);
        return new Mlp(
            new ModelConfig
            {
                Name = "mlp",
                Width = width,
                Depth = depth,
                Residual = residual,
                Widen = Widening.Parse(widen),
            }
        );
    }

    [Fact]
    public void Full_mode_merge_keeps_outputs_where_claimed()
    {
        // Plain MLP, thin width 16, wide full=3 (48): every point gets U (16->48) and D (48->16). No skips, so each
        // pair before the last point folds into the next block's first Linear.
        var thin = MlpOf(16, 4, "none", false, 7);
        var wide = MlpOf(16, 4, "full=3", false, 8);
        var data = FashionBatches(10, 50);
        var li = new LayerwiseImitation(thin, wide, new ImitationOptions());
        for (int k = 0; k < li.UnitCount; k++)
        {
            var b = li.Unit(k);
            TestSteps.Run(b.Objective, b.Groups.SelectMany(g => g.Parameters), data, 0.05, 15);
        }
        li.Release();
        thin.eval();
        using var _ = no_grad();
        var input = new ModelInput(data[0].X);
        var withPairs = li.Adapters.ForwardWithPairs(thin, input);
        var plainBefore = thin.call(input);
        var fates = li.Adapters.MergeInto(thin);
        var merged = thin.call(input);

        Assert.Equal(3, fates.Count(f => f.Kind == AdapterFateKind.Merged));
        Assert.Single(fates, f => f.Kind == AdapterFateKind.Dropped && f.Point == 3);
        // The pairs moved away from identity while training, so merging matters ...
        Assert.True(
            (withPairs - plainBefore).abs().max().item<float>() > 1e-3,
            $"pairs changed outputs by only {(withPairs - plainBefore).abs().max().item<float>()}"
        );
        // ... and the merged network reproduces the network with its pairs.
        Assert.True(
            (merged - withPairs).abs().max().item<float>() < 1e-5,
            $"max diff {(merged - withPairs).abs().max().item<float>()}"
        );
    }

    [Fact]
    public void Residual_points_drop_their_pairs_and_say_why()
    {
        var thin = MlpOf(8, 3, "none", true, 1);
        var wide = MlpOf(8, 3, "full=2", true, 2);
        var li = new LayerwiseImitation(thin, wide, new ImitationOptions());
        var fates = li.Adapters.MergeInto(thin);
        Assert.Equal(3, fates.Count);
        Assert.All(fates, f => Assert.Equal(AdapterFateKind.Dropped, f.Kind));
        Assert.Contains("skip", fates[0].Reason);
    }

    [Fact]
    public void Imitation_steps_lower_each_blocks_mse_on_fashion_mnist()
    {
        var data = FashionBatches(20, 50);
        var wide = MlpOf(32, 4, "inner=4", true, 11);
        var thin = MlpOf(32, 4, "none", true, 12);
        var li = new LayerwiseImitation(thin, wide, new ImitationOptions());
        for (int k = 0; k < li.UnitCount; k++)
        {
            var b = li.Unit(k);
            double before = TestSteps.Loss(b.Objective, data);
            TestSteps.Run(b.Objective, b.Groups.SelectMany(g => g.Parameters), data, 0.05, 12);
            double after = TestSteps.Loss(b.Objective, data);
            Assert.True(after < 0.8 * before, $"block {k}: mse {before:F4} -> {after:F4}");
        }
        Assert.True(HeadTransfer.CopyIfShapesMatch(wide, thin));
        Assert.True(TestSteps.BitIdentical(thin.HeadParameters().First(), wide.HeadParameters().First()));
    }

    [Fact]
    public void Disk_cache_of_wide_activations_gives_the_same_result_and_hits_from_the_second_block()
    {
        var data = FashionBatches(10, 50);
        var wide = MlpOf(16, 3, "inner=2", true, 21);
        Dictionary<string, Tensor> Train(IWideActivationSource? source) =>
            ImitateEveryUnit(MlpOf(16, 3, "none", true, 22), wide, data, 4, source);
        var folder = TestData.NewTempFolder("cache");
        try
        {
            var cache = new DiskCachedWideActivations(wide, folder, 1L << 30);
            var cached = Train(cache);
            var direct = Train(null);
            foreach (var (name, t) in direct)
                Assert.True(TestSteps.BitIdentical(t, cached[name]), name);
            // 2 distinct batches: missed once each, then served from disk for every later step.
            Assert.Equal(2, cache.Misses);
            Assert.Equal(3 * 4 - 2, cache.Hits);
            Assert.False(cache.Full);
            var tiny = new DiskCachedWideActivations(wide, folder + "-tiny", 1);
            foreach (var (name, t) in Train(tiny))
                Assert.True(TestSteps.BitIdentical(t, direct[name]), name);
            Assert.Equal(0, tiny.BytesUsed); // over the bound: computed on the fly, nothing stored
            Assert.True(tiny.Full);
            Assert.Null(tiny.WriteFailed);
            Directory.Delete(folder + "-tiny", true);
            // A cache whose folder cannot be written (here a file stands where its folder should be, as a full disk
            // refuses the write): stage 2 goes on, on the fly, with the same result, and says why it stored nothing.
            var broken = folder + "-broken";
            var cacheFolder = Path.Combine(broken, "cache");
            Directory.CreateDirectory(cacheFolder);
            var unwritable = new DiskCachedWideActivations(wide, cacheFolder, 1L << 30);
            Directory.Delete(cacheFolder);
            File.WriteAllText(cacheFolder, "not a folder");
            foreach (var (name, t) in Train(unwritable))
                Assert.True(TestSteps.BitIdentical(t, direct[name]), name);
            Assert.True(unwritable.Full);
            Assert.Contains(cacheFolder, unwritable.WriteFailed);
            Assert.Equal(0, unwritable.Hits);
            Directory.Delete(broken, true);
        }
        finally
        {
            TestData.DeleteFolder(folder);
        }
    }

    [Fact]
    public void Disk_cache_keeps_channels_last_resnet_activations_intact()
    {
        // ResNet convolutions run channels-last for batches of 16 or more, so the wide activations are NHWC-strided;
        // the cache must hand back the same values in the same layout, or imitation diverges from the direct run.
        Assert.True(ChannelsLastConv.Enabled);
        var data = FashionBatches(5, 25);
        Assert.True(data[0].X.shape[0] >= ChannelsLastConv.MinBatch);
        manual_seed(31);
        var wide = ModelFactory.Create(
            new ModelConfig
            {
                Name = "cifar-resnet20",
                InputChannels = 1,
                Widen = Widening.Parse("inner=2"),
            }
        );
        Dictionary<string, Tensor> Train(IWideActivationSource? source)
        {
            manual_seed(32);
            return ImitateEveryUnit(
                ModelFactory.Create(new ModelConfig { Name = "cifar-resnet20", InputChannels = 1 }),
                wide,
                data,
                2,
                source
            );
        }
        var folder = TestData.NewTempFolder("cache-nhwc");
        try
        {
            var cache = new DiskCachedWideActivations(wide, folder, 1L << 30);
            var cached = Train(cache);
            var direct = Train(null);
            Assert.True(cache.Hits > 0);
            Assert.NotEmpty(Directory.GetFiles(folder, "*.nhwc.pt", SearchOption.AllDirectories));
            foreach (var (name, t) in direct)
                Assert.True(TestSteps.BitIdentical(t, cached[name]), name);
        }
        finally
        {
            TestData.DeleteFolder(folder);
        }
    }

    /// <summary>Every unit of stage 2 in order, <paramref name="steps"/> SGD steps each; the thin network's tensors after.</summary>
    static Dictionary<string, Tensor> ImitateEveryUnit(
        StagedModel thin,
        StagedModel wide,
        List<(Tensor X, Tensor Y)> data,
        int steps,
        IWideActivationSource? source
    )
    {
        var li = new LayerwiseImitation(thin, wide, new ImitationOptions(), source);
        for (int k = 0; k < li.UnitCount; k++)
        {
            var b = li.Unit(k);
            TestSteps.Run(b.Objective, b.Groups.SelectMany(g => g.Parameters), data, 0.05, steps);
        }
        return TestSteps.Snapshot(thin);
    }
}
