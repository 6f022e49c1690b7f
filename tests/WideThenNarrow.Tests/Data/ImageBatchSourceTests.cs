using WideThenNarrow.Data;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Data;

public class ImageBatchSourceTests
{
    /// <summary>n gray size x size images; image i has pixels (5i + position) mod 256 and label <paramref name="label"/>(i).</summary>
    static ImageDataset Synthetic(int n, int size, int classes, Func<int, int> label)
    {
        var pixels = new byte[n * size * size];
        for (int i = 0; i < n; i++)
        for (int p = 0; p < size * size; p++)
            pixels[i * size * size + p] = (byte)((5 * i + p) % 256);
        using var scope = NewDisposeScope();
        var x = tensor(pixels, [n, 1, size, size], ScalarType.Byte).DetachFromDisposeScope();
        var y = tensor(Enumerable.Range(0, n).Select(i => (long)label(i)).ToArray(), [n], ScalarType.Int64)
            .DetachFromDisposeScope();
        var y2 = y.clone().DetachFromDisposeScope();
        return new ImageDataset(
            "synthetic",
            new ImageSplit(x, y),
            new ImageSplit(x.clone().DetachFromDisposeScope(), y2),
            [.. Enumerable.Range(0, classes).Select(c => $"c{c}")]
        );
    }

    /// <summary>Labels of every batch of one epoch (for the identity dataset, the example ids in served order).</summary>
    static List<long[]> Ids(ImageBatchSource source, int epoch, int skip = 0)
    {
        var result = new List<long[]>();
        foreach (var b in source.Epoch(epoch, CPU, skip))
            using (b)
                result.Add(b.Labels.data<long>().ToArray());
        return result;
    }

    static List<float[]> Pixels(ImageBatchSource source, int epoch, int skip = 0)
    {
        var result = new List<float[]>();
        foreach (var b in source.Epoch(epoch, CPU, skip))
            using (b)
                result.Add(b.Input.Input.data<float>().ToArray());
        return result;
    }

