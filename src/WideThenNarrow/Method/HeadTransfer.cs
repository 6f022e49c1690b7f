using TorchSharp;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>Copies the wide network's head into the thin one when every head tensor has the same shape (inner widening).</summary>
public static class HeadTransfer
{
    /// <summary>True when copied; false (thin head untouched, trained in stage 3) when any shape differs.</summary>
    public static bool CopyIfShapesMatch(StagedModel wide, StagedModel thin)
    {
        var src = wide.HeadModules.SelectMany(m => m.state_dict()).ToList();
        var dst = thin.HeadModules.SelectMany(m => m.state_dict()).ToList();
        if (src.Count != dst.Count) return false;
        for (int i = 0; i < src.Count; i++)
            if (src[i].Key != dst[i].Key || !src[i].Value.shape.SequenceEqual(dst[i].Value.shape)) return false;
        using (no_grad())
            for (int i = 0; i < src.Count; i++) dst[i].Value.copy_(src[i].Value);
        return true;
    }
}
