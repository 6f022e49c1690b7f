using TorchSharp.Modules;
using WideThenNarrow.Config;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>
/// Parameters trained together: their learning rate is the schedule's times <see cref="LrFactor"/>;
/// <see cref="WeightDecay"/> false exempts the whole group from decay. Parameters in no group are not updated.
/// </summary>
public sealed record ParameterGroup(
    string Name,
    IReadOnlyList<Parameter> Parameters,
    double LrFactor = 1.0,
    bool WeightDecay = true
)
{
    /// <summary>One group of all parameters of the given modules.</summary>
    public static ParameterGroup Of(string name, params nn.Module[] modules) =>
        new(name, modules.SelectMany(m => m.parameters()).ToList());
}

/// <summary>Builds TorchSharp optimisers with one param group per (group, decays?) pair and sets their rates.</summary>
public sealed class OptimizerSet : IDisposable
{
    readonly double[] _factors;

    OptimizerSet(optim.Optimizer optimizer, double[] factors)
    {
        Optimizer = optimizer;
        _factors = factors;
    }

    public optim.Optimizer Optimizer { get; }

    public static OptimizerSet Create(OptimizerConfig c, IReadOnlyList<ParameterGroup> groups)
    {
        if (c.Lr <= 0)
            throw new WtnException($"optimizer.lr must be positive, got {c.Lr}");
        if (c.WeightDecay < 0)
            throw new WtnException($"optimizer.weight_decay must be >= 0, got {c.WeightDecay}");
        if (c.Nesterov && c.Momentum <= 0)
            throw new WtnException("optimizer.nesterov needs optimizer.momentum > 0");
        var seen = new HashSet<IntPtr>();
        var split = new List<(IReadOnlyList<Parameter> Ps, double Factor, double Wd)>();
        foreach (var g in groups)
        {
            if (g.LrFactor < 0)
                throw new WtnException($"parameter group '{g.Name}': lr factor must be >= 0, got {g.LrFactor}");
            foreach (var p in g.Parameters)
                if (!seen.Add(p.Handle))
                    throw new ArgumentException($"a parameter appears in two groups (second: '{g.Name}')");
            bool decays(Parameter p) => g.WeightDecay && (c.DecayNormsAndBiases || p.dim() > 1);
            var withDecay = g.Parameters.Where(decays).ToList();
            var without = g.Parameters.Where(p => !decays(p)).ToList();
            if (withDecay.Count > 0)
                split.Add((withDecay, g.LrFactor, c.WeightDecay));
            if (without.Count > 0)
                split.Add((without, g.LrFactor, 0.0));
        }
        if (split.Count == 0)
            throw new ArgumentException("no parameters to train: every parameter group is empty");
        optim.Optimizer opt = c.Name switch
        {
            OptimizerKind.Sgd => new KeptScalar.SGD(
                split.Select(s => new SGD.ParamGroup(s.Ps, c.Lr * s.Factor, c.Momentum, 0, s.Wd, c.Nesterov)),
                c.Lr,
                c.Momentum,
                0,
                0,
                c.Nesterov
            ),
            OptimizerKind.AdamW => new KeptScalar.AdamW(
                split.Select(s => new AdamW.ParamGroup(s.Ps, c.Lr * s.Factor, c.Beta1, c.Beta2, c.Eps, s.Wd)),
                c.Lr,
                c.Beta1,
                c.Beta2,
                c.Eps,
                0
            ),
            _ => throw new ArgumentOutOfRangeException(nameof(c.Name)),
        };
        return new OptimizerSet(opt, split.Select(s => s.Factor).ToArray());
    }

    /// <summary>Sets every group's rate to <paramref name="baseLr"/> times its factor.</summary>
    public void SetLearningRate(double baseLr)
    {
        int i = 0;
        foreach (var g in Optimizer.ParamGroups)
            g.LearningRate = baseLr * _factors[i++];
    }

    public IEnumerable<Parameter> Parameters => Optimizer.parameters();

    public void Dispose() => Optimizer.Dispose();
}
