using System.Reflection;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace WideThenNarrow.Runtime;

/// <summary>Facts about the tensor runtime, for <c>wtn info</c> and run records.</summary>
public sealed record RuntimeInfo(
    string DotNetVersion,
    string TorchSharpVersion,
    string LibTorchVersion,
    int Threads,
    int LogicalCores,
    IReadOnlyList<string> Devices,
    bool NativeFixNeeded,
    string NativeFixStatus,
    string? NativeLibraryPath,
    string DataDir,
    string Allocator,
    string OneDnn
);

/// <summary>Initialises TorchSharp once per process: native allocator, thread count and device.</summary>
public static class TorchRuntime
{
    /// <summary>Pinned here because TorchSharp exposes no libtorch version string at run time.</summary>
    public const string LibTorchVersion = "2.10.0";
    const string RequiredGlibcxx = "GLIBCXX_3.4.32";

    /// <summary>
    /// Tunes the native allocator (<see cref="NativeAllocator.Tune"/>), sets the intra-op thread count (0 = all
    /// cores, at most the core count) and returns the device to use.
    /// </summary>
    public static Device Initialize(int threads, string device)
    {
        if (threads < 0)
            throw new WtnException($"--threads must be 0 (all cores) or positive, got {threads}");
        // libtorch starts every thread it is asked for: thousands of them never return from the first operation.
        if (threads > Environment.ProcessorCount)
            throw new WtnException(
                $"--threads {threads} is more than the {Environment.ProcessorCount} cores of this machine; give at most {Environment.ProcessorCount} (0 = all cores)"
            );
        NativeAllocator.Tune();
        set_num_threads(threads == 0 ? Environment.ProcessorCount : threads);
        NnpackGuard.Apply();
        return ResolveDevice(device);
    }

    public static Device ResolveDevice(string device)
    {
        switch (device.Trim().ToLowerInvariant())
        {
            case "cpu":
                return CPU;
            case "cuda":
                if (!cuda.is_available())
                    throw new WtnException(
                        "--device cuda: CUDA is not available (this build uses TorchSharp-cpu; reference TorchSharp-cuda-linux and run on a machine with an NVIDIA GPU), use --device cpu"
                    );
                return CUDA;
            default:
                if (device.StartsWith("cuda:", StringComparison.OrdinalIgnoreCase))
                {
                    if (!cuda.is_available())
                        throw new WtnException($"--device {device}: CUDA is not available, use --device cpu");
                    return new Device(device);
                }
                throw new WtnException($"--device: unknown device '{device}', expected cpu or cuda");
        }
    }

    public static RuntimeInfo Describe(string dataDir)
    {
        var devices = new List<string> { "cpu" };
        if (cuda.is_available())
            for (int i = 0; i < cuda.device_count(); i++)
                devices.Add($"cuda:{i}");
        var tsAssembly = typeof(TorchSharp.torch).Assembly;
        var tsVersion = tsAssembly
            .GetCustomAttribute<AssemblyInformationalVersionAttribute>()
            ?.InformationalVersion?.Split('+')[0]
            ?? tsAssembly.GetName().Version?.ToString()
            ?? "unknown";
        var (needed, status, path) = NativeFix();
        return new RuntimeInfo(
            RuntimeInformation.FrameworkDescription,
            tsVersion,
            LibTorchVersion,
            get_num_threads(),
            Environment.ProcessorCount,
            devices,
            needed,
            status,
            path,
            dataDir,
            NativeAllocator.Status.Description,
            OneDnnCpuGuard.Status
        );
    }

    /// <summary>
    /// Whether the system libstdc++ lacks the version libLibTorchSharp.so asks for (so the build's
    /// patch was needed), and whether the loaded copy carries the patch.
    /// </summary>
    static (bool Needed, string Status, string? Path) NativeFix()
    {
        var dir = Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location) ?? AppContext.BaseDirectory;
        string? lib = new[]
        {
            Path.Combine(dir, "libLibTorchSharp.so"),
            Path.Combine(dir, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
        }.FirstOrDefault(File.Exists);
        if (!OperatingSystem.IsLinux())
            return (false, "not Linux", lib);
        if (ElfVersionNeeds.SystemProvides(RequiredGlibcxx))
            return (false, $"not needed: system libstdc++ provides {RequiredGlibcxx}", lib);
        if (lib is null)
            return (true, "needed; native library not found beside TorchSharp.dll", null);
        bool? weak;
        try
        {
            weak = ElfVersionNeeds.IsWeak(lib, RequiredGlibcxx);
        }
        catch (InvalidDataException e)
        {
            return (true, $"needed; cannot read the native library: {e.Message}", lib);
        }
        return (
            true,
            weak switch
            {
                true => $"needed and applied: {RequiredGlibcxx} need marked weak in the output copy",
                false => $"needed but NOT applied: rebuild with the repository's Directory.Build.targets",
                null => $"needed; {RequiredGlibcxx} need not present in this library",
            },
            lib
        );
    }
}
