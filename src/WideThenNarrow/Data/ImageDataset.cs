using static TorchSharp.torch;

namespace WideThenNarrow.Data;

/// <summary>One split of an image dataset, held in memory once: uint8 images (N,C,H,W) and int64 labels (N), on the CPU.</summary>
public sealed class ImageSplit : IDisposable
{
    public ImageSplit(Tensor images, Tensor labels)
    {
        if (images.dtype != ScalarType.Byte || images.dim() != 4)
            throw new ArgumentException(
                $"images must be uint8 (N,C,H,W), got {images.dtype} with shape [{string.Join(",", images.shape)}]"
            );
        if (labels.dtype != ScalarType.Int64 || labels.dim() != 1 || labels.shape[0] != images.shape[0])
            throw new ArgumentException("labels must be int64 (N) with one label per image");
        Images = images;
        Labels = labels;
    }

    /// <summary>uint8 (N,C,H,W).</summary>
    public Tensor Images { get; }

    /// <summary>int64 (N).</summary>
    public Tensor Labels { get; }
    public int Count => (int)Images.shape[0];
    public int Channels => (int)Images.shape[1];
    public int Height => (int)Images.shape[2];
    public int Width => (int)Images.shape[3];

    /// <summary>Examples per class.</summary>
    public int[] ClassCounts(int classes)
    {
        var counts = new int[classes];
        foreach (var l in Labels.data<long>())
            counts[l]++;
        return counts;
    }

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// An image classification dataset held in memory as bytes, with the per-channel mean and standard deviation
/// of the train split (in [0,1] pixel units) used to normalise batches.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    public static readonly string[] FashionMnistClasses =
    [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];

    public ImageDataset(
        string name,
        ImageSplit train,
        ImageSplit test,
        IReadOnlyList<string> classes,
        ImageSplit? validation = null
    )
    {
        foreach (var (what, other) in new[] { ("test", test), ("validation", validation) })
            if (
                other is not null
                && (train.Channels != other.Channels || train.Height != other.Height || train.Width != other.Width)
            )
                throw new WtnException(
                    $"{name}: train images are {train.Channels}x{train.Height}x{train.Width} but {what} images are {other.Channels}x{other.Height}x{other.Width}"
                );
        Name = name;
        Train = train;
        Test = test;
        Validation = validation;
        Classes = classes;
        (Mean, Std) = ChannelStatistics(train);
    }

    public string Name { get; }

    /// <summary>The absolute folder of a dataset read by path (IDX files, image folders): what an export records so the data is found from anywhere.</summary>
    public string? Folder { get; init; }
    public ImageSplit Train { get; }
    public ImageSplit Test { get; }

    /// <summary>A validation split the dataset ships (an image folder's val/); null when it is carved from <see cref="Train"/>.</summary>
    public ImageSplit? Validation { get; }
    public IReadOnlyList<string> Classes { get; }
    public int NumClasses => Classes.Count;

    /// <summary>Per-channel mean of the train split's pixels, in [0,1].</summary>
    public float[] Mean { get; }

    /// <summary>Per-channel (population) standard deviation of the train split's pixels, in [0,1].</summary>
    public float[] Std { get; }
    public int Channels => Train.Channels;
    public int Height => Train.Height;
    public int Width => Train.Width;

    public ImageSplit Split(string split) =>
        split.ToLowerInvariant() switch
        {
            "train" => Train,
            "test" => Test,
            "val" when Validation is not null => Validation,
            _ => throw new WtnException(
                $"unknown split '{split}', expected train or test{(Validation is null ? "" : " or val")}"
            ),
        };

    /// <summary>Names the image datasets <see cref="Load"/> knows besides a folder path.</summary>
    public static IReadOnlyList<string> KnownNames { get; } =
    ["fashion-mnist", "cifar-10", "cifar-100", "cifar-100-coarse"];

