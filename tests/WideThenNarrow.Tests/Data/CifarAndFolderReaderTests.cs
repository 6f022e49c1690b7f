using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using WideThenNarrow.Data;

namespace WideThenNarrow.Tests.Data;

public sealed class CifarAndFolderReaderTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("cifar");

    public void Dispose() => TestData.DeleteFolder(_dir);

    /// <summary>CIFAR records: label byte(s) then image k's planes filled with (k + plane) (R), ... so each is recognisable.</summary>
    static byte[] Records(int count, Func<int, byte[]> labels)
    {
        var list = new List<byte>();
        for (int k = 0; k < count; k++)
        {
            list.AddRange(labels(k));
            for (int plane = 0; plane < 3; plane++)
            for (int p = 0; p < 1024; p++)
                list.Add((byte)(k * 10 + plane + (p == 0 ? 100 : 0)));
        }
        return [.. list];
    }

    void WriteCifar10(string dir, int perFile, Func<int, byte[]>? labels = null)
    {
        Directory.CreateDirectory(dir);
        labels ??= k => [(byte)(k % 10)];
        for (int i = 1; i <= 5; i++)
            File.WriteAllBytes(Path.Combine(dir, $"data_batch_{i}.bin"), Records(perFile, labels));
        File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), Records(perFile, labels));
    }

    [Fact]
    public void Cifar10_records_become_planar_images_with_their_labels()
    {
        WriteCifar10(Path.Combine(_dir, "cifar-10", "cifar-10-batches-bin"), perFile: 4);
        File.WriteAllLines(
            Path.Combine(_dir, "cifar-10", "cifar-10-batches-bin", "batches.meta.txt"),
            ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck", ""]
        );
        using var ds = ImageDataset.Load("cifar-10", _dir);
        Assert.Equal(20, ds.Train.Count);
        Assert.Equal(4, ds.Test.Count);
        Assert.Equal(new long[] { 20, 3, 32, 32 }, ds.Train.Images.shape);
        Assert.Equal("truck", ds.Classes[9]);
        // Image 2 of the second file is overall example 6: label 2, green plane value 2*10+1, first pixel marked.
        Assert.Equal(2, ds.Train.Labels[6].item<long>());
        Assert.Equal(21, ds.Train.Images[6, 1, 0, 1].item<byte>());
        Assert.Equal(121, ds.Train.Images[6, 1, 0, 0].item<byte>());
        Assert.Equal(22, ds.Train.Images[6, 2, 31, 31].item<byte>());
    }

    [Fact]
    public void Cifar100_reads_fine_or_coarse_labels()
    {
        var dir = Path.Combine(_dir, "cifar-100");
        Directory.CreateDirectory(dir);
        var bytes = Records(3, k => [(byte)(k + 17), (byte)(k + 90)]);
        File.WriteAllBytes(Path.Combine(dir, "train.bin"), bytes);
        File.WriteAllBytes(Path.Combine(dir, "test.bin"), bytes);
        using var fine = ImageDataset.Load("cifar-100", _dir);
        using var coarse = ImageDataset.Load("cifar-100-coarse", _dir);
        Assert.Equal(new long[] { 90, 91, 92 }, fine.Train.Labels.data<long>().ToArray());
        Assert.Equal(new long[] { 17, 18, 19 }, coarse.Train.Labels.data<long>().ToArray());
        Assert.Equal(100, fine.NumClasses);
        Assert.Equal(20, coarse.NumClasses);
        Assert.Equal(11, fine.Train.Images[1, 1, 5, 5].item<byte>());
    }

    [Fact]
    public void Bad_cifar_record_length_is_refused_by_name()
    {
        var dir = Path.Combine(_dir, "cifar-10");
        WriteCifar10(dir, perFile: 2);
        var victim = Path.Combine(dir, "data_batch_3.bin");
        var bytes = File.ReadAllBytes(victim);
        File.WriteAllBytes(victim, bytes[..^100]);
        var e = Assert.Throws<WtnException>(() => ImageDataset.Load("cifar-10", _dir));
        Assert.Contains(victim, e.Message);
        Assert.Contains("3073-byte", e.Message);
    }

    [Fact]
    public void Cifar10_label_out_of_range_and_missing_batch_are_refused()
    {
        var dir = Path.Combine(_dir, "cifar-10");
        WriteCifar10(dir, perFile: 2, labels: k => [(byte)(k == 1 ? 10 : 0)]);
        Assert.Contains(
            "label 10 of record 1",
            Assert.Throws<WtnException>(() => ImageDataset.Load("cifar-10", _dir)).Message
        );
        WriteCifar10(dir, perFile: 2);
        File.Delete(Path.Combine(dir, "data_batch_4.bin"));
        Assert.Contains(
            "data_batch_4.bin",
            Assert.Throws<WtnException>(() => ImageDataset.Load("cifar-10", _dir)).Message
        );
    }

    [Fact]
    public void Missing_cifar_points_to_its_download_address()
    {
        Assert.Contains(
            DatasetCatalog.CifarAddress,
            Assert.Throws<WtnException>(() => ImageDataset.Load("cifar-10", _dir)).Message
        );
    }

    static void SavePng(string path, int w, int h, Func<int, int, Rgb24> pixel)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var img = new Image<Rgb24>(w, h);
        for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            img[x, y] = pixel(x, y);
        img.SaveAsPng(path);
    }

    [Fact]
    public void Image_folders_give_sorted_classes_chw_pixels_and_labels()
    {
        var root = Path.Combine(_dir, "shapes");
        SavePng(Path.Combine(root, "train", "b_dog", "1.png"), 3, 2, (x, y) => new Rgb24((byte)(x + 10 * y), 50, 200));
        SavePng(Path.Combine(root, "train", "a_cat", "1.png"), 3, 2, (x, y) => new Rgb24(1, 2, 3));
        SavePng(Path.Combine(root, "train", "a_cat", "2.png"), 3, 2, (x, y) => new Rgb24(4, 5, 6));
        File.WriteAllText(Path.Combine(root, "train", "a_cat", "notes.txt"), "not an image");
        SavePng(Path.Combine(root, "test", "b_dog", "1.png"), 3, 2, (x, y) => new Rgb24(7, 8, 9));
        using var ds = ImageDataset.Load(root, _dir);
        Assert.Equal(["a_cat", "b_dog"], ds.Classes);
        Assert.Equal(new long[] { 3, 3, 2, 3 }, ds.Train.Images.shape);
        Assert.Equal(new long[] { 0, 0, 1 }, ds.Train.Labels.data<long>().ToArray());
        Assert.Equal(new long[] { 1 }, ds.Test.Labels.data<long>().ToArray());
        // Dog image, red channel at row 1, column 2: 2 + 10.
        Assert.Equal(12, ds.Train.Images[2, 0, 1, 2].item<byte>());
        Assert.Equal(200, ds.Train.Images[2, 2, 0, 0].item<byte>());
    }

    [Fact]
    public void Gray_image_folders_load_with_one_channel()
    {
        var root = Path.Combine(_dir, "gray");
        foreach (var split in new[] { "train", "test" })
            SavePng(Path.Combine(root, split, "only", "1.png"), 2, 2, (x, y) =>
                new Rgb24((byte)(x * 100), (byte)(x * 100), (byte)(x * 100))
            );
        using var ds = ImageDataset.Load(root, _dir);
        Assert.Equal(new long[] { 1, 1, 2, 2 }, ds.Train.Images.shape);
        Assert.Equal(100, ds.Train.Images[0, 0, 1, 1].item<byte>());
    }

    [Fact]
    public void An_unreadable_image_is_refused_by_name()
    {
        var root = Path.Combine(_dir, "broken");
        SavePng(Path.Combine(root, "train", "a", "1.png"), 2, 2, (x, y) => new Rgb24(1, 1, 1));
        SavePng(Path.Combine(root, "test", "a", "1.png"), 2, 2, (x, y) => new Rgb24(1, 1, 1));
        var bad = Path.Combine(root, "train", "a", "2.png");
        File.WriteAllBytes(bad, [0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
        var e = Assert.Throws<WtnException>(() => ImageDataset.Load(root, _dir));
        Assert.Contains(bad, e.Message);
    }

    [Fact]
    public void Images_of_different_sizes_are_refused_by_name()
    {
        var root = Path.Combine(_dir, "sizes");
        SavePng(Path.Combine(root, "train", "a", "1.png"), 2, 2, (x, y) => new Rgb24(1, 1, 1));
        SavePng(Path.Combine(root, "test", "a", "1.png"), 3, 2, (x, y) => new Rgb24(1, 1, 1));
        var e = Assert.Throws<WtnException>(() => ImageDataset.Load(root, _dir));
        Assert.Contains(Path.Combine(root, "test", "a", "1.png"), e.Message);
        Assert.Contains("data.resize", e.Message);

        // data.resize reads every image at one size: a uniform image stays uniform, the size is the one asked for.
        SavePng(Path.Combine(root, "val", "a", "1.png"), 5, 7, (x, y) => new Rgb24(90, 90, 90));
        using var ds = ImageDataset.Load(root, _dir, resize: 4);
        Assert.Equal(new long[] { 1, 1, 4, 4 }, ds.Train.Images.shape);
        Assert.Equal(new long[] { 1, 1, 4, 4 }, ds.Test.Images.shape);
        Assert.Equal(new long[] { 1, 1, 4, 4 }, ds.Validation!.Images.shape);
        Assert.True(ds.Validation.Images.eq(90).all().item<bool>());
        Assert.True(ds.Train.Images.eq(1).all().item<bool>());
        // Only image folders are resized: the catalog's datasets and IDX folders have one size already.
        var catalog = Assert.Throws<WtnException>(() => ImageDataset.Load("fashion-mnist", _dir, resize: 32));
        Assert.StartsWith("data.resize: fashion-mnist is not a folder of image files", catalog.Message);
    }
}
