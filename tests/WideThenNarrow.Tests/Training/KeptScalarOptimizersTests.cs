using TorchSharp;
using TorchSharp.Modules;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Training;

/// <summary>
/// The optimizers that keep their Scalars alive make TorchSharp's updates exactly: the same weights and state, bit for
/// bit, after many steps, for each option the experiments use.
/// </summary>
[Collection("torch-rng")]
public class KeptScalarOptimizersTests
{
    static (nn.Module<Tensor, Tensor> A, nn.Module<Tensor, Tensor> B) Twins()
    {
        manual_seed(7);
        var a = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3));
        var b = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3));
        using (no_grad())
            foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
                pb.copy_(pa);
        return (a, b);
    }

    // Two groups as ParameterGroup builds them: weights with decay, biases without, at a rate that changes every step.
    static void Train(nn.Module<Tensor, Tensor> model, optim.Optimizer opt)
    {
        var g = new Generator(11);
        for (int step = 0; step < 40; step++)
        {
            using var scope = NewDisposeScope();
            foreach (var group in opt.ParamGroups)
                group.LearningRate = 0.05 * (1 + Math.Cos(step / 40.0 * Math.PI)) / 2;
            opt.zero_grad();
            var x = randn([32, 6], generator: g);
            var y = randint(0, 3, [32], generator: g);
            nn.functional.cross_entropy(model.call(x), y).backward();
            opt.step();
        }
    }

    static void AssertSame(nn.Module<Tensor, Tensor> a, nn.Module<Tensor, Tensor> b)
    {
        foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
            Assert.True(pa.eq(pb).all().item<bool>(), "a weight differs from TorchSharp's update");
    }

    [Theory]
    [InlineData(0.9, true, 5e-4)]
    [InlineData(0.9, false, 5e-4)]
    [InlineData(0.0, false, 0.0)]
    public void Sgd_updates_exactly_as_TorchSharp(double momentum, bool nesterov, double decay)
    {
        var (a, b) = Twins();
        SGD.ParamGroup[] Groups(nn.Module m) =>
            [
                new(m.parameters().Where(p => p.dim() > 1).ToList(), 0.05, momentum, 0, decay, nesterov),
                new(m.parameters().Where(p => p.dim() == 1).ToList(), 0.05, momentum, 0, 0, nesterov),
            ];
        using var stock = new SGD(Groups(a), 0.05, momentum, 0, 0, nesterov);
        using var kept = new KeptScalar.SGD(Groups(b), 0.05, momentum, 0, 0, nesterov);
        Train(a, stock);
        Train(b, kept);
        AssertSame(a, b);
    }

    [Theory]
    [InlineData(0.01)]
    [InlineData(0.0)]
    public void AdamW_updates_exactly_as_TorchSharp(double decay)
    {
        var (a, b) = Twins();
        AdamW.ParamGroup[] Groups(nn.Module m) =>
            [
                new(m.parameters().Where(p => p.dim() > 1).ToList(), 0.01, 0.9, 0.999, 1e-8, decay),
                new(m.parameters().Where(p => p.dim() == 1).ToList(), 0.01, 0.9, 0.999, 1e-8, 0),
            ];
        using var stock = new AdamW(Groups(a), 0.01, 0.9, 0.999, 1e-8, 0);
        using var kept = new KeptScalar.AdamW(Groups(b), 0.01, 0.9, 0.999, 1e-8, 0);
        Train(a, stock);
        Train(b, kept);
        AssertSame(a, b);
    }

    static byte[] Saved(optim.Optimizer opt)
    {
        var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true))
            ((OptimizerHelper)opt).save_state_dict(w);
        return ms.ToArray();
    }

    // TorchSharp writes GetType().Name into the state and refuses another name on load: state saved by its own AdamW
    // must resume under ours and the other way round, and state from the builds that wrote "KeptScalarAdamW" too.
    [Theory]
    [InlineData("stock")]
    [InlineData("kept")]
    [InlineData("old-name")]
    public void AdamW_state_resumes_across_TorchSharps_class_and_ours(string writer)
    {
        var (a, b) = Twins();
        AdamW.ParamGroup[] Groups(nn.Module m) => [new(m.parameters().ToList(), 0.01, 0.9, 0.999, 1e-8, 0.01)];
        using optim.Optimizer first =
            writer == "stock"
                ? new AdamW(Groups(a), 0.01, 0.9, 0.999, 1e-8, 0)
                : new KeptScalar.AdamW(Groups(a), 0.01, 0.9, 0.999, 1e-8, 0);
        Train(a, first);
        var state = Saved(first);
        if (writer == "old-name")
        {
            var r = new BinaryReader(new MemoryStream(state));
            Assert.Equal("AdamW", r.ReadString());
            var ms = new MemoryStream();
            using (var w = new BinaryWriter(ms))
            {
                w.Write("KeptScalarAdamW");
                w.Write(state, (int)r.BaseStream.Position, state.Length - (int)r.BaseStream.Position);
            }
            state = ms.ToArray();
        }
        using (no_grad())
            foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
                pb.copy_(pa);
        using var resumed = new KeptScalar.AdamW(Groups(b), 0.01, 0.9, 0.999, 1e-8, 0);
        KeptScalar.LoadState(resumed, state);
        Train(a, first);
        Train(b, resumed);
        AssertSame(a, b);
    }

    [Fact]
    public void Sgd_state_from_TorchSharps_class_resumes_under_ours_and_AdamW_state_is_refused()
    {
        var (a, b) = Twins();
        using var stock = new SGD(
            [new SGD.ParamGroup(a.parameters().ToList(), 0.05, 0.9, 0, 5e-4, true)],
            0.05,
            0.9,
            0,
            0,
            true
        );
        Train(a, stock);
        using (no_grad())
            foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
                pb.copy_(pa);
        using var kept = new KeptScalar.SGD(
            [new SGD.ParamGroup(b.parameters().ToList(), 0.05, 0.9, 0, 5e-4, true)],
            0.05,
            0.9,
            0,
            0,
            true
        );
        KeptScalar.LoadState(kept, Saved(stock));
        Train(a, stock);
        Train(b, kept);
        AssertSame(a, b);
        using var adam = new KeptScalar.AdamW(
            [new AdamW.ParamGroup(b.parameters().ToList(), 0.01, 0.9, 0.999, 1e-8, 0)],
            0.01,
            0.9,
            0.999,
            1e-8,
            0
        );
        Assert.Throws<InvalidDataException>(() => KeptScalar.LoadState(kept, Saved(adam)));
    }
}
