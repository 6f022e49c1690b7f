using System.Buffers.Binary;
using System.IO.Compression;
using WideThenNarrow.Data;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("idx");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Fashion_mnist_has_its_published_sizes_classes_and_statistics()
    {
        var ds = TestData.FashionMnist;
        Assert.Equal(60000, ds.Train.Count);
        Assert.Equal(10000, ds.Test.Count);
        Assert.Equal(10, ds.NumClasses);
        Assert.Equal(new long[] { 60000, 1, 28, 28 }, ds.Train.Images.shape);
        Assert.Equal(new long[] { 10000, 1, 28, 28 }, ds.Test.Images.shape);
        Assert.Equal(ScalarType.Byte, ds.Train.Images.dtype);
        Assert.Equal(ScalarType.Int64, ds.Train.Labels.dtype);
        // Fashion-MNIST is balanced: 6000 / 1000 per class.
        Assert.All(ds.Train.ClassCounts(10), c => Assert.Equal(6000, c));
        Assert.All(ds.Test.ClassCounts(10), c => Assert.Equal(1000, c));
        // The widely quoted normalisation constants are 0.2860 / 0.3530.
        Assert.InRange(ds.Mean[0], 0.2855f, 0.2865f);
        Assert.InRange(ds.Std[0], 0.3525f, 0.3535f);
        using var scope = NewDisposeScope();
        Assert.Equal(ds.Mean[0], ds.Train.Images.to(ScalarType.Float64).div(255).mean().item<double>(), 4);
    }

    [Fact]
    public void Raw_and_gzipped_files_read_the_same()
    {
        var images = Enumerable.Range(0, 3 * 2 * 2).Select(i => (byte)(i * 7)).ToArray();
        var labels = new byte[] { 2, 0, 1 };
        var rawImages = Write("img", Idx(IdxReader.ImagesMagic, [3, 2, 2], images));
        var rawLabels = Write("lab", Idx(IdxReader.LabelsMagic, [3], labels));
        var gzImages = Write("img.gz", Gzip(Idx(IdxReader.ImagesMagic, [3, 2, 2], images)));
        var gzLabels = Write("lab.gz", Gzip(Idx(IdxReader.LabelsMagic, [3], labels)));
        var (x1, y1) = IdxReader.ReadPair(rawImages, rawLabels, 3);
        var (x2, y2) = IdxReader.ReadPair(gzImages, gzLabels, 3);
        using (x1) using (y1) using (x2) using (y2)
        {
            Assert.Equal(new long[] { 3, 1, 2, 2 }, x1.shape);
            Assert.Equal(images, x1.data<byte>().ToArray());
            Assert.Equal(new long[] { 2, 0, 1 }, y1.data<long>().ToArray());
            Assert.True(x1.eq(x2).all().item<bool>());
            Assert.True(y1.eq(y2).all().item<bool>());
        }
    }

    [Fact]
    public void Empty_file_is_refused_by_name()
    {
        var images = Write("empty-images", []);
        var labels = Write("labels", Idx(IdxReader.LabelsMagic, [1], [0]));
        var e = Assert.Throws<WtnException>(() => IdxReader.ReadPair(images, labels, 10));
        Assert.Contains(images, e.Message);
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void Truncated_raw_file_is_refused_by_name()
    {
        var full = Idx(IdxReader.ImagesMagic, [4, 3, 3], new byte[36]);
        var images = Write("trunc-images", full[..^5]);
        var e = Assert.Throws<WtnException>(() => IdxReader.Read(images, IdxReader.ImagesMagic));
        Assert.Contains(images, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Truncated_copy_of_the_real_gzipped_file_is_refused_by_name()
    {
        var real = Path.Combine(TestData.Ensure("fashion-mnist"), "t10k-images-idx3-ubyte.gz");
        var bytes = File.ReadAllBytes(real);
        var copy = Write("t10k-images-idx3-ubyte.gz", bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<WtnException>(() => IdxReader.Read(copy, IdxReader.ImagesMagic));
        Assert.Contains(copy, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Trailing_bytes_are_refused()
    {
        var images = Write("long-images", [.. Idx(IdxReader.ImagesMagic, [1, 2, 2], new byte[4]), 9, 9]);
        Assert.Contains("beyond", Assert.Throws<WtnException>(() => IdxReader.Read(images, IdxReader.ImagesMagic)).Message);
    }

    [Fact]
    public void Wrong_magic_is_refused_by_name()
    {
        // A label file given where images are expected.
        var labels = Write("labels-as-images", Idx(IdxReader.LabelsMagic, [2], [0, 1]));
        var e = Assert.Throws<WtnException>(() => IdxReader.ReadPair(labels, labels, 10));
        Assert.Contains(labels, e.Message);
        Assert.Contains("magic", e.Message);
    }

    [Fact]
    public void Label_out_of_range_is_refused_with_its_index()
    {
        var images = Write("img", Idx(IdxReader.ImagesMagic, [3, 1, 1], [1, 2, 3]));
        var labels = Write("lab", Idx(IdxReader.LabelsMagic, [3], [0, 10, 1]));
        var e = Assert.Throws<WtnException>(() => IdxReader.ReadPair(images, labels, 10));
        Assert.Contains(labels, e.Message);
        Assert.Contains("label 10 at index 1", e.Message);
    }

    [Fact]
    public void Image_and_label_count_mismatch_is_refused()
    {
        var images = Write("img", Idx(IdxReader.ImagesMagic, [3, 1, 1], [1, 2, 3]));
        var labels = Write("lab", Idx(IdxReader.LabelsMagic, [2], [0, 1]));
        var e = Assert.Throws<WtnException>(() => IdxReader.ReadPair(images, labels, 10));
        Assert.Contains("2 labels for the 3 images", e.Message);
    }

    [Fact]
    public void Missing_fashion_mnist_folder_says_how_to_fetch_it()
    {
        var e = Assert.Throws<WtnException>(() => ImageDataset.Load("fashion-mnist", _dir));
        Assert.Contains("wtn data fetch fashion-mnist", e.Message);
    }

    string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    internal static byte[] Idx(int magic, int[] dims, byte[] values)
    {
        var bytes = new byte[4 + 4 * dims.Length + values.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        values.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    internal static byte[] Gzip(byte[] bytes)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(bytes);
        return ms.ToArray();
    }
}
