using TorchSharp;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>Copies the wide network's head into the thin one when every head tensor has the same shape (inner widening).</summary>
public static class HeadTransfer
{
    /// <summary>
    /// After stage 2: true when copied; false (thin head untouched, trained in stage 3) when any shape differs.
    /// Head tensors shared with a block (a masked-LM decoder tied to the word embeddings) are left alone: they
    /// belong to the block, and <see cref="CopyTiedIfShapesMatch"/> seeded them before imitation.
    /// </summary>
    public static bool CopyIfShapesMatch(StagedModel wide, StagedModel thin) =>
        Copy(wide, thin, tied: false) is not null;

    /// <summary>
    /// Before stage 2: copies the head tensors that a block shares (the word embeddings a masked-LM decoder is tied
    /// to), so that the copied head's transform and its tied decoder come from the same network. Without this the
    /// thin decoder was the thin network's own embedding matrix, which block 0's few imitation steps barely move
    /// from random: the wide transform then fed a nearly random decoder, and the thin network's masked-token top-1
    /// right after stage 2 stayed far below the wide network's (docs/results.md). Block 0's imitation then starts
    /// from the wide embeddings and trains them like the rest of the block. Returns how many tensors were copied (0 when the head has none
    /// tied, or when any head shape differs).
    /// </summary>
    public static int CopyTiedIfShapesMatch(StagedModel wide, StagedModel thin) => Copy(wide, thin, tied: true) ?? 0;

    /// <summary>Copies the untied (or only the tied) head tensors; null when the heads' tensors do not match.</summary>
    static int? Copy(StagedModel wide, StagedModel thin, bool tied)
    {
        var src = wide.HeadModules.SelectMany(m => m.state_dict()).ToList();
        var dst = thin.HeadModules.SelectMany(m => m.state_dict()).ToList();
        if (src.Count != dst.Count)
            return null;
        for (int i = 0; i < src.Count; i++)
            if (src[i].Key != dst[i].Key || !src[i].Value.shape.SequenceEqual(dst[i].Value.shape))
                return null;
        var blockTensors = Enumerable
            .Range(0, thin.BlockCount)
            .SelectMany(thin.BlockParameters)
            .Select(p => p.Handle)
            .ToHashSet();
        int copied = 0;
        using (no_grad())
            for (int i = 0; i < src.Count; i++)
                if (blockTensors.Contains(dst[i].Value.Handle) == tied)
                {
                    dst[i].Value.copy_(src[i].Value);
                    copied++;
                }
        return copied;
    }
}
