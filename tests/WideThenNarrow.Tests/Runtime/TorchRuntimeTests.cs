using TorchSharp;
using WideThenNarrow.Runtime;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Runtime;

public class TorchRuntimeTests
{
    [Fact]
    public void Torch_runs_forward_and_backward_in_the_test_host()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var lin = nn.Linear(4, 3);
        var x = randn(8, 4);
        var loss = lin.call(x).pow(2).mean();
        loss.backward();
        var g = lin.weight!.grad;
        Assert.NotNull(g);
        Assert.Equal(new long[] { 3, 4 }, g!.shape);
        // d/dW mean((Wx+b)^2) computed by hand must match autograd.
        var y = lin.call(x).detach();
        var expected = y.t().matmul(x).mul(2.0 / (8 * 3));
        Assert.True(g.allclose(expected, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Native_fix_is_applied_when_the_system_needs_it()
    {
        var info = TorchRuntime.Describe("/tmp");
        Assert.Equal("0.107.0", info.TorchSharpVersion);
        if (info.NativeFixNeeded)
            Assert.StartsWith("needed and applied", info.NativeFixStatus);
        Assert.False(
            Directory.Exists(Path.Combine(AppContext.BaseDirectory, "cpu")),
            "TorchSharp fell back to the unpatched natives in cpu/: the output copy did not load"
        );
    }

    [Fact]
    public void Unknown_device_and_unavailable_cuda_are_user_errors()
    {
        Assert.Throws<WtnException>(() => TorchRuntime.ResolveDevice("tpu"));
        if (!cuda.is_available())
            Assert.Contains(
                "--device cuda",
                Assert.Throws<WtnException>(() => TorchRuntime.ResolveDevice("cuda")).Message
            );
    }
}
