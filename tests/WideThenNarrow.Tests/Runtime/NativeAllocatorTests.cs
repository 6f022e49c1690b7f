using WideThenNarrow.Models;
using WideThenNarrow.Runtime;
using WideThenNarrow.Tests.Cli;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Runtime;

// Page faults are counted for the whole process, so this runs with no other test alongside.
[Collection("torch-rng")]
public class NativeAllocatorTests
{
    [Fact]
    public void Tuning_applies_once_and_is_reported()
    {
        var first = NativeAllocator.Tune();
        Assert.True(first.Tuned, first.Description);
        Assert.Same(first, NativeAllocator.Tune());
        Assert.Equal(first.Description, TorchRuntime.Describe("/tmp").Allocator);
    }

    [Fact]
    public void A_tuned_training_step_reuses_its_buffers_instead_of_faulting_them_in_again()
    {
        // Measured with `wtn bench train-step --channels 1 --size 28 --batch 64 --threads 2`: about 24,000 minor
        // page faults per step under glibc's defaults (WTN_MALLOC_TUNING=0), about 3,000 tuned.
        Assert.True(NativeAllocator.Tune().Tuned);
        manual_seed(0);
        var model = ModelFactory.Create(
            new ModelConfig
            {
                Name = "cifar-resnet20",
                InputChannels = 1,
                Classes = 10,
                ImageSize = 28,
            },
            CPU
        );
        var t = StepBenchmark.Bare(model, [64, 1, 28, 28], classes: 10, warmup: 3, steps: 5, CPU);
        Assert.NotNull(t.FaultsPerStep);
        Assert.True(t.FaultsPerStep < 10_000, $"{t.FaultsPerStep:F0} minor page faults per step");
    }

    [Fact]
    public void Tensors_above_the_mmap_threshold_are_reused_too()
    {
        // A masked-LM step whose feed-forward activations are 32 x 128 x 2048 floats = 33.5 MB, just above glibc's
        // largest mmap threshold (32 MB). With the threshold alone they were mapped and unmapped every step: this
        // command (with 3 warm-up and 4 timed steps) counted 10,270 minor page faults per step with mmap allowed. Measured in a wtn
        // process of its own: page faults count for the whole process, and tests of other collections run beside
        // this one.
        var (code, stdout, stderr) = WtnProcess.Run(
            "--threads 1 bench train-step --model bert --layers 1 --hidden 128 --heads 2 --intermediate 2048 "
                + "--vocab 1000 --seq 128 --batch 32 --masked 0.15 --warmup 5 --steps 6"
        );
        Assert.True(code == 0, stderr + stdout);
        var line = Assert.Single(stdout.Split('\n'), l =>
            l.StartsWith("torchsharp objective", StringComparison.Ordinal)
        );
        var faults = double.Parse(
            System.Text.RegularExpressions.Regex.Match(line, @"([0-9]+) page faults/step").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture
        );
        // Each mapped 33.5 MB tensor faults in 8,192 pages; the heap's own growth and the .NET runtime add some hundreds
        // (1,077 once under the full suite, about 10 alone).
        Assert.True(faults < 4_000, line);
    }
}

public class OneDnnCpuGuardTests
{
    [Fact]
    public void Limits_onednn_to_avx_exactly_where_cpuid_reports_no_caches()
    {
        // The test host applied the guard at start-up (AssemblySetup), before any convolution: its tests build networks
        // with 1x1 convolutions after others have run convolutions, too late for the guard at build time.
        var status = OneDnnCpuGuard.Apply();
        // .NET's copy of the environment is the one the process started with: the guard's own setenv does not show in it.
        if (Environment.GetEnvironmentVariable(OneDnnCpuGuard.Variable) is { Length: > 0 } user)
            Assert.Equal($"{OneDnnCpuGuard.Variable}={user} (set by the user)", status);
        else if (System.Runtime.Intrinsics.X86.X86Base.IsSupported && !OneDnnCpuGuard.CachesReported())
            Assert.StartsWith($"{OneDnnCpuGuard.Variable}={OneDnnCpuGuard.SafeIsa}: CPUID reports no caches", status);
        else
            Assert.StartsWith("not needed", status);
        Assert.Equal(status, TorchRuntime.Describe("/tmp").OneDnn);
        Assert.Equal(status, OneDnnCpuGuard.Status);
    }
}

public class NnpackGuardTests
{
    [Fact]
    public void Switches_nnpack_off_exactly_where_cpuid_reports_no_caches()
    {
        var status = NnpackGuard.Apply();
        bool noCaches = OneDnnCpuGuard.CachesMissing;
        Assert.Equal(!noCaches, NnpackGuard.Enabled);
        Assert.StartsWith(noCaches ? "off: CPUID reports no caches" : "not needed", status);
        // A batch-1 convolution still runs (the path NNPACK would have taken falls back) and gives the same values.
        using var scope = TorchSharp.torch.NewDisposeScope();
        var x = TorchSharp.torch.randn(1, 3, 8, 8);
        var w = TorchSharp.torch.randn(4, 3, 3, 3);
        var y = TorchSharp.torch.nn.functional.conv2d(x, w, padding: [1, 1]);
        var reference = TorchSharp.torch.nn.functional.conv2d(x.repeat(2, 1, 1, 1), w, padding: [1, 1])[0];
        Assert.True(y[0].allclose(reference, rtol: 1e-4, atol: 1e-5));
    }
}
