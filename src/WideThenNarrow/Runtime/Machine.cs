using System.Reflection;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace WideThenNarrow.Runtime;

/// <summary>
/// What a training session ran on, as far as it can change the numbers: the same settings give other digits on another
/// CPU (libtorch picks its kernels by the instruction set it finds), at another thread count (reductions split
/// differently) or under another libtorch, TorchSharp or wtn. Recorded per session in a run's sessions.jsonl and per
/// stage in stage.json, so that two runs that disagree can be told apart by where they ran.
/// </summary>
public sealed record Machine(
    string Cpu,
    string Isa,
    int Cores,
    int Threads,
    string Os,
    string Wtn,
    string TorchSharp,
    string LibTorch
)
{
    /// <summary>This process now (the thread count is the one set at this moment).</summary>
    public static Machine Current() =>
        new(
            Static.Value.Cpu,
            Static.Value.Isa,
            Environment.ProcessorCount,
            get_num_threads(),
            RuntimeInformation.OSDescription,
            Static.Value.Wtn,
            Static.Value.TorchSharp,
            TorchRuntime.LibTorchVersion
        );

    /// <summary>One line: CPU, instruction set, threads, then the libraries (wtn's commit shortened).</summary>
    public string Describe()
    {
        var wtn = Wtn.Split('+') is [var v, var commit] ? $"{v}+{commit[..Math.Min(9, commit.Length)]}" : Wtn;
        return $"{Cpu} ({Isa}), {Threads} of {Cores} threads; wtn {wtn}, libtorch {LibTorch}, TorchSharp {TorchSharp}";
    }

    static readonly Lazy<(string Cpu, string Isa, string Wtn, string TorchSharp)> Static = new(() =>
    {
        var (cpu, flags) = CpuInfo();
        return (cpu, IsaOf(flags), Version(typeof(Machine).Assembly), Version(typeof(TorchSharp.torch).Assembly));
    });

    static string Version(Assembly a) =>
        a.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? a.GetName().Version?.ToString()
        ?? "unknown";

    /// <summary>The CPU's model name and flags from /proc/cpuinfo (Linux; elsewhere the architecture, no flags).</summary>
    static (string Model, HashSet<string> Flags) CpuInfo()
    {
        var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        try
        {
            if (File.Exists("/proc/cpuinfo"))
            {
                string? model = null;
                HashSet<string> flags = [];
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                {
                    var colon = line.IndexOf(':');
                    if (colon < 0)
                        continue;
                    var key = line[..colon].Trim();
                    var value = line[(colon + 1)..].Trim();
                    if (model is null && key is "model name" or "Model" or "cpu model")
                        model = value;
                    else if (flags.Count == 0 && key is "flags" or "Features")
                        flags = [.. value.Split(' ', StringSplitOptions.RemoveEmptyEntries)];
                    if (model is not null && flags.Count > 0)
                        break;
                }
                return (model is null or "" ? arch : model, flags);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return (arch, []);
    }

    /// <summary>
    /// The widest vector instructions libtorch can use here: AVX-512 or AVX2 on x86-64 (its CPU kernels are built for
    /// those), forced lower by ATEN_CPU_CAPABILITY when that is set.
    /// </summary>
    static string IsaOf(HashSet<string> flags)
    {
        var forced = Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY");
        string found = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 when flags.Contains("avx512f") && flags.Contains("avx512bw") => "AVX-512",
            Architecture.X64 when flags.Contains("avx2") && flags.Contains("fma") => "AVX2",
            Architecture.X64 => "x86-64 without AVX2",
            Architecture.Arm64 when flags.Contains("sve") => "arm64 SVE",
            var a => a.ToString().ToLowerInvariant(),
        };
        return string.IsNullOrWhiteSpace(forced) ? found : $"{found}, ATEN_CPU_CAPABILITY={forced}";
    }
}
