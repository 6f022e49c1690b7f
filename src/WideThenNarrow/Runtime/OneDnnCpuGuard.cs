using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace WideThenNarrow.Runtime;

/// <summary>
/// oneDNN (libtorch's CPU convolutions) sizes its blocks from the cache sizes CPUID reports (leaf 4 on Intel,
/// 0x8000001D on AMD). Some hypervisors report no caches there; oneDNN's AVX2 and AVX-512 brgemm convolutions then
/// divide by zero and the process dies with SIGFPE (seen in <c>brg_blocking_t::est_eff_1x1</c>, the backward pass of
/// a 1x1 convolution, on AMD EPYC guests). On such a machine, unless the user chose with <c>ONEDNN_MAX_CPU_ISA</c>,
/// oneDNN is limited to AVX, whose kernels do not divide by those sizes. AVX convolutions are about 2.7 times slower
/// there (cifar-resnet20's training step), so the limit is applied only by networks that have 1x1 convolutions
/// (<see cref="Models.ResNet"/>'s bottlenecks and projection shortcuts), when they are built. It must come before
/// libtorch's first convolution: oneDNN reads the variable once, natively (hence libc's setenv, not .NET's copy of
/// the environment).
/// </summary>
public static class OneDnnCpuGuard
{
    public const string Variable = "ONEDNN_MAX_CPU_ISA";
    public const string SafeIsa = "AVX";

    static readonly Lock Gate = new();
    static string? status;

    /// <summary>Applies the guard once per process and says what it did.</summary>
    public static string Apply()
    {
        lock (Gate)
            return status ??= Decide();
    }

    /// <summary>What <see cref="Apply"/> did, or would do (for <c>wtn info</c>).</summary>
    public static string Status
    {
        get
        {
            lock (Gate)
                return status
                    ?? (
                        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } chosen
                            ? $"{Variable}={chosen} (set by the user)"
                        : !CachesMissing ? "not needed (CPUID reports the caches)"
                        : $"CPUID reports no caches: a network with 1x1 convolutions limits oneDNN to {SafeIsa} when it is built"
                    );
        }
    }

    static string Decide()
    {
        if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } chosen)
            return $"{Variable}={chosen} (set by the user)";
        if (!X86Base.IsSupported || !OperatingSystem.IsLinux())
            return "not needed";
        if (CachesReported())
            return "not needed (CPUID reports the caches)";
        try
        {
            return setenv(Variable, SafeIsa, 0) == 0
                ? $"{Variable}={SafeIsa}: CPUID reports no caches, on which oneDNN's wider convolution kernels divide by zero"
                : "CPUID reports no caches, and setenv failed: oneDNN may crash in convolution backward passes";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return "CPUID reports no caches, and libc's setenv is missing: oneDNN may crash in convolution backward passes";
        }
    }

    /// <summary>Whether this is an x86 Linux machine whose CPUID describes no caches (the hypervisors this guard and <see cref="NnpackGuard"/> are for).</summary>
    public static bool CachesMissing => X86Base.IsSupported && OperatingSystem.IsLinux() && !CachesReported();

    /// <summary>Whether CPUID's deterministic cache leaf (Intel 4, AMD 0x8000001D) describes at least one cache.</summary>
    public static bool CachesReported()
    {
        var (_, b, c, d) = X86Base.CpuId(0, 0);
        bool amd = b == 0x68747541 && d == 0x69746E65 && c == 0x444D4163; // "AuthenticAMD"
        int leaf = amd ? unchecked((int)0x8000001D) : 4;
        if (amd && (uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax < 0x8000001D)
            return false;
        if (!amd && X86Base.CpuId(0, 0).Eax < 4)
            return false;
        return (X86Base.CpuId(leaf, 0).Eax & 0x1f) != 0; // cache type 0: no cache described
    }

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int setenv(
        [MarshalAs(UnmanagedType.LPUTF8Str)] string name,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string value,
        int overwrite
    );
}
