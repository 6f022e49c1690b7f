using System.Buffers.Binary;
using System.IO.Compression;
using WideThenNarrow.Data;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("idx");

    public void Dispose() => TestData.DeleteFolder(_dir);

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
        using (x1)
        using (y1)
        using (x2)
        using (y2)
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
        Assert.Contains(
            "beyond",
            Assert.Throws<WtnException>(() => IdxReader.Read(images, IdxReader.ImagesMagic)).Message
        );
    }

    /// <summary>
    /// A gzip bomb: a header promising 1x2x2 values followed by 64 MiB of zeros (64 KB packed). Only what the header
    /// promises is unpacked, plus one byte to see the excess, so it is refused at once.
    /// </summary>
    [Fact]
    public void A_gzip_bomb_is_refused_after_the_promised_bytes()
    {
        var path = Path.Combine(_dir, "bomb-images.gz");
        using (var f = File.Create(path))
        using (var gz = new GZipStream(f, CompressionLevel.Fastest))
        {
            gz.Write(Idx(IdxReader.ImagesMagic, [1, 2, 2], new byte[4]));
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 64; i++)
                gz.Write(zeros);
        }
        Assert.True(new FileInfo(path).Length < 1 << 20);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<WtnException>(() => IdxReader.Read(path, IdxReader.ImagesMagic));
        Assert.Equal($"{path}: bytes beyond the 1x2x2 values the header promises; the file is corrupt", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public void A_header_promising_more_than_two_gigabytes_is_refused_before_reading_on()
    {
        var path = Write("huge-images.gz", Gzip(Idx(IdxReader.ImagesMagic, [60000, 65536, 65536], new byte[16])));
        var e = Assert.Throws<WtnException>(() => IdxReader.Read(path, IdxReader.ImagesMagic));
        Assert.StartsWith(
            $"{path}: the header promises 60000x65536x65536 values, more than the 2,147,483,591 bytes",
            e.Message
        );
    }

    /// <summary>Files without a header (CIFAR's) are unpacked up to the most such a file holds, then refused.</summary>
    [Fact]
    public void Headerless_gzip_input_is_unpacked_only_up_to_its_bound()
    {
        var path = Write("data_batch_1.bin.gz", Gzip(new byte[1 << 20]));
        var e = Assert.Throws<WtnException>(() => DataFiles.ReadAllMaybeGzipped(path, 100_000));
        Assert.Equal(
            $"{path}: unpacks to more than 100,000 bytes, more than such a file holds; the file is corrupt or not what it is named",
            e.Message
        );
        Assert.Equal(1 << 20, DataFiles.ReadAllMaybeGzipped(path, 1 << 20).Length);
    }

    [Fact]
    public void Only_regular_files_are_read()
    {
        var e = Assert.Throws<WtnException>(() => IdxReader.Read("/dev/zero", IdxReader.ImagesMagic));
        Assert.Equal("/dev/zero is a character device, not a regular file; give a file", e.Message);
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
        for (int d = 0; d < dims.Length; d++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        values.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    internal static byte[] Gzip(byte[] bytes)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest))
            gz.Write(bytes);
        return ms.ToArray();
    }
}
