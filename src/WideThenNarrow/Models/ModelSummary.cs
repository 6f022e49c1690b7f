using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>One block of a summary: its imitation point's shape (per example), parameters and multiply-accumulates.</summary>
public sealed record BlockSummary(int Index, string Name, long[] Shape, bool SkipCrosses, long Parameters, long Macs);

/// <summary>
/// Blocks, activation shapes at every imitation point, parameters and multiply-accumulates (convolutions, linear
/// maps, attention matmuls; counted analytically from shapes) for one example of the given input shape.
/// </summary>
public sealed record ModelSummary(
    string Model,
    string Family,
    string Widening,
    long[] InputShape,
    IReadOnlyList<BlockSummary> Blocks,
    long HeadParameters,
    long HeadMacs,
    long Parameters,
    long Macs
)
{
    /// <summary>
    /// Builds the model on the meta device (shapes only, no memory for weights); shapes and MACs are analytic.
    /// <paramref name="inputShape"/> excludes the batch: (C,H,W) for ResNets, (T) for BERT, (D) for the MLP;
    /// null = <see cref="DefaultInputShape"/>.
    /// </summary>
    public static ModelSummary Of(ModelConfig config, long[]? inputShape = null)
    {
        using var model = ModelFactory.Create(config, META);
        return Of(model, inputShape ?? DefaultInputShape(config), config.Widen);
    }

    /// <summary>Summary of an existing model (nothing is run).</summary>
    public static ModelSummary Of(StagedModel model, long[] inputShape, Widening? widening = null)
    {
        if (model is not IMacCounting counting)
            throw new ArgumentException($"{model.GetType().Name} does not count its MACs", nameof(model));
        var inBlocks = new HashSet<IntPtr>();
        var blocks = new List<BlockSummary>();
        for (int i = 0; i < model.BlockCount; i++)
        {
            var shape = counting.OutputShape(i, i == 0 ? inputShape : blocks[i - 1].Shape);
            long parameters = model.BlockParameters(i).Where(p => inBlocks.Add(p.Handle)).Sum(p => p.numel());
            var p = model.Points[i];
            blocks.Add(
                new BlockSummary(
                    i,
                    p.Name,
                    shape,
                    p.SkipCrosses,
                    parameters,
                    counting.BlockMacs(i, i == 0 ? inputShape : blocks[i - 1].Shape, shape)
                )
            );
        }
        // The masked-LM decoder is tied to the word embeddings: count it with block 0 only.
        long headParameters = model
            .HeadParameters()
            .Where(p => !inBlocks.Contains(p.Handle))
            .DistinctBy(p => p.Handle)
            .Sum(p => p.numel());
        long headMacs = counting.HeadMacs(blocks[^1].Shape);
        return new ModelSummary(
            model.GetName(),
            model.Family,
            (widening ?? Models.Widening.None).ToString(),
            inputShape,
            blocks,
            headParameters,
            headMacs,
            model.parameters().Sum(p => p.numel()),
            blocks.Sum(b => b.Macs) + headMacs
        );
    }

    /// <summary>(C,224,224) for resnet18..152, (C,32,32) for the CIFAR layout (or the config's ImageSize), (D) for the MLP, (128) for BERT.</summary>
    public static long[] DefaultInputShape(ModelConfig c)
    {
        var name = c.Name.Trim().ToLowerInvariant();
        if (name == "mlp")
            return [c.InputDim];
        if (name.StartsWith("bert", StringComparison.Ordinal))
            return [Math.Min(128, c.MaxPositions)];
        int size = c.ImageSize ?? (name.StartsWith("cifar", StringComparison.Ordinal) ? 32 : 224);
        return [c.InputChannels, size, size];
    }
}
