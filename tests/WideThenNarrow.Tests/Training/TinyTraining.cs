using TorchSharp;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Training;

/// <summary>Tests here share the process-wide torch generator, so they must not run beside other tests.</summary>
[CollectionDefinition("torch-rng", DisableParallelization = true)]
public sealed class TorchRngCollection;

/// <summary>In-memory examples; epoch k's order is a permutation seeded by (seed, k), as the IBatchSource contract asks.</summary>
public sealed class TensorBatchSource : IBatchSource
{
    readonly Tensor _x,
        _y;
    readonly bool _shuffle;
    readonly long _seed;

    public TensorBatchSource(Tensor x, Tensor y, int batchSize, bool shuffle, long seed)
    {
        (_x, _y, BatchSize, _shuffle, _seed) = (x, y, batchSize, shuffle, seed);
    }

    public int Count => (int)_x.shape[0];
    public int BatchSize { get; }
    public int BatchesPerEpoch => (Count + BatchSize - 1) / BatchSize;

    public IEnumerable<Batch> Epoch(int epoch, Device device, int skipBatches = 0)
    {
        // The trainer pulls batches inside its per-step dispose scope: what lives across batches must leave it.
        using var order = (
            _shuffle ? randperm(Count, generator: new Generator((ulong)(_seed * 1000003 + epoch))) : arange(Count)
        ).DetachFromDisposeScope();
        for (int b = skipBatches; b < BatchesPerEpoch; b++)
        {
            using var idx = order.narrow(0, b * BatchSize, Math.Min(BatchSize, Count - b * BatchSize));
            yield return new Batch(
                new ModelInput(_x.index_select(0, idx).to(device)),
                _y.index_select(0, idx).to(device)
            );
        }
    }

    /// <summary>Two Gaussian-ish classes per quadrant of a 1x6x6 image: learnable, small, deterministic.</summary>
    public static (Tensor X, Tensor Y) Synthetic(int n, long seed, int classes = 3)
    {
        var g = new Generator((ulong)seed);
        var y = randint(0, classes, [n], generator: g);
        var x = randn([n, 1, 6, 6], generator: g) * 0.5f;
        var centers = randn([classes, 1, 6, 6], generator: new Generator(12345));
        return (x + centers.index_select(0, y), y);
    }
}

/// <summary>conv-BN-ReLU-dropout-linear: has buffers (BN running stats) and uses the torch RNG (dropout).</summary>
public sealed class TinyNet : nn.Module<ModelInput, Tensor>
{
    readonly nn.Module<Tensor, Tensor> conv,
        bn,
        drop,
        fc;

    public TinyNet(int classes = 3)
        : base("tiny")
    {
        conv = nn.Conv2d(1, 4, 3, padding: 1);
        bn = nn.BatchNorm2d(4);
        drop = nn.Dropout(0.2);
        fc = nn.Linear(4 * 6 * 6, classes);
        RegisterComponents();
    }

    public IEnumerable<TorchSharp.Modules.Parameter> BodyParameters() => conv.parameters().Concat(bn.parameters());

    public IEnumerable<TorchSharp.Modules.Parameter> HeadParameters() => fc.parameters();

    public override Tensor forward(ModelInput input)
    {
        using var scope = NewDisposeScope();
        var h = drop.call(nn.functional.relu(bn.call(conv.call(input.Input))));
        return fc.call(h.flatten(1)).MoveToOuterDisposeScope();
    }
}

public static class StateDicts
{
    public static bool BitEqual(Tensor a, Tensor b) =>
        a.dtype == b.dtype
        && a.shape.SequenceEqual(b.shape)
        && a.contiguous().bytes.SequenceEqual(b.contiguous().bytes);

    /// <summary>Names of entries whose tensors differ in any bit (all equal = empty).</summary>
    public static List<string> Differences(nn.Module a, nn.Module b)
    {
        var sa = a.state_dict();
        var sb = b.state_dict();
        Assert.Equal(sa.Keys.OrderBy(k => k), sb.Keys.OrderBy(k => k));
        return sa.Keys.Where(k => !BitEqual(sa[k], sb[k])).ToList();
    }
}
