using TorchSharp.Modules;
using WideThenNarrow.Models;
using WideThenNarrow.Training;

namespace WideThenNarrow.Method;

/// <summary>
/// Stage 2, layerwise imitation: thin block k (stem first, bottom to top) learns to reproduce the wide network's
/// activation at point <c>map[k]</c>. This class plans the units (blocks, or stages of blocks) and sets what
/// trains; each unit is then one run of the engine's trainer on <see cref="BlockImitation.Objective"/> with
/// <see cref="BlockImitation.Groups"/> (see <c>ImitationStage</c>). In teacher mode the units are independent
/// problems, so their order does not matter.
/// </summary>
public sealed class LayerwiseImitation
{
    public LayerwiseImitation(
        StagedModel thin,
        StagedModel wide,
        ImitationOptions options,
        IWideActivationSource? wideSource = null
    )
    {
        if (thin.Family != wide.Family)
            throw new WtnException(
                $"imitation: thin network is a {thin.Family}, wide one a {wide.Family}; they must be the same family"
            );
        Thin = thin;
        Wide = wide;
        Options = options;
        Map = LayerMap.Build(thin.BlockCount, wide.BlockCount);
        Adapters = new ImitationAdapters(thin, wide, Map);
        Copied = options.CopyEmbeddings ? EmbeddingTransfer.CopyExactShapes(wide, thin) : [];
        copied = Copied.Select(c => c.Parameter.Handle).ToHashSet();
        // A unit whose every parameter was copied has nothing to learn.
        Units = [.. PlanUnits(thin, options.Unit, Adapters).Where(u => Own(u).Any())];
        WideSource = wideSource ?? new OnTheFlyWideActivations(wide);
        foreach (var p in wide.parameters())
            p.requires_grad = false;
        wide.eval();
    }

    public StagedModel Thin { get; }
    public StagedModel Wide { get; }
    public ImitationOptions Options { get; }
    public int[] Map { get; }
    public ImitationAdapters Adapters { get; }
    public IWideActivationSource WideSource { get; }

    /// <summary>The imitation units in order: each the thin blocks First..Last, imitating wide point map[Last].</summary>
    public IReadOnlyList<BlockRange> Units { get; }
    public int UnitCount => Units.Count;

    /// <summary>Thin parameters copied from the wide network (<see cref="ImitationOptions.CopyEmbeddings"/>): they do not train in stage 2.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Copied { get; }

    readonly HashSet<IntPtr> copied;

    /// <summary>The unit's own parameters that imitation trains: its blocks' minus the copied ones.</summary>
    IEnumerable<Parameter> Own(BlockRange r) =>
        Enumerable.Range(r.First, r.Count).SelectMany(Thin.BlockParameters).Where(p => !copied.Contains(p.Handle));

    /// <summary>
    /// Prepares unit u: only its blocks' parameters (with U_last and D_{first-1}) require gradients, plus the earlier
    /// thin blocks at <see cref="ImitationOptions.EarlierBlocksLrFactor"/> in student mode when that factor is positive.
    /// </summary>
    public BlockImitation Unit(int u)
    {
        if (u < 0 || u >= UnitCount)
            throw new ArgumentOutOfRangeException(nameof(u));
        var r = Units[u];
        foreach (var p in Thin.parameters())
            p.requires_grad = false;
        foreach (var p in Adapters.parameters())
            p.requires_grad = false;
        // Multi-block units exist only without adapters (see PlanUnits).
        var own = Own(r).Concat(r.Count == 1 ? Adapters.ParametersForBlock(r.First) : []).ToList();
        var groups = new List<ParameterGroup>
        {
            new(r.Count == 1 ? $"block{r.First}" : $"blocks{r.First}-{r.Last}", own),
        };
        var earlier = Enumerable
            .Range(0, r.First)
            .SelectMany(Thin.BlockParameters)
            .Where(p => !copied.Contains(p.Handle))
            .ToList();
        if (Options.Input == ImitationInput.Student && Options.EarlierBlocksLrFactor > 0 && earlier.Count > 0)
            groups.Add(new("earlier", earlier, Options.EarlierBlocksLrFactor));
        foreach (var g in groups)
        foreach (var p in g.Parameters)
            p.requires_grad = true;
        var objective = new ImitationObjective(Thin, Wide, r, Map, Adapters, Options, WideSource);
        return new BlockImitation(u, Thin.Points[r.Last].Name, objective, groups);
    }

    /// <summary>
    /// Blocks, or (unit: stage) the stem alone then every run of points named layerN.* as one unit. Stage units need
    /// inner widening: a full-mode adapter pair inside a unit would never be trained.
    /// </summary>
    static IReadOnlyList<BlockRange> PlanUnits(StagedModel thin, ImitationUnit unit, ImitationAdapters adapters)
    {
        if (unit == ImitationUnit.Stage)
        {
            if (thin.Family != "resnet")
                throw new WtnException(
                    $"imitation.unit: stage groups the residual blocks of a ResNet stage; the thin network is a {thin.Family} (use unit: block)"
                );
            if (!adapters.IsEmpty)
                throw new WtnException(
                    "imitation.unit: stage needs inner widening (thin and wide points of equal width); with full widening use unit: block"
                );
        }
        return Group(thin.Points.Select(p => p.Name).ToList(), unit);
    }

    /// <summary>The units of a network whose imitation points have these names: one per block, or the stem then each layerN.* run.</summary>
    public static IReadOnlyList<BlockRange> Group(IReadOnlyList<string> pointNames, ImitationUnit unit)
    {
        if (unit == ImitationUnit.Block)
            return Enumerable.Range(0, pointNames.Count).Select(k => new BlockRange(k, k)).ToList();
        static string StageOf(string name) => name.Split('.')[0];
        var units = new List<BlockRange>();
        int first = 0;
        for (int k = 1; k <= pointNames.Count; k++)
            if (k == pointNames.Count || StageOf(pointNames[k]) != StageOf(pointNames[first]))
            {
                units.Add(new BlockRange(first, k - 1));
                first = k;
            }
        return units;
    }

    /// <summary>After the last block: every thin parameter trains again (stage 3).</summary>
    public void Release()
    {
        foreach (var p in Thin.parameters())
            p.requires_grad = true;
    }
}

/// <summary>One unit's imitation problem: the objective and what trains; <see cref="PointName"/> is the imitated point.</summary>
public sealed record BlockImitation(
    int Unit,
    string PointName,
    ImitationObjective Objective,
    IReadOnlyList<ParameterGroup> Groups
);

/// <summary>Thin blocks <see cref="First"/>..<see cref="Last"/> (inclusive).</summary>
public readonly record struct BlockRange(int First, int Last)
{
    public int Count => Last - First + 1;
}
