using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Data;

/// <summary>How an <see cref="ImageBatchSource"/> cuts, orders, augments and normalises a split.</summary>
public sealed record ImageLoaderOptions
{
    public int BatchSize { get; init; } = 128;

    /// <summary>Reshuffle every epoch (train); off keeps file order (evaluation).</summary>
    public bool Shuffle { get; init; } = true;
    public long Seed { get; init; }

    /// <summary>Drop the last partial batch.</summary>
    public bool DropLast { get; init; }

    /// <summary>Random crop of the original size after zero-padding this many pixels on each side; 0 = off.</summary>
    public int CropPadding { get; init; }

    /// <summary>Flip each image left-right with probability 1/2.</summary>
    public bool HorizontalFlip { get; init; }

    /// <summary>Keep only the first N examples of each class, in file order (a stratified subset for tests and demos).</summary>
    public int? PerClassLimit { get; init; }

    /// <summary>The split's examples this source draws from, in order (null = all); <see cref="PerClassLimit"/> applies to them.</summary>
    public long[]? Examples { get; init; }

    /// <summary>
    /// Per-channel mean and standard deviation (pixels in [0,1]) to normalise with, in place of the dataset's train
    /// statistics: those a network was trained with, when it is evaluated on other data (<c>wtn eval</c>).
    /// </summary>
    public float[]? Mean { get; init; }
    public float[]? Std { get; init; }

    /// <summary>The usual CIFAR training augmentation: 4-pixel padded random crop and horizontal flip.</summary>
    public static ImageLoaderOptions CifarTrain(int batchSize, long seed) =>
        new()
        {
            BatchSize = batchSize,
            Seed = seed,
            CropPadding = 4,
            HorizontalFlip = true,
        };

    /// <summary>In order, every example, no augmentation.</summary>
    public static ImageLoaderOptions Evaluation(int batchSize) => new() { BatchSize = batchSize, Shuffle = false };
}

/// <summary>
/// Batches of one image split: float32 images (N,C,H,W) normalised with the dataset's train mean/std, and int64
/// labels (N). Each batch is one index_select on the uint8 images, augmentation on the batch tensor, one float
/// conversion and one fused multiply-add. Epoch k's order and augmentation depend only on the seed, k and the
/// batch index, so a resumed run (skipBatches) sees exactly the batches the interrupted run would have.
/// </summary>
public sealed class ImageBatchSource : IBatchSource, IDisposable
{
    readonly ImageSplit _split;
    readonly ImageLoaderOptions _options;
    readonly Tensor _indices; // int64: the examples of the split this source serves (all, or a per-class subset)
    readonly Tensor _scale; // (1,C,1,1): 1 / (255 std)
    readonly Tensor _shift; // (1,C,1,1): -mean / std
    readonly Dictionary<string, (Tensor Scale, Tensor Shift)> _onDevice = [];

    public ImageBatchSource(ImageDataset dataset, ImageSplit split, ImageLoaderOptions options)
    {
        if (options.BatchSize <= 0)
            throw new WtnException($"batch size must be positive, got {options.BatchSize}");
        if (options.CropPadding < 0)
            throw new WtnException($"crop padding must be 0 or positive, got {options.CropPadding}");
        if (options.PerClassLimit is <= 0)
            throw new WtnException($"per-class limit must be positive, got {options.PerClassLimit}");
        _split = split;
        _options = options;
        _indices = Subset(split, dataset.NumClasses, options.PerClassLimit, options.Examples);
        Count = (int)_indices.shape[0];
        if (Count == 0)
            throw new WtnException($"{dataset.Name}: the split holds no examples");
        int c = split.Channels;
        var mean = options.Mean ?? dataset.Mean;
        var stds = options.Std ?? dataset.Std;
        if (mean.Length != c || stds.Length != c)
            throw new WtnException(
                $"{dataset.Name}: images have {c} channel(s) but the normalisation gives {mean.Length} mean(s) and {stds.Length} std(s)"
            );
        var scale = new float[c];
        var shift = new float[c];
        for (int i = 0; i < c; i++)
        {
            float std = UsedStd(stds[i]);
            scale[i] = 1f / (255f * std);
            shift[i] = -mean[i] / std;
        }
        _scale = tensor(scale).reshape(1, c, 1, 1).DetachFromDisposeScope();
        _shift = tensor(shift).reshape(1, c, 1, 1).DetachFromDisposeScope();
    }

    /// <summary>The standard deviation a channel is divided by: at least 1e-3 (a constant channel would divide by zero).</summary>
    public static float UsedStd(float std) => Math.Max(std, 1e-3f);

    public int Count { get; }
    public int BatchSize => _options.BatchSize;
    public int BatchesPerEpoch => _options.DropLast ? Count / BatchSize : (Count + BatchSize - 1) / BatchSize;
    public ImageLoaderOptions Options => _options;

