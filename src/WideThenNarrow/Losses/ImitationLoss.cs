using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Losses;

/// <summary>
/// Mean squared error between a thin and a wide activation at one imitation point. With
/// <paramref name="normalize"/> both sides first go through LayerNorm without affine parameters (as MobileBERT
/// does), over the feature / hidden / channel dimension of each position, so the loss ignores scale.
/// </summary>
public static class ImitationLoss
{
    public static Tensor Mse(Tensor thin, Tensor wide, ActivationLayout layout, bool normalize)
    {
        if (!thin.shape.SequenceEqual(wide.shape))
            throw new WtnException(
                $"imitation: thin activation {Shape(thin)} and wide activation {Shape(wide)} differ; use full widening adapters or a matching layer map"
            );
        if (!normalize)
            return nn.functional.mse_loss(thin, wide);
        return nn.functional.mse_loss(Normalize(thin, layout), Normalize(wide, layout));
    }

    /// <summary>LayerNorm over the width dimension of every position, no affine parameters.</summary>
    public static Tensor Normalize(Tensor x, ActivationLayout layout)
    {
        if (layout == ActivationLayout.Channels)
        {
            // Channels sit in dim 1: normalise each pixel's channel vector, as a token's hidden vector.
            var lastC = x.permute(0, 2, 3, 1);
            return nn.functional.layer_norm(lastC, [x.shape[1]]).permute(0, 3, 1, 2);
        }
        return nn.functional.layer_norm(x, [x.shape[^1]]);
    }

    static string Shape(Tensor t) => "(" + string.Join(",", t.shape) + ")";
}
