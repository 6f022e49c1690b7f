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
    static readonly Lazy<ImageDataset> SharedFashionMnist = new(() => ImageDataset.FashionMnist(Ensure("fashion-mnist")));

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

    /// <summary>A fresh empty folder under the system temp folder; the caller deletes it.</summary>
    public static string NewTempFolder(string prefix)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"wtn-{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "WideThenNarrow.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no WideThenNarrow.sln above {AppContext.BaseDirectory}");
    }
}
