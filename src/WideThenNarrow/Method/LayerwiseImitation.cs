using WideThenNarrow.Models;
using WideThenNarrow.Training;

namespace WideThenNarrow.Method;

/// <summary>
/// Stage 2, layerwise imitation: thin block k (stem first, bottom to top) learns to reproduce the wide network's
/// activation at point <c>map[k]</c>. This class plans the blocks and sets what trains; each block is then one
/// run of the engine's trainer on <see cref="BlockImitation.Objective"/> with <see cref="BlockImitation.Groups"/>
/// (see <c>StageRunner</c>). In teacher mode the blocks are independent problems, so their order does not matter.
/// </summary>
public sealed class LayerwiseImitation
{
    public LayerwiseImitation(StagedModel thin, StagedModel wide, ImitationOptions options, IWideActivationSource? wideSource = null)
    {
        if (thin.Family != wide.Family)
            throw new WtnException($"imitation: thin network is a {thin.Family}, wide one a {wide.Family}; they must be the same family");
        Thin = thin;
        Wide = wide;
        Options = options;
        Map = LayerMap.Build(thin.BlockCount, wide.BlockCount);
        Adapters = new ImitationAdapters(thin, wide, Map);
        WideSource = wideSource ?? new OnTheFlyWideActivations(wide);
        foreach (var p in wide.parameters()) p.requires_grad = false;
        wide.eval();
    }

    public StagedModel Thin { get; }
    public StagedModel Wide { get; }
    public ImitationOptions Options { get; }
    public int[] Map { get; }
    public ImitationAdapters Adapters { get; }
    public IWideActivationSource WideSource { get; }
    public int BlockCount => Thin.BlockCount;

    /// <summary>
    /// Prepares block k: only its parameters (with U_k and D_{k-1}) require gradients, plus the earlier thin blocks
    /// at <see cref="ImitationOptions.EarlierBlocksLrFactor"/> in student mode when that factor is positive.
    /// </summary>
    public BlockImitation Block(int k)
    {
        if (k < 0 || k >= BlockCount) throw new ArgumentOutOfRangeException(nameof(k));
        foreach (var p in Thin.parameters()) p.requires_grad = false;
        foreach (var p in Adapters.parameters()) p.requires_grad = false;
        var own = Thin.BlockParameters(k).Concat(Adapters.ParametersForBlock(k)).ToList();
        var groups = new List<ParameterGroup> { new($"block{k}", own) };
        if (Options.Input == ImitationInput.Student && Options.EarlierBlocksLrFactor > 0 && k > 0)
            groups.Add(new("earlier", Enumerable.Range(0, k).SelectMany(Thin.BlockParameters).ToList(), Options.EarlierBlocksLrFactor));
        foreach (var g in groups) foreach (var p in g.Parameters) p.requires_grad = true;
        var objective = new ImitationObjective(Thin, Wide, k, Map, Adapters, Options, WideSource);
        return new BlockImitation(k, Thin.Points[k].Name, objective, groups);
    }

    /// <summary>After the last block: every thin parameter trains again (stage 3).</summary>
    public void Release()
    {
        foreach (var p in Thin.parameters()) p.requires_grad = true;
    }
}

/// <summary>One block's imitation problem: the objective and what trains.</summary>
public sealed record BlockImitation(int Block, string PointName, ImitationObjective Objective, IReadOnlyList<ParameterGroup> Groups);
