using TorchSharp.Modules;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// Transformers: the embeddings (block 0) tensors whose name and shape are the same in the thin and the wide network
/// (position and token-type embeddings, and the word embeddings and their LayerNorm when the hidden sizes match, as
/// under inner widening) are copied from the wide network instead of imitated: an exact copy is what imitation would
/// approach, at no cost. Copied tensors then stay as they are during stage 2 (stage 3 trains them).
/// </summary>
public static class EmbeddingTransfer
{
    /// <summary>
    /// Copies wide block 0's tensors into thin block 0 where name and shape match, and returns the thin parameters that
    /// were copied with their names in block 0 (none for networks that are not transformers, whose block 0 is no embedding).
    /// </summary>
    public static IReadOnlyList<(string Name, Parameter Parameter)> CopyExactShapes(StagedModel wide, StagedModel thin)
    {
        if (thin is not IAttentionModel || wide is not IAttentionModel)
            return [];
        var source = wide.BlockModules(0)
            .SelectMany(m => m.named_parameters())
            .ToDictionary(p => p.name, p => p.parameter);
        var copied = new List<(string, Parameter)>();
        using (no_grad())
            foreach (var (name, p) in thin.BlockModules(0).SelectMany(m => m.named_parameters()))
                if (source.TryGetValue(name, out var w) && w.shape.SequenceEqual(p.shape))
                {
                    p.copy_(w);
                    copied.Add((name, p));
                }
        return copied;
    }
}
