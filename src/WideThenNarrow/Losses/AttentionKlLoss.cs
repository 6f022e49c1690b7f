using static TorchSharp.torch;

namespace WideThenNarrow.Losses;

/// <summary>
/// KL(p_wide || p_thin) between attention distributions (N, heads, T, T), per head and query, averaged over
/// heads and over real query tokens. Head counts must match, or <paramref name="averageHeads"/> compares the
/// head-averaged distributions instead.
/// </summary>
public static class AttentionKlLoss
{
    public static Tensor Compute(Tensor thinProbs, Tensor wideProbs, Tensor? attentionMask, bool averageHeads)
    {
        if (thinProbs.shape[1] != wideProbs.shape[1])
        {
            if (!averageHeads)
                throw new WtnException(
                    $"imitation: attention KL needs equal head counts (thin {thinProbs.shape[1]}, wide {wideProbs.shape[1]}); set imitation.average_heads: true, or widen each head instead of their number (models.wide.widen_heads: size)"
                );
        }
        if (averageHeads)
        {
            thinProbs = thinProbs.mean([1], keepdim: true);
            wideProbs = wideProbs.mean([1], keepdim: true);
        }
        const double eps = 1e-12;
        // Sum over keys gives KL per (example, head, query).
        var kl = (wideProbs * ((wideProbs + eps).log() - (thinProbs + eps).log())).sum(-1);
        if (attentionMask is null)
            return kl.mean();
        var queries = attentionMask.to_type(kl.dtype).unsqueeze(1).expand_as(kl);
        return (kl * queries).sum() / queries.sum().clamp_min(1);
    }
}
