using WideThenNarrow.Losses;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Method;

public class LossTests
{
    [Fact]
    public void Distillation_with_alpha_zero_is_cross_entropy_and_kd_vanishes_for_equal_logits()
    {
        manual_seed(1);
        var zs = randn(8, 5);
        var y = randint(0, 5, [8]);
        var (total, task, kd) = DistillationLoss.Compute(zs, randn(8, 5), y, 0, 4);
        Assert.Equal(nn.functional.cross_entropy(zs, y).item<float>(), total.item<float>(), 5);
        Assert.Equal(0f, kd.item<float>());
        var (_, _, same) = DistillationLoss.Compute(zs, zs.clone(), y, 0.5, 4);
        Assert.True(Math.Abs(same.item<float>()) < 1e-6);
        var (mixed, t2, k2) = DistillationLoss.Compute(zs, randn(8, 5), y, 0.3, 2);
        Assert.True(k2.item<float>() > 0);
        Assert.Equal(0.7 * t2.item<float>() + 0.3 * k2.item<float>(), mixed.item<float>(), 4);
    }

    [Fact]
    public void Masked_lm_distillation_ignores_unlabelled_positions()
    {
        manual_seed(2);
        var zs = randn(2, 4, 7);
        var zb = randn(2, 4, 7);
        var y = tensor(new long[] { -100, 3, -100, -100, 1, -100, -100, 6 }).reshape(2, 4);
        var (a, _, _) = DistillationLoss.Compute(zs, zb, y, 0.5, 2);
        // Changing logits only at unlabelled positions must not change the loss.
        var zb2 = zb.clone();
        zb2[0, 0] = randn(7) * 10;
        var (b, _, _) = DistillationLoss.Compute(zs, zb2, y, 0.5, 2);
        Assert.Equal(a.item<float>(), b.item<float>(), 6);
        zb2[0, 1] = randn(7) * 10;
        var (c, _, _) = DistillationLoss.Compute(zs, zb2, y, 0.5, 2);
        Assert.NotEqual(a.item<float>(), c.item<float>());
    }

    [Fact]
    public void Normalised_mse_ignores_scale_and_shift_per_position()
    {
        manual_seed(3);
        var x = randn(4, 6, 5, 5);
        var scaled = x * 3 + 1;
        Assert.True(ImitationLoss.Mse(scaled, x, ActivationLayout.Channels, normalize: true).item<float>() < 1e-6);
        Assert.True(ImitationLoss.Mse(scaled, x, ActivationLayout.Channels, normalize: false).item<float>() > 1);
        Assert.Throws<WtnException>(() =>
            ImitationLoss.Mse(randn(4, 6), randn(4, 7), ActivationLayout.Features, false)
        );
    }

    [Fact]
    public void Attention_kl_is_zero_for_equal_distributions_and_needs_equal_heads_unless_averaged()
    {
        manual_seed(4);
        var p = randn(2, 4, 3, 3).softmax(-1);
        var q = randn(2, 4, 3, 3).softmax(-1);
        Assert.True(AttentionKlLoss.Compute(p, p, null, false).item<float>() < 1e-6);
        Assert.True(AttentionKlLoss.Compute(q, p, null, false).item<float>() > 0);
        var wide = randn(2, 8, 3, 3).softmax(-1);
        Assert.Throws<WtnException>(() => AttentionKlLoss.Compute(p, wide, null, false));
        Assert.True(AttentionKlLoss.Compute(p, wide, null, true).item<float>() >= 0);
    }

    [Fact]
    public void Attention_kl_per_head_is_the_mean_of_each_heads_kl_over_real_queries()
    {
        manual_seed(5);
        var thin = randn(2, 3, 4, 4).softmax(-1);
        var wide = randn(2, 3, 4, 4).softmax(-1);
        using var mask = tensor(new long[] { 1, 1, 1, 0, 1, 1, 0, 0 }, [2, 4]);
        double sum = 0;
        int queries = 0;
        var p = wide.data<float>().ToArray();
        var q = thin.data<float>().ToArray();
        var m = mask.data<long>().ToArray();
        for (int n = 0; n < 2; n++)
        for (int h = 0; h < 3; h++)
        for (int i = 0; i < 4; i++)
        {
            if (m[n * 4 + i] == 0)
                continue;
            queries++;
            for (int j = 0; j < 4; j++)
            {
                int at = ((n * 3 + h) * 4 + i) * 4 + j;
                sum += p[at] * (Math.Log(p[at] + 1e-12) - Math.Log(q[at] + 1e-12));
            }
        }
        Assert.Equal(sum / queries, AttentionKlLoss.Compute(thin, wide, mask, averageHeads: false).item<float>(), 5);
        // Averaging the heads first loses what tells them apart: a smaller KL here.
        Assert.True(AttentionKlLoss.Compute(thin, wide, mask, averageHeads: true).item<float>() < sum / queries);
    }
}
