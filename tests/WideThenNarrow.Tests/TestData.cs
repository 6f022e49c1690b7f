using WideThenNarrow.Data;
using WideThenNarrow.Runtime;

namespace WideThenNarrow.Tests;

/// <summary>
/// Real datasets for tests: the repository's data folder (or <c>$WTN_DATA</c>), fetched through the library on
/// first use so plain <c>dotnet test</c> works on a fresh machine. Safe to call from test classes running in parallel.
/// </summary>
public static class TestData
{
    static readonly object Gate = new();
    static readonly Lazy<string> Root = new(FindRepoRoot);
    static readonly Lazy<ImageDataset> SharedFashionMnist = new(() =>
        ImageDataset.FashionMnist(Ensure("fashion-mnist"))
    );

    /// <summary>The folder holding WideThenNarrow.sln, found by walking up from the test assembly.</summary>
    public static string RepoRoot => Root.Value;

    /// <summary><c>$WTN_DATA</c> when set, else &lt;repo&gt;/data.</summary>
    public static string DataDir
    {
        get
        {
            var env = Environment.GetEnvironmentVariable(WtnPaths.DataEnvironmentVariable);
            return string.IsNullOrWhiteSpace(env) ? Path.Combine(RepoRoot, "data") : Path.GetFullPath(env);
        }
    }

    /// <summary>Fetches <paramref name="name"/> (a catalog dataset) if it is missing and returns its folder.</summary>
    public static string Ensure(string name)
    {
        lock (Gate)
        {
            return new DatasetFetcher(DataDir).Fetch(DatasetCatalog.Get(name)).Folder;
        }
    }

    /// <summary>
    /// Fashion-MNIST loaded once per test run and shared (about 55 MB of bytes). Read it, never dispose it;
    /// build your own <see cref="ImageBatchSource"/> over it.
    /// </summary>
    public static ImageDataset FashionMnist => SharedFashionMnist.Value;

    /// <summary>
    /// Removes a test's temp folder: first kills any process still running from it (a <c>wtn</c> process, or a stage
    /// process it started, whose command line names the folder), as a failed assertion can leave them behind; then
    /// deletes it, retrying while those processes' last writes land. Never throws: a cleanup error must not hide the
    /// test's own failure, and a folder left in /tmp harms nothing.
    /// </summary>
    public static void DeleteFolder(string dir)
    {
        KillProcessesNaming(dir);
        for (var attempt = 0; attempt < 10; attempt++)
        {
            try
            {
                if (Directory.Exists(dir))
                    Directory.Delete(dir, true);
                return;
            }
            catch (IOException)
            {
                Thread.Sleep(200);
            }
            catch (UnauthorizedAccessException)
            {
                Thread.Sleep(200);
            }
        }
    }

    /// <summary>Kills every process of this user, other than this one, whose command line contains <paramref name="text"/>.</summary>
    public static void KillProcessesNaming(string text)
    {
        if (!OperatingSystem.IsLinux())
            return;
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out var pid) || pid == Environment.ProcessId)
                continue;
            string cmdline;
            try
            {
                cmdline = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ');
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }
            if (!cmdline.Contains(text, StringComparison.Ordinal))
                continue;
            try
            {
                using var p = System.Diagnostics.Process.GetProcessById(pid);
                p.Kill(entireProcessTree: true);
                p.WaitForExit(10_000);
            }
            catch (ArgumentException) { } // already gone
            catch (InvalidOperationException) { }
            catch (System.ComponentModel.Win32Exception) { }
        }
    }

    /// <summary>A fresh empty folder under the system temp folder; the caller deletes it.</summary>
    public static string NewTempFolder(string prefix)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"wtn-{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>
    /// Runs one of the repository's bash scripts (<paramref name="script"/> relative to its root) with
    /// <paramref name="args"/> and extra environment variables; its exit code and its output, stdout then stderr.
    /// </summary>
    public static (int Code, string Output) RunScript(
        string script,
        IEnumerable<string> args,
        IReadOnlyDictionary<string, string> environment
    )
    {
        var psi = new System.Diagnostics.ProcessStartInfo("bash", [Path.Combine(RepoRoot, script), .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in environment)
            psi.Environment[key] = value;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output.Result + error);
    }

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "WideThenNarrow.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"no WideThenNarrow.sln above {AppContext.BaseDirectory}");
    }
}
