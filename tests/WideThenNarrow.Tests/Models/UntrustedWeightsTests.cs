using System.IO.Compression;
using System.Text;
using System.Text.Json;
using WideThenNarrow.Models;

namespace WideThenNarrow.Tests.Models;

/// <summary>
/// Hostile or damaged weights files are refused by name from their header or archive directory, before a tensor
/// is allocated: every case here would otherwise read gigabytes or reinterpret bytes silently.
/// </summary>
public sealed class UntrustedWeightsTests : IDisposable
{
    readonly string dir = TestData.NewTempFolder("untrusted-weights");

    public void Dispose() => TestData.DeleteFolder(dir);

    static StagedModel SmallMlp() =>
        ModelFactory.Create(
            new ModelConfig
            {
                Name = "mlp",
                InputDim = 4,
                Width = 8,
                Depth = 2,
                Classes = 3,
            }
        );

    /// <summary>A safetensors file with this header and a data section of <paramref name="dataBytes"/> (sparse: holes read as zeros).</summary>
    string Safetensors(string name, object header, long dataBytes)
    {
        var path = Path.Combine(dir, name);
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((long)json.Length));
        f.Write(json);
        f.SetLength(8 + json.Length + dataBytes);
        return path;
    }

    static object Entry(string dtype, long[] shape, long begin, long end) =>
        new Dictionary<string, object>
        {
            ["dtype"] = dtype,
            ["shape"] = shape,
            ["data_offsets"] = new[] { begin, end },
        };

    /// <summary>The small MLP's own state_dict as a header, every tensor F32 and laid out one after another.</summary>
    static (Dictionary<string, object> Header, long Bytes) OwnHeader(StagedModel model)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (key, t) in model.state_dict())
        {
            long bytes = t.numel() * t.ElementSize;
            header[key] = Entry(
                t.dtype == TorchSharp.torch.ScalarType.Int64 ? "I64" : "F32",
                t.shape,
                offset,
                offset + bytes
            );
            offset += bytes;
        }
        return (header, offset);
    }

    [Fact]
    public void A_dtype_other_than_the_parameters_is_refused_not_reinterpreted()
    {
        using var model = SmallMlp();
        var (header, bytes) = OwnHeader(model);
        var key = model.state_dict().Keys.First(k => k.EndsWith("weight", StringComparison.Ordinal));
        var e0 = (Dictionary<string, object>)header[key];
        e0["dtype"] = "I32"; // same 4 bytes per element: only the dtype check can see it
        var path = Safetensors("i32.safetensors", header, bytes);
        var e = Assert.Throws<WtnException>(() => Weights.Load(model, path));
        Assert.Contains(path, e.Message);
        Assert.Contains($"1 dtype mismatch(es), first {key} is Int32 in the file, Float32 in the model", e.Message);
    }

    [Fact]
    public void The_well_formed_header_of_the_same_layout_loads()
    {
        using var model = SmallMlp();
        var (header, bytes) = OwnHeader(model);
        Weights.Load(model, Safetensors("ok.safetensors", header, bytes)); // zeros
        Assert.Equal(0, model.parameters().First().abs().sum().item<float>());
    }

    [Theory]
    [InlineData(-4L, 60L, "has data_offsets [-4, 60] outside the")]
    [InlineData(0L, 1000L, "has data_offsets [0, 1000] outside the 64-byte data section")]
    [InlineData(8L, 4L, "has data_offsets [8, 4] outside the")]
    [InlineData(0L, 60L, "has 60 bytes for shape 4x4 F32, which takes 64")]
    public void Offsets_outside_the_data_or_not_dtype_times_shape_are_refused(long begin, long end, string expected)
    {
        var path = Safetensors(
            "bad.safetensors",
            new Dictionary<string, object> { ["w"] = Entry("F32", [4, 4], begin, end) },
            64
        );
        var e = Assert.Throws<WtnException>(() => Weights.Read(path));
        Assert.StartsWith($"weights file {path} is not a valid safetensors file: tensor 'w' ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Overlapping_ranges_are_refused()
    {
        var path = Safetensors(
            "overlap.safetensors",
            new Dictionary<string, object>
            {
                ["a"] = Entry("F32", [4, 4], 0, 64),
                ["b"] = Entry("F32", [4, 4], 32, 96),
            },
            96
        );
        var e = Assert.Throws<WtnException>(() => Weights.Read(path));
        Assert.Contains("tensors 'a' and 'b' overlap in the data", e.Message);
    }

    /// <summary>
    /// 4 KB on disk, 1 GiB long: a thousand entries alias the same 1 GiB range, which would allocate a terabyte. The
    /// header alone refuses it, so this takes milliseconds.
    /// </summary>
    [Fact]
    public void A_sparse_file_whose_entries_alias_one_range_is_refused_from_the_header()
    {
        const long GiB = 1L << 30;
        var header = Enumerable.Range(0, 1000).ToDictionary(i => $"t{i}", _ => Entry("F32", [GiB / 4], 0, GiB));
        var path = Safetensors("alias.safetensors", header, GiB);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<WtnException>(() => Weights.Read(path));
        Assert.Contains("overlap in the data", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public void Tensors_the_model_does_not_have_are_refused_before_they_are_read()
    {
        // Well formed, 1 GiB of sparse data: shapes are compared with the model's before anything is read.
        using var model = SmallMlp();
        var path = Safetensors(
            "big.safetensors",
            new Dictionary<string, object> { ["huge"] = Entry("F32", [1L << 28], 0, 1L << 30) },
            1L << 30
        );
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<WtnException>(() => Weights.Load(model, path));
        Assert.Contains($"weights file {path} does not fit model", e.Message);
        Assert.Contains("unexpected key(s), first 'huge'", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Theory]
    [InlineData(1L << 40, "header length 1099511627776 does not fit")]
    [InlineData(-1L, "header length -1 does not fit")]
    public void A_header_length_beyond_the_file_is_refused(long length, string expected)
    {
        var path = Path.Combine(dir, "len.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(length), .. "{}"u8]);
        var e = Assert.Throws<WtnException>(() => Weights.Read(path));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Unknown_dtypes_negative_dimensions_and_duplicate_keys_are_refused()
    {
        var p1 = Safetensors(
            "dt.safetensors",
            new Dictionary<string, object> { ["w"] = Entry("F8_E4M3", [2], 0, 2) },
            2
        );
        Assert.Contains(
            "tensor 'w' has unsupported dtype F8_E4M3",
            Assert.Throws<WtnException>(() => Weights.Read(p1)).Message
        );
        var p2 = Safetensors(
            "neg.safetensors",
            new Dictionary<string, object> { ["w"] = Entry("F32", [-1, -4], 0, 16) },
            16
        );
        Assert.Contains(
            "tensor 'w' has a negative dimension",
            Assert.Throws<WtnException>(() => Weights.Read(p2)).Message
        );
        var p3 = Path.Combine(dir, "dup.safetensors");
        var json =
            """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"""u8.ToArray();
        File.WriteAllBytes(p3, [.. BitConverter.GetBytes((long)json.Length), .. json, .. new byte[8]]);
        Assert.Contains("tensor 'w' appears twice", Assert.Throws<WtnException>(() => Weights.Read(p3)).Message);
    }

    /// <summary>A torch.save archive whose entries unpack to far more than the model holds: refused from the zip directory.</summary>
    [Fact]
    public void A_pth_archive_that_unpacks_beyond_the_model_is_refused_before_unpickling()
    {
        using var model = SmallMlp();
        var path = Path.Combine(dir, "bomb.pth");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        using (var s = zip.CreateEntry("archive/data/0", CompressionLevel.Fastest).Open())
        {
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 80; i++)
                s.Write(zeros);
        }
        Assert.True(new FileInfo(path).Length < 1 << 20);
        var e = Assert.Throws<WtnException>(() => Weights.Load(model, path));
        Assert.Contains($"weights file {path} unpacks to 83,886,080 bytes, far more than the", e.Message);
    }

    [Fact]
    public void Only_regular_files_are_opened()
    {
        using var model = SmallMlp();
        var e = Assert.Throws<WtnException>(() => Weights.Load(model, "/dev/zero"));
        Assert.Equal("weights file /dev/zero is a character device, not a regular file; give a file", e.Message);
        var folder = Path.Combine(dir, "w.safetensors");
        Directory.CreateDirectory(folder);
        Assert.Contains(
            "is a folder, not a file",
            Assert.Throws<WtnException>(() => Weights.Load(model, folder)).Message
        );
    }
}
