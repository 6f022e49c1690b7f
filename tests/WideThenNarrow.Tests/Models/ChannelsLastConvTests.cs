using WideThenNarrow.Models;
using WideThenNarrow.Runtime;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

// Flips a process-wide switch, so it runs with no other test alongside.
[Collection("torch-rng")]
public class ChannelsLastConvTests
{
    static (Tensor Logits, Dictionary<string, Tensor> Grads, Tensor Block1, long[] StemStrides) Step(
        bool channelsLast,
        Tensor x,
        Tensor y,
        bool f64 = false
    )
    {
        bool saved = ChannelsLastConv.Enabled;
        ChannelsLastConv.Enabled = channelsLast;
        try
        {
            manual_seed(7);
            var model = (ResNet)
                ModelFactory.Create(
                    new ModelConfig
                    {
                        Name = "cifar-resnet20",
                        InputChannels = 1,
                        Classes = 10,
                        ImageSize = 28,
                    },
                    CPU
                );
            if (f64)
            {
                TorchSharp.ModuleExtensionMethods.to(model, ScalarType.Float64);
                x = x.to(ScalarType.Float64);
            }
            model.train();
            var input = new ModelInput(x);
            // The stem's and the first residual block's outputs.
            using var stemOut = model.ForwardBlock(0, null, input);
            var stem = model.ForwardBlock(1, stemOut, input).detach();
            var logits = model.call(input);
            nn.functional.cross_entropy(logits, y).backward();
            var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
            Assert.All(model.parameters(), p => Assert.True(p.is_contiguous(), "parameters keep the default layout"));
            return (logits.detach(), grads, stem, stemOut.stride());
        }
        finally
        {
            ChannelsLastConv.Enabled = saved;
        }
    }

    [Fact]
    public void Channels_last_convolutions_agree_with_the_plain_path_and_keep_parameters_contiguous()
    {
        manual_seed(1);
        var x = randn(32, 1, 28, 28);
        var y = randint(0, 10, [32]);
        var plain = Step(false, x, y);
        var truth = Step(false, x, y, f64: true);
        var nhwc = Step(true, x, y);
        // The channels-last path really ran: the activations carry NHWC strides (C, H, W strides = 1, W*C, C).
        Assert.True(plain.Block1.is_contiguous());
        Assert.Equal(new long[] { 1, 28 * 16, 16 }, nhwc.Block1.stride()[1..]);
        // The stem too, although a 1-channel batch is as much NCHW as NHWC: it is handed to the convolution with NHWC
        // strides, so oneDNN takes its NHWC kernel and no reorder of the stem's output is needed (Call).
        Assert.Equal(new long[] { 1, 28 * 16, 16 }, nhwc.StemStrides[1..]);
        Assert.Equal(new long[] { 28 * 28, 28, 1 }, plain.StemStrides[1..]);
        Assert.True(
            nhwc.Logits.allclose(plain.Logits, rtol: 1e-4, atol: 1e-5),
            $"logits differ by {(nhwc.Logits - plain.Logits).abs().max().item<float>()}"
        );
        // Gradients: through 19 batch-normed layers float32 itself is only good to ~1e-3 relative in the early layers
        // (the plain path against a float64 run: up to 1.6e-3). The channels-last path must be as accurate.
        double worstPlain = 0,
            worstNhwc = 0;
        foreach (var (name, t) in truth.Grads)
        {
            double norm = t.norm().item<double>();
            worstPlain = Math.Max(
                worstPlain,
                (plain.Grads[name].to(ScalarType.Float64) - t).norm().item<double>() / norm
            );
            worstNhwc = Math.Max(worstNhwc, (nhwc.Grads[name].to(ScalarType.Float64) - t).norm().item<double>() / norm);
        }
        // Where the oneDNN guard limits the kernels to AVX (CPUID without caches, Runtime/OneDnnCpuGuard), the plain path
        // no longer runs the kernels this pair was calibrated on; the channels-last path must still be float32-accurate.
        bool guarded = OneDnnCpuGuard.Status.StartsWith(
            $"{OneDnnCpuGuard.Variable}={OneDnnCpuGuard.SafeIsa}:",
            StringComparison.Ordinal
        );
        Assert.True(
            worstNhwc < 5e-3 && (guarded || worstNhwc <= 2 * worstPlain + 1e-5),
            $"worst relative gradient error against float64: channels-last {worstNhwc:E2}, plain {worstPlain:E2}"
        );

        // Small batches (batch-1 latency) take the plain path.
        var small = Step(true, x[..4], y[..4]);
        Assert.True(small.Block1.is_contiguous());
    }
}