    /// <summary>
    /// Loads <paramref name="nameOrFolder"/>: fashion-mnist, cifar-10, cifar-100 (fine labels), cifar-100-coarse
    /// from <paramref name="dataDir"/>; or by path a folder of IDX files (<see cref="IdxFolder"/>), or a folder with
    /// train/ and test/ holding one subfolder of images per class.
    /// </summary>
    public static ImageDataset Load(string nameOrFolder, string dataDir, int resize = 0)
    {
        if (resize > 0 && !IsImageFolder(nameOrFolder))
            throw new WtnException(
                $"data.resize: {nameOrFolder} is not a folder of image files; resizing applies to image folders (train/, test/, optional val/)"
            );
        switch (nameOrFolder.ToLowerInvariant())
        {
            case "fashion-mnist":
                return FashionMnist(Path.Combine(dataDir, "fashion-mnist"));
            case "cifar-10":
                return CifarReader.Cifar10(Path.Combine(dataDir, "cifar-10"));
            case "cifar-100":
                return CifarReader.Cifar100(Path.Combine(dataDir, "cifar-100"), coarse: false);
            case "cifar-100-coarse":
                return CifarReader.Cifar100(Path.Combine(dataDir, "cifar-100"), coarse: true);
        }
        if (IdxFolder.Is(nameOrFolder))
            return IdxFolder.Read(nameOrFolder);
        if (Directory.Exists(nameOrFolder))
            return ImageFolderReader.Read(nameOrFolder, resize);
        throw new WtnException(
            $"unknown image dataset '{nameOrFolder}': expected {string.Join(", ", KnownNames)}, a folder of IDX files (train-images-idx3-ubyte[.gz] and the three others), or a folder with train/ and test/ class subfolders"
        );
    }

    /// <summary>Whether <paramref name="nameOrFolder"/> names a folder of image files (train/, test/), the kind <c>data.resize</c> applies to.</summary>
    public static bool IsImageFolder(string nameOrFolder) =>
        !KnownNames.Contains(nameOrFolder.ToLowerInvariant())
        && !IdxFolder.Is(nameOrFolder)
        && Directory.Exists(nameOrFolder);

    /// <summary>Fashion-MNIST from its four IDX files (gzipped or not) in <paramref name="folder"/>.</summary>
    public static ImageDataset FashionMnist(string folder)
    {
        if (!Directory.Exists(folder))
            throw new WtnException(
                $"{folder}: Fashion-MNIST is not there; run `wtn data fetch fashion-mnist` (or download it from {DatasetCatalog.FashionMnist.OriginalAddress})"
            );
        string File(string stem)
        {
            var gz = Path.Combine(folder, stem + ".gz");
            return System.IO.File.Exists(gz) ? gz : Path.Combine(folder, stem);
        }
        var (trX, trY) = IdxReader.ReadPair(
            File("train-images-idx3-ubyte"),
            File("train-labels-idx1-ubyte"),
            FashionMnistClasses.Length
        );
        var (teX, teY) = IdxReader.ReadPair(
            File("t10k-images-idx3-ubyte"),
            File("t10k-labels-idx1-ubyte"),
            FashionMnistClasses.Length
        );
        return new ImageDataset(
            "fashion-mnist",
            new ImageSplit(trX, trY),
            new ImageSplit(teX, teY),
            FashionMnistClasses
        );
    }

    /// <summary>Exact per-channel mean and std from a histogram of byte values (no float copy of the images).</summary>
    static (float[] Mean, float[] Std) ChannelStatistics(ImageSplit split)
    {
        int c = split.Channels;
        long plane = (long)split.Height * split.Width;
        var histogram = new long[c, 256];
        var images = split.Images.contiguous();
        try
        {
            var bytes = images.bytes;
            for (long start = 0; start < bytes.Length; )
            for (int ch = 0; ch < c; ch++, start += plane)
                foreach (var v in bytes.Slice((int)start, (int)plane))
                    histogram[ch, v]++;
        }
        finally
        {
            if (!ReferenceEquals(images, split.Images))
                images.Dispose();
        }
        var mean = new float[c];
        var std = new float[c];
        for (int ch = 0; ch < c; ch++)
        {
            double count = 0,
                sum = 0,
                sumSq = 0;
            for (int v = 0; v < 256; v++)
            {
                double k = histogram[ch, v],
                    x = v / 255.0;
                count += k;
                sum += k * x;
                sumSq += k * x * x;
            }
            double m = sum / count;
            mean[ch] = (float)m;
            std[ch] = (float)Math.Sqrt(Math.Max(sumSq / count - m * m, 0));
        }
        return (mean, std);
    }

    public void Dispose()
    {
        Train.Dispose();
        Test.Dispose();
        Validation?.Dispose();
    }
}
