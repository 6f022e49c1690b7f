using TorchSharp;
using TorchSharp.Modules;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Method;

/// <summary>
/// A small staged MLP for the method's unit tests: block 0 = Linear, BatchNorm, ReLU (so frozen blocks have
/// buffers that must not move); blocks i &gt; 0 = Linear, ReLU; head = Linear. <paramref name="inner"/> &gt; 1 adds
/// a hidden layer of width inner*w inside every block i &gt; 0 (inner widening keeps point shapes).
/// </summary>
public sealed class TinyStagedMlp : StagedModel
{
    readonly ModuleList<nn.Module<Tensor, Tensor>> blocks = new();
    readonly Linear fc;
    readonly ImitationPoint[] points;

    public TinyStagedMlp(int inputs, int width, int depth, int classes, long seed, int inner = 1)
        : base("tiny")
    {
        torch.manual_seed(seed);
        blocks.Add(nn.Sequential(nn.Linear(inputs, width), nn.BatchNorm1d(width), nn.ReLU()));
        for (int i = 1; i < depth; i++)
            blocks.Add(
                inner == 1
                    ? nn.Sequential(nn.Linear(width, width), nn.ReLU())
                    : nn.Sequential(
                        nn.Linear(width, inner * width),
                        nn.ReLU(),
                        nn.Linear(inner * width, width),
                        nn.ReLU()
                    )
            );
        fc = nn.Linear(width, classes);
        points = Enumerable
            .Range(0, depth)
            .Select(i => new ImitationPoint(i, $"blocks.{i}", width, ActivationLayout.Features, false))
            .ToArray();
        RegisterComponents();
    }

    public override string Family => "mlp";
    public override IReadOnlyList<ImitationPoint> Points => points;

    public override IReadOnlyList<nn.Module> BlockModules(int i) => [blocks[i]];

    public override IReadOnlyList<nn.Module> HeadModules => [fc];

    public override Tensor ForwardBlock(int i, Tensor? x, ModelInput input) =>
        blocks[i].call(i == 0 ? input.Input.flatten(1) : x!);

    public override Tensor ForwardHead(Tensor h, ModelInput input) => fc.call(h);
}

/// <summary>Test-only plain SGD over an objective (the product trains through the engine's trainer).</summary>
public static class TestSteps
{
    public static void Run(
        ITrainingObjective objective,
        IEnumerable<TorchSharp.Modules.Parameter> parameters,
        IReadOnlyList<(Tensor X, Tensor Y)> batches,
        double lr,
        int steps
    )
    {
        using var opt = optim.SGD(parameters.ToList(), lr, momentum: 0.9);
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var (x, y) = batches[s % batches.Count];
            using var batch = new Batch(new ModelInput(x.clone()), y.clone());
            opt.zero_grad();
            objective.Compute(batch, training: true).Loss.backward();
            opt.step();
        }
    }

    public static double Loss(ITrainingObjective objective, IReadOnlyList<(Tensor X, Tensor Y)> batches)
    {
        double sum = 0;
        using var _ = no_grad();
        foreach (var (x, y) in batches)
        {
            using var scope = NewDisposeScope();
            using var batch = new Batch(new ModelInput(x.clone()), y.clone());
            sum += objective.Compute(batch, training: false).Loss.item<float>();
        }
        return sum / batches.Count;
    }

    public static List<(Tensor X, Tensor Y)> RandomBatches(int count, int size, int features, int classes, long seed)
    {
        var g = new Generator((ulong)seed);
        return Enumerable
            .Range(0, count)
            .Select(_ => (randn([size, features], generator: g), randint(0, classes, [size], generator: g)))
            .ToList();
    }

    public static Dictionary<string, Tensor> Snapshot(nn.Module m) =>
        m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

    public static bool BitIdentical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