    [Fact]
    public void Every_example_is_served_once_per_epoch_and_the_last_batch_is_partial()
    {
        using var ds = Synthetic(50, 4, 50, i => i);
        using var source = new ImageBatchSource(ds, ds.Train, new ImageLoaderOptions { BatchSize = 16, Seed = 3 });
        Assert.Equal(4, source.BatchesPerEpoch);
        var ids = Ids(source, 0);
        Assert.Equal(new[] { 16, 16, 16, 2 }, ids.Select(b => b.Length));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), ids.SelectMany(b => b).Order());
    }

    [Fact]
    public void Drop_last_drops_the_partial_batch()
    {
        using var ds = Synthetic(50, 4, 50, i => i);
        using var source = new ImageBatchSource(
            ds,
            ds.Train,
            new ImageLoaderOptions { BatchSize = 16, DropLast = true }
        );
        Assert.Equal(3, source.BatchesPerEpoch);
        Assert.All(Ids(source, 0), b => Assert.Equal(16, b.Length));
    }

    [Fact]
    public void Seeded_shuffle_repeats_across_runs_and_differs_between_epochs_and_seeds()
    {
        using var ds = Synthetic(50, 4, 50, i => i);
        var options = new ImageLoaderOptions
        {
            BatchSize = 16,
            Seed = 7,
            CropPadding = 1,
            HorizontalFlip = true,
        };
        using var a = new ImageBatchSource(ds, ds.Train, options);
        using var b = new ImageBatchSource(ds, ds.Train, options);
        using var other = new ImageBatchSource(ds, ds.Train, options with { Seed = 8 });
        var a0 = Ids(a, 0).SelectMany(x => x).ToArray();
        Assert.Equal(a0, Ids(b, 0).SelectMany(x => x));
        Assert.Equal(Pixels(a, 1).SelectMany(x => x), Pixels(b, 1).SelectMany(x => x));
        Assert.NotEqual(a0, Ids(a, 1).SelectMany(x => x));
        Assert.NotEqual(a0, Ids(other, 0).SelectMany(x => x));
        Assert.NotEqual(Enumerable.Range(0, 50).Select(i => (long)i), a0);
    }

    [Fact]
    public void Skip_batches_gives_exactly_the_tail_of_the_epoch()
    {
        using var ds = Synthetic(50, 4, 50, i => i);
        using var source = new ImageBatchSource(
            ds,
            ds.Train,
            new ImageLoaderOptions
            {
                BatchSize = 16,
                Seed = 11,
                CropPadding = 2,
                HorizontalFlip = true,
            }
        );
        var full = Pixels(source, 3);
        var tail = Pixels(source, 3, skip: 2);
        Assert.Equal(2, tail.Count);
        Assert.Equal(full[2], tail[0]);
        Assert.Equal(full[3], tail[1]);
        Assert.Equal(Ids(source, 3).Skip(2), Ids(source, 3, skip: 2));
        Assert.Empty(Ids(source, 3, skip: 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => source.Epoch(0, CPU, 5));
    }

    [Fact]
    public void Without_shuffle_the_order_is_file_order_and_pixels_are_normalised_with_train_statistics()
    {
        using var ds = Synthetic(10, 3, 10, i => i);
        using var source = new ImageBatchSource(ds, ds.Test, ImageLoaderOptions.Evaluation(4));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), Ids(source, 5).SelectMany(x => x));
        using var batch = source.Epoch(0, CPU).First();
        Assert.Equal(ScalarType.Float32, batch.Input.Input.dtype);
        Assert.Equal(new long[] { 4, 1, 3, 3 }, batch.Input.Input.shape);
        Assert.Equal(ScalarType.Int64, batch.Labels.dtype);
        // Pixel p of image i is 5i + p; normalised: ((5i + p) / 255 - mean) / std.
        var x = batch.Input.Input.data<float>().ToArray();
        for (int i = 0; i < 4; i++)
        for (int p = 0; p < 9; p++)
            Assert.Equal(((5 * i + p) / 255f - ds.Mean[0]) / ds.Std[0], x[i * 9 + p], 4);
    }

    [Fact]
    public void Per_class_limit_keeps_the_first_examples_of_each_class()
    {
        using var ds = Synthetic(40, 2, 4, i => i % 4);
        using var source = new ImageBatchSource(
            ds,
            ds.Train,
            new ImageLoaderOptions
            {
                BatchSize = 5,
                PerClassLimit = 3,
                Shuffle = false,
            }
        );
        Assert.Equal(12, source.Count);
        var labels = Ids(source, 0).SelectMany(x => x).ToArray();
        Assert.All(Enumerable.Range(0, 4), c => Assert.Equal(3, labels.Count(l => l == c)));
        // The first three of class c are examples c, c+4, c+8: images 0..11 in file order.
        using var batch = source.Epoch(0, CPU).First();
        var first = batch.Input.Input.data<float>().ToArray();
        Assert.Equal(((5 * 4 + 0) / 255f - ds.Mean[0]) / ds.Std[0], first[4 * 4], 4);
    }

    [Fact]
    public void Flip_returns_each_image_or_its_mirror_and_both_occur()
    {
        using var ds = Synthetic(64, 4, 64, i => i);
        using var plain = new ImageBatchSource(ds, ds.Train, new ImageLoaderOptions { BatchSize = 64, Seed = 1 });
        using var flipped = new ImageBatchSource(
            ds,
            ds.Train,
            new ImageLoaderOptions
            {
                BatchSize = 64,
                Seed = 1,
                HorizontalFlip = true,
            }
        );
        using var a = plain.Epoch(0, CPU).Single();
        using var b = flipped.Epoch(0, CPU).Single();
        Assert.True(a.Labels.eq(b.Labels).all().item<bool>());
        var same = a.Input.Input.eq(b.Input.Input).flatten(1).all(1);
        var mirrored = a.Input.Input.flip(3).eq(b.Input.Input).flatten(1).all(1);
        Assert.True(same.logical_or(mirrored).all().item<bool>());
        long flips = mirrored.sum().item<long>();
        Assert.InRange(flips, 16, 48);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Padded_crop_returns_a_window_of_the_zero_padded_image(bool flip)
    {
        const int pad = 2,
            size = 4;
        using var ds = Synthetic(32, size, 32, i => i);
        using var source = new ImageBatchSource(
            ds,
            ds.Train,
            new ImageLoaderOptions
            {
                BatchSize = 32,
                Seed = 5,
                CropPadding = pad,
                HorizontalFlip = flip,
            }
        );
        using var batch = source.Epoch(0, CPU).Single();
        using var scope = NewDisposeScope();
        // Back to byte values; the zero padding becomes exactly 0.
        var x = batch.Input.Input.mul(ds.Std[0]).add(ds.Mean[0]).mul(255).round();
        var ids = batch.Labels.data<long>().ToArray();
        var offsets = new HashSet<(int, int)>();
        int mirrored = 0;
        for (int r = 0; r < ids.Length; r++)
        {
            var padded = nn.functional.pad(ds.Train.Images[ids[r]].to(ScalarType.Float32), [pad, pad, pad, pad]);
            bool found = false;
            for (int dy = 0; dy <= 2 * pad && !found; dy++)
            for (int dx = 0; dx <= 2 * pad && !found; dx++)
            {
                var window = padded.narrow(1, dy, size).narrow(2, dx, size);
                if (window.eq(x[r]).all().item<bool>())
                    found = true;
                else if (flip && window.flip(2).eq(x[r]).all().item<bool>())
                {
                    found = true;
                    mirrored++;
                }
                if (found)
                    offsets.Add((dy, dx));
            }
            Assert.True(found, $"row {r} is not a window of image {ids[r]}{(flip ? " or its mirror" : "")}");
        }
        Assert.True(offsets.Count > 5, $"only {offsets.Count} distinct crop offsets in 32 images");
        if (flip)
            Assert.InRange(mirrored, 4, 28);
    }

    [Fact]
    public void Fashion_mnist_batches_are_normalised_to_zero_mean_unit_std()
    {
        var ds = TestData.FashionMnist;
        using var source = new ImageBatchSource(ds, ds.Train, new ImageLoaderOptions { BatchSize = 4096, Seed = 0 });
        double sum = 0,
            sumSq = 0,
            count = 0;
        foreach (var b in source.Epoch(0, CPU))
        {
            using (b)
            using (var scope = NewDisposeScope())
            {
                var x = b.Input.Input.to(ScalarType.Float64);
                sum += x.sum().item<double>();
                sumSq += x.square().sum().item<double>();
                count += x.numel();
                Assert.True(b.Labels.ge(0).logical_and(b.Labels.lt(10)).all().item<bool>());
            }
        }
        double mean = sum / count;
        Assert.Equal(60000 * 784, count);
        Assert.InRange(mean, -1e-3, 1e-3);
        Assert.InRange(Math.Sqrt(sumSq / count - mean * mean), 0.999, 1.001);
    }

    [Fact]
    public void Batches_belong_to_the_callers_dispose_scope()
    {
        using var ds = Synthetic(20, 2, 20, i => i);
        using var source = new ImageBatchSource(ds, ds.Train, new ImageLoaderOptions { BatchSize = 8 });
        Tensor input;
        using (var scope = NewDisposeScope())
        {
            var batch = source.Epoch(0, CPU).First();
            input = batch.Input.Input;
            Assert.False(input.IsInvalid);
        }
        Assert.True(input.IsInvalid);
    }
}
