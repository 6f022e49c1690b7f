using System.Text.Json;
using WideThenNarrow.Tests.Cli;

namespace WideThenNarrow.Tests.Data;

public sealed class DataCommandTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("datacmd");

    public void Dispose() => TestData.DeleteFolder(_dir);

    [Fact]
    public void List_json_reports_fashion_mnist_splits_classes_and_shape()
    {
        var source = TestData.Ensure("fashion-mnist");
        var data = Path.Combine(_dir, "data");
        CopyFolder(source, Path.Combine(data, "fashion-mnist"));
        var (code, stdout, stderr) = WtnProcess.Run($"data list --json --data-dir {data}");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var fm = doc.RootElement.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "fashion-mnist");
        Assert.True(fm.GetProperty("present").GetBoolean());
        var splits = fm.GetProperty("splits")
            .EnumerateArray()
            .ToDictionary(s => s.GetProperty("name").GetString()!, s => s.GetProperty("examples").GetInt32());
        Assert.Equal(60000, splits["train"]);
        Assert.Equal(10000, splits["test"]);
        Assert.Equal(10, fm.GetProperty("classes").GetArrayLength());
        Assert.Equal("1x28x28", fm.GetProperty("shape").GetString());
        Assert.True(fm.GetProperty("sizeOnDisk").GetInt64() > 30_000_000);
        var imdb = doc.RootElement.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "imdb");
        Assert.False(imdb.GetProperty("present").GetBoolean());
    }

    [Fact]
    public void List_refuses_a_truncated_fashion_mnist_file_naming_it()
    {
        var source = TestData.Ensure("fashion-mnist");
        var data = Path.Combine(_dir, "data");
        var folder = Path.Combine(data, "fashion-mnist");
        CopyFolder(source, folder);
        var victim = Path.Combine(folder, "train-labels-idx1-ubyte.gz");
        var bytes = File.ReadAllBytes(victim);
        File.WriteAllBytes(victim, bytes[..(bytes.Length - 1000)]);
        var (code, _, stderr) = WtnProcess.Run($"data list --data-dir {data}");
        Assert.Equal(2, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("wtn: error: ", lines[0]);
        Assert.Contains(victim, lines[0]);
    }

    [Fact]
    public void Fetch_of_an_unknown_dataset_names_the_choices()
    {
        var (code, _, stderr) = WtnProcess.Run($"data fetch mnist --data-dir {_dir}");
        Assert.Equal(2, code);
        Assert.Contains("fashion-mnist, imdb, sotu, brown, all", stderr);
    }

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }
}
