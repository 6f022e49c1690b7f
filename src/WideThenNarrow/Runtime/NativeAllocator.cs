using System.Runtime.InteropServices;

namespace WideThenNarrow.Runtime;

/// <summary>What <see cref="NativeAllocator.Tune"/> did, for <c>wtn info</c> and run records.</summary>
public sealed record AllocatorStatus(bool Tuned, string Description);

/// <summary>
/// Keeps glibc's malloc from handing libtorch's freed activation buffers back to the kernel after every step.
/// <para>
/// A CPU training step allocates and frees the same set of multi-megabyte tensors over and over. Under glibc's
/// defaults in a TorchSharp process, freed buffers above the mmap threshold are unmapped and the top of the heap
/// is trimmed, so the next step faults every page in again (tens of thousands of minor page faults per step, a
/// noticeable share of its time in the kernel: docs/performance.md). Raising the mmap threshold to glibc's 64-bit
/// maximum (32 MB) and the trim threshold to 2 GB makes the pages stay mapped and be reused; the PyTorch peer shows
/// the same low fault count without this. Tensors above 32 MB (the feed-forward activations of a BERT step at batch
/// 32 and width 2048 are 33.5 MB) were still mapped and unmapped on every use, so mmap is also turned off for
/// allocations (M_MMAP_MAX = 0): they come from the heap and are reused like the rest. That made the BERT study's wide
/// stage about 1.4x faster (docs/performance.md). Cost: the process keeps its peak heap instead of returning it to the
/// system.
/// </para>
/// Set <c>WTN_MALLOC_TUNING=0</c> to keep glibc's defaults. A no-op off Linux or without glibc's <c>mallopt</c>.
/// </summary>
public static class NativeAllocator
{
    const int MTrimThreshold = -1; // M_TRIM_THRESHOLD in glibc's malloc.h
    const int MMmapThreshold = -3; // M_MMAP_THRESHOLD
    const int MMmapMax = -4; // M_MMAP_MAX: how many chunks malloc may map at once (0 = never map; the heap serves all)
    public const int MmapThresholdBytes = 32 << 20; // glibc refuses more on 64-bit (HEAP_MAX_SIZE / 2)
    public const int TrimThresholdBytes = int.MaxValue; // mallopt takes an int

    static readonly Lock Gate = new();
    static AllocatorStatus? status;

    /// <summary>Applies the tuning once per process (later calls return the first call's status).</summary>
    public static AllocatorStatus Tune()
    {
        lock (Gate)
        {
            return status ??= Apply();
        }
    }

    /// <summary>The status so far, without tuning.</summary>
    public static AllocatorStatus Status
    {
        get
        {
            lock (Gate)
                return status ?? new AllocatorStatus(false, "glibc defaults (not tuned in this process)");
        }
    }

    static AllocatorStatus Apply()
    {
        if (Environment.GetEnvironmentVariable("WTN_MALLOC_TUNING") == "0")
            return new AllocatorStatus(false, "glibc defaults (WTN_MALLOC_TUNING=0)");
        if (!OperatingSystem.IsLinux())
            return new AllocatorStatus(false, "not Linux: system defaults");
        try
        {
            bool mmap = mallopt(MMmapThreshold, MmapThresholdBytes) == 1;
            bool trim = mallopt(MTrimThreshold, TrimThresholdBytes) == 1;
            bool noMaps = mallopt(MMmapMax, 0) == 1;
            return mmap && trim && noMaps
                ? new AllocatorStatus(
                    true,
                    $"glibc malloc tuned: no mmap for allocations, mmap threshold {MmapThresholdBytes >> 20} MB, trim threshold 2 GB"
                )
                : new AllocatorStatus(
                    false,
                    $"mallopt refused (mmap threshold {(mmap ? "set" : "refused")}, mmap max {(noMaps ? "set" : "refused")}, trim threshold {(trim ? "set" : "refused")})"
                );
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return new AllocatorStatus(false, "no glibc mallopt: system defaults");
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int mallopt(int param, int value);

    /// <summary>Minor page faults of this process so far (Linux <c>/proc/self/stat</c>; null elsewhere).</summary>
    public static long? MinorPageFaults()
    {
        try
        {
            var stat = File.ReadAllText("/proc/self/stat");
            // Fields after the parenthesised command name; minflt is field 10 (1-based) of the whole line.
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(rest[7], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e)
            when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
