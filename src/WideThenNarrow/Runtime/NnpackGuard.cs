using System.Runtime.InteropServices;

namespace WideThenNarrow.Runtime;

/// <summary>
/// NNPACK (libtorch's path for some small-batch convolutions) refuses to initialise where CPUID reports no caches
/// (the hypervisors of <see cref="OneDnnCpuGuard"/>), and libtorch 2.10 then logs "Could not initialize NNPACK!
/// Reason: Unsupported hardware." to stderr on every such convolution: 93 lines for one <c>wtn report</c> measuring
/// batch-1 latency. On such a machine NNPACK is switched off in libtorch's global context, so those convolutions take
/// the path they took anyway after the failed initialisation, without the noise. Elsewhere nothing changes.
/// </summary>
public static class NnpackGuard
{
    static readonly Lock Gate = new();
    static string? status;

    /// <summary>Applies the guard once per process (after libtorch is loaded) and says what it did.</summary>
    public static string Apply()
    {
        lock (Gate)
            return status ??= Decide();
    }

    static string Decide()
    {
        if (!OneDnnCpuGuard.CachesMissing)
            return "not needed (CPUID reports the caches)";
        try
        {
            SetUserEnabledNnpack(GlobalContext(), false);
            return UserEnabledNnpack(GlobalContext())
                ? "CPUID reports no caches; switching NNPACK off did not take"
                : "off: CPUID reports no caches, which NNPACK refuses";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return $"CPUID reports no caches; libtorch's NNPACK switch was not found ({e.GetType().Name})";
        }
    }

    /// <summary>Whether libtorch would use NNPACK where it applies (at::globalContext().userEnabledNNPACK()).</summary>
    public static bool Enabled => UserEnabledNnpack(GlobalContext());

    // at::Context& at::globalContext(); void at::Context::setUserEnabledNNPACK(bool); bool at::Context::userEnabledNNPACK() const
    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
    static extern IntPtr GlobalContext();

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    static extern void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledNNPACKEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    static extern bool UserEnabledNnpack(IntPtr context);
}
