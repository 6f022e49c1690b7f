using TorchSharp;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>Copies the wide network's head into the thin one when every head tensor has the same shape (inner widening).</summary>
public static class HeadTransfer
{
    /// <summary>
    /// True when copied; false (thin head untouched, trained in stage 3) when any shape differs. Head tensors
    /// shared with a block (a masked-LM decoder tied to the word embeddings) are left alone: they belong to the
    /// block, which imitation already trained.
    /// </summary>
    public static bool CopyIfShapesMatch(StagedModel wide, StagedModel thin)
    {
        var src = wide.HeadModules.SelectMany(m => m.state_dict()).ToList();
        var dst = thin.HeadModules.SelectMany(m => m.state_dict()).ToList();
        if (src.Count != dst.Count) return false;
        for (int i = 0; i < src.Count; i++)
            if (src[i].Key != dst[i].Key || !src[i].Value.shape.SequenceEqual(dst[i].Value.shape)) return false;
        var blockTensors = Enumerable.Range(0, thin.BlockCount).SelectMany(thin.BlockParameters).Select(p => p.Handle).ToHashSet();
        using (no_grad())
            for (int i = 0; i < src.Count; i++)
                if (!blockTensors.Contains(dst[i].Value.Handle)) dst[i].Value.copy_(src[i].Value);
        return true;
    }
}