    public IEnumerable<Batch> Epoch(int epoch, Device device, int skipBatches = 0)
    {
        if (skipBatches < 0 || skipBatches > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(
                nameof(skipBatches),
                $"must be in [0, {BatchesPerEpoch}], got {skipBatches}"
            );
        return EpochBatches(epoch, device, skipBatches);
    }

    IEnumerable<Batch> EpochBatches(int epoch, Device device, int skipBatches)
    {
        // Built without a dispose scope held across yields: a scope open while the caller runs would capture its tensors.
        var order = EpochOrder(epoch);
        try
        {
            for (int b = skipBatches; b < BatchesPerEpoch; b++)
                yield return MakeBatch(order, epoch, b, device);
        }
        finally
        {
            order.Dispose();
        }
    }

    /// <summary>The example ids of epoch <paramref name="epoch"/> in the order they are served.</summary>
    public Tensor EpochOrder(int epoch)
    {
        using var scope = NewDisposeScope();
        if (!_options.Shuffle)
            return _indices.clone().DetachFromDisposeScope();
        using var g = new Generator(Mix(_options.Seed, epoch, -1));
        var perm = randperm(Count, generator: g);
        return _indices.index_select(0, perm).DetachFromDisposeScope();
    }

    Batch MakeBatch(Tensor order, int epoch, int b, Device device)
    {
        using var scope = NewDisposeScope();
        long start = (long)b * BatchSize;
        long n = Math.Min(BatchSize, Count - start);
        var idx = order.narrow(0, start, n);
        var x = _split.Images.index_select(0, idx);
        var y = _split.Labels.index_select(0, idx);
        if (_options.CropPadding > 0 || _options.HorizontalFlip)
        {
            using var g = new Generator(Mix(_options.Seed, epoch, b));
            x = Augment(x, g);
        }
        var (scale, shift) = Normalisation(device);
        var input = addcmul(shift, x.to(device).to(ScalarType.Float32), scale, 1);
        return new Batch(new ModelInput(input.MoveToOuterDisposeScope()), y.to(device).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Padded random crop and horizontal flip of the whole uint8 batch as one gather: output pixel (i, j) of
    /// image k is padded pixel (dy_k + i, dx_k + j'), with j' = w-1-j when image k is flipped. No per-pixel loops.
    /// </summary>
    Tensor Augment(Tensor x, Generator g)
    {
        long n = x.shape[0],
            c = x.shape[1],
            h = x.shape[2],
            w = x.shape[3];
        int p = _options.CropPadding;
        var rows = arange(h).view(1, h, 1);
        var cols = arange(w).view(1, 1, w);
        if (_options.HorizontalFlip)
            cols = where(rand([n, 1, 1], generator: g).lt(0.5), cols.neg().add(w - 1), cols);
        if (p > 0)
        {
            x = nn.functional.pad(x, [p, p, p, p]);
            rows = rows + randint(0, 2 * p + 1, [n, 1, 1], generator: g);
            cols = cols + randint(0, 2 * p + 1, [n, 1, 1], generator: g);
        }
        var source = rows.mul(w + 2 * p) + cols;
        return x.flatten(2).gather(2, source.expand(n, h, w).reshape(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w);
    }

    (Tensor Scale, Tensor Shift) Normalisation(Device device)
    {
        if (device.type == TorchSharp.DeviceType.CPU)
            return (_scale, _shift);
        var key = device.ToString();
        if (!_onDevice.TryGetValue(key, out var pair))
            _onDevice[key] = pair = (
                _scale.to(device).DetachFromDisposeScope(),
                _shift.to(device).DetachFromDisposeScope()
            );
        return pair;
    }

    static Tensor Subset(ImageSplit split, int classes, int? perClass, long[]? examples)
    {
        using var scope = NewDisposeScope();
        if (perClass is not { } limit)
            return (
                examples is null ? arange(split.Count, ScalarType.Int64) : tensor(examples, ScalarType.Int64)
            ).DetachFromDisposeScope();
        var labels = split.Labels.data<long>();
        var taken = new int[classes];
        var keep = new List<long>();
        foreach (long i in examples ?? Enumerable.Range(0, split.Count).Select(i => (long)i))
        {
            long label = labels[i];
            if (taken[label] < limit)
            {
                taken[label]++;
                keep.Add(i);
            }
        }
        return tensor(keep.ToArray(), ScalarType.Int64).DetachFromDisposeScope();
    }

    /// <summary>A generator seed from (seed, epoch, batch) by SplitMix64, so nearby seeds give unrelated streams.</summary>
    static ulong Mix(long seed, long epoch, long batch) => SplitMix(SplitMix((ulong)seed, (ulong)epoch), (ulong)batch);

    static ulong SplitMix(ulong z, ulong v)
    {
        z += 0x9E3779B97F4A7C15UL ^ v;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public void Dispose()
    {
        _indices.Dispose();
        _scale.Dispose();
        _shift.Dispose();
        foreach (var (s, t) in _onDevice.Values)
        {
            s.Dispose();
            t.Dispose();
        }
    }
}
