using static TorchSharp.torch;

namespace WideThenNarrow.Data;

/// <summary>
/// The binary versions of CIFAR-10 and CIFAR-100 (www.cs.toronto.edu/~kriz/cifar.html). Each record is the
/// label byte(s) then 3072 bytes of a 32x32 image, red plane then green then blue, which is already (C,H,W).
/// CIFAR-10: 1 label byte, files data_batch_1..5.bin and test_batch.bin. CIFAR-100: coarse then fine label
/// byte, files train.bin and test.bin.
/// </summary>
public static class CifarReader
{
    public const int ImageBytes = 3 * 32 * 32;

    public static readonly string[] Cifar10Classes =
    [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];

    /// <summary>CIFAR-10 from <paramref name="folder"/> or its cifar-10-batches-bin subfolder (as the tarball extracts).</summary>
    public static ImageDataset Cifar10(string folder)
    {
        var dir = Locate(folder, "cifar-10-batches-bin", "test_batch.bin", "cifar-10");
        var train = ReadRecords(
            [.. Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin"))],
            labelBytes: 1,
            labelIndex: 0,
            classes: 10
        );
        var test = ReadRecords([Path.Combine(dir, "test_batch.bin")], labelBytes: 1, labelIndex: 0, classes: 10);
        var names = ClassNames(Path.Combine(dir, "batches.meta.txt"), 10) ?? Cifar10Classes;
        return new ImageDataset("cifar-10", train, test, names);
    }

    /// <summary>CIFAR-100 with its 100 fine labels, or its 20 coarse superclasses when <paramref name="coarse"/>.</summary>
    public static ImageDataset Cifar100(string folder, bool coarse)
    {
        var dir = Locate(folder, "cifar-100-binary", "test.bin", "cifar-100");
        int classes = coarse ? 20 : 100;
        int labelIndex = coarse ? 0 : 1;
        var train = ReadRecords([Path.Combine(dir, "train.bin")], labelBytes: 2, labelIndex, classes);
        var test = ReadRecords([Path.Combine(dir, "test.bin")], labelBytes: 2, labelIndex, classes);
        var names = ClassNames(Path.Combine(dir, coarse ? "coarse_label_names.txt" : "fine_label_names.txt"), classes)
            ?? [.. Enumerable.Range(0, classes).Select(i => $"class_{i}")];
        return new ImageDataset(coarse ? "cifar-100-coarse" : "cifar-100", train, test, names);
    }

    /// <summary>CIFAR's largest file holds 50,000 records; more is a corrupt file or a gzip bomb.</summary>
    const int MaxRecordsPerFile = 60_000;

    /// <summary>
    /// Reads CIFAR records from <paramref name="files"/> (concatenated in order) into one split, checking that
    /// each file is a whole number of records and every label is below <paramref name="classes"/>.
    /// </summary>
    public static ImageSplit ReadRecords(IReadOnlyList<string> files, int labelBytes, int labelIndex, int classes)
    {
        int record = labelBytes + ImageBytes;
        var all = new List<byte[]>();
        foreach (var path in files)
        {
            var bytes = DataFiles.ReadAllMaybeGzipped(path, (long)MaxRecordsPerFile * record);
            if (bytes.Length == 0)
                throw new WtnException($"{path}: the file is empty");
            if (bytes.Length % record != 0)
                throw new WtnException(
                    $"{path}: {bytes.Length} bytes is not a whole number of {record}-byte CIFAR records ({bytes.Length / record} records and {bytes.Length % record} bytes left over); the file is truncated or not a CIFAR{(labelBytes == 1 ? "-10" : "-100")} binary file"
                );
            for (long i = 0; i < bytes.Length / record; i++)
            {
                int label = bytes[i * record + labelIndex];
                if (label >= classes)
                    throw new WtnException(
                        $"{path}: label {label} of record {i} is out of range for {classes} classes; is this a CIFAR{(labelBytes == 1 ? "-10" : "-100")} file?"
                    );
            }
            all.Add(bytes);
        }
        var joined = all.Count == 1 ? all[0] : [.. all.SelectMany(b => b)];
        long n = joined.Length / record;
        using var scope = NewDisposeScope();
        var table = tensor(joined, [n, record], ScalarType.Byte);
        var images = table.narrow(1, labelBytes, ImageBytes).reshape(n, 3, 32, 32).contiguous();
        var labels = table.select(1, labelIndex).to(ScalarType.Int64);
        return new ImageSplit(images.DetachFromDisposeScope(), labels.DetachFromDisposeScope());
    }

    static string Locate(string folder, string tarballFolder, string probe, string name)
    {
        if (File.Exists(Path.Combine(folder, probe)))
            return folder;
        var inner = Path.Combine(folder, tarballFolder);
        if (File.Exists(Path.Combine(inner, probe)))
            return inner;
        throw new WtnException(
            $"{folder}: no {name} binary files ({probe}) there or in {tarballFolder}/; download the binary version from {DatasetCatalog.CifarAddress} and extract it there"
        );
    }

    static string[]? ClassNames(string path, int classes)
    {
        if (!File.Exists(path))
            return null;
        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return names.Length == classes
            ? names
            : throw new WtnException($"{path}: {names.Length} class names where {classes} are expected");
    }
}
