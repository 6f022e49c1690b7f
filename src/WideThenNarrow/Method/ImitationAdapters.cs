using TorchSharp;
using TorchSharp.Modules;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// The learned linear pairs of <c>full</c> widening: at every thin point k whose width differs from its wide
/// point, <c>U_k</c> maps thin to wide (the loss is taken there) and <c>D_k</c> maps wide to thin (to feed wide
/// activations into thin block k+1). 1x1 convolutions for <see cref="ActivationLayout.Channels"/>, linear maps
/// otherwise. Both without bias (our choice), so <c>D_k U_k</c> is linear and folds exactly into any next
/// conv/linear, padding included. <c>D_k</c> starts as the pseudo-inverse of <c>U_k</c> (our choice), so
/// <c>D_k U_k = I</c> at the start and dropping an unmergeable pair costs least.
/// </summary>
public sealed class ImitationAdapters : nn.Module
{
    readonly ModuleDict<nn.Module<Tensor, Tensor>> up = new();
    readonly ModuleDict<nn.Module<Tensor, Tensor>> down = new();
    readonly IReadOnlyList<ImitationPoint> thinPoints;

    public ImitationAdapters(StagedModel thin, StagedModel wide, int[] layerMap)
        : base(nameof(ImitationAdapters))
    {
        thinPoints = thin.Points;
        int last = thin.BlockCount - 1;
        for (int k = 0; k < thin.BlockCount; k++)
        {
            var tp = thin.Points[k];
            var wp = wide.Points[layerMap[k]];
            if (tp.Layout != wp.Layout)
                throw new WtnException(
                    $"imitation: point {k} ({tp.Name}) is {tp.Layout} in the thin network but {wp.Layout} in the wide one"
                );
            if (tp.Width == wp.Width)
                continue;
            var u = Map(tp.Layout, tp.Width, wp.Width);
            up.Add(($"{k}", u));
            if (k == last)
                continue; // nothing after the last point consumes a wide activation
            var d = Map(tp.Layout, wp.Width, tp.Width);
            using (no_grad())
            {
                var uw = Matrix(u);
                Matrix(d).copy_(linalg.pinv(uw).reshape(Matrix(d).shape));
            }
            down.Add(($"{k}", d));
        }
        RegisterComponents();
    }

    public bool HasUp(int k) => up.ContainsKey($"{k}");

    public bool HasDown(int k) => down.ContainsKey($"{k}");

    public bool IsEmpty => up.Count == 0;

    /// <summary>Thin activation at point k as a wide one (identity where widths agree).</summary>
    public Tensor Up(int k, Tensor thin) => HasUp(k) ? up[$"{k}"].call(thin) : thin;

    /// <summary>Wide activation at point k as a thin one (identity where widths agree).</summary>
    public Tensor Down(int k, Tensor wide) => HasDown(k) ? down[$"{k}"].call(wide) : wide;

    /// <summary>Parameters that train with thin block k: its U_k and the D_{k-1} that feeds it.</summary>
    public IEnumerable<Parameter> ParametersForBlock(int k)
    {
        if (HasUp(k))
            foreach (var p in up[$"{k}"].parameters())
                yield return p;
        if (k > 0 && HasDown(k - 1))
            foreach (var p in down[$"{k - 1}"].parameters())
                yield return p;
    }

    /// <summary>
    /// The thin network as stage 2 trained it: <c>D_k U_k</c> between blocks k and k+1. Equals the merged network
    /// where every pair was merged; the reference for the merge test.
    /// </summary>
    public Tensor ForwardWithPairs(StagedModel thin, ModelInput input)
    {
        Tensor? h = null;
        for (int k = 0; k < thin.BlockCount; k++)
        {
            h = thin.ForwardBlock(k, h, input);
            if (HasDown(k))
                h = Down(k, Up(k, h));
        }
        return thin.ForwardHead(h!, input);
    }

    /// <summary>
    /// Removes the pairs from the thin network after stage 2: folds <c>D_k U_k</c> into block k+1's first
    /// conv/linear where no skip path crosses point k (exact), otherwise drops it. Returns what happened per point.
    /// </summary>
    public IReadOnlyList<AdapterFate> MergeInto(StagedModel thin)
    {
        var fates = new List<AdapterFate>();
        for (int k = 0; k < thin.BlockCount; k++)
        {
            var name = thinPoints[k].Name;
            if (!HasUp(k))
                continue;
            if (!HasDown(k))
            {
                fates.Add(new AdapterFate(k, name, AdapterFateKind.Dropped, "last point: U only shaped the loss"));
                continue;
            }
            if (thinPoints[k].SkipCrosses)
            {
                fates.Add(
                    new AdapterFate(
                        k,
                        name,
                        AdapterFateKind.Dropped,
                        "a skip path crosses this point, folding would not be exact"
                    )
                );
                continue;
            }
            var first = FirstMap(thin.BlockModules(k + 1));
            if (first is null)
            {
                fates.Add(
                    new AdapterFate(
                        k,
                        name,
                        AdapterFateKind.Dropped,
                        "next block has no leading conv/linear to fold into"
                    )
                );
                continue;
            }
            using (no_grad())
            {
                // M = D U (thin x thin); the next map W becomes W M (per spatial tap for convolutions).
                var m = Matrix(down[$"{k}"]).matmul(Matrix(up[$"{k}"]));
                var w = first.weight!;
                var folded = w.dim() == 2 ? w.matmul(m) : einsum("oikl,ij->ojkl", w, m);
                w.copy_(folded);
            }
            fates.Add(new AdapterFate(k, name, AdapterFateKind.Merged, $"folded into {first.GetName()}"));
        }
        return fates;
    }

    /// <summary>The first conv/linear of a block in registration order: the map that first reads its input.</summary>
    static WeightedMap? FirstMap(IReadOnlyList<nn.Module> modules)
    {
        foreach (var m in modules)
        foreach (var sub in m.modules().Prepend(m))
        {
            if (sub is Linear lin)
                return new WeightedMap(lin.weight, sub);
            if (sub is Conv2d conv && conv.groups == 1)
                return new WeightedMap(conv.weight, sub);
        }
        return null;
    }

    sealed record WeightedMap(Tensor? weight, nn.Module module)
    {
        public string GetName() => module.GetName();
    }

    static nn.Module<Tensor, Tensor> Map(ActivationLayout layout, int inWidth, int outWidth) =>
        layout == ActivationLayout.Channels
            ? nn.Conv2d(inWidth, outWidth, 1, bias: false)
            : nn.Linear(inWidth, outWidth, hasBias: false);

    /// <summary>The (out, in) matrix of a 1x1 conv or linear adapter, sharing storage with its weight.</summary>
    static Tensor Matrix(nn.Module<Tensor, Tensor> m) =>
        m switch
        {
            Linear lin => lin.weight!,
            Conv2d conv => conv.weight!.flatten(1),
            _ => throw new InvalidOperationException("adapter is neither linear nor 1x1 conv"),
        };
}

public enum AdapterFateKind
{
    Merged,
    Dropped,
}

/// <summary>What became of the adapter pair at thin point <see cref="Point"/> after stage 2.</summary>
public sealed record AdapterFate(int Point, string Name, AdapterFateKind Kind, string Reason);
