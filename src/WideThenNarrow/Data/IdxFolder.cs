namespace WideThenNarrow.Data;

/// <summary>
/// Any dataset in MNIST's layout, by path: a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or gzipped (MNIST, KMNIST, Fashion-MNIST, EMNIST's
/// splits). Class names come from an optional classes.txt, one per line in label order; without it they are the
/// label numbers 0..K-1, K one more than the largest training label. Strict as <see cref="IdxReader"/>.
/// </summary>
public static class IdxFolder
{
    public const string ClassesFile = "classes.txt";

    static readonly string[] Stems =
    [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];

    /// <summary>True when <paramref name="folder"/> holds any of the four IDX files (then all four are required).</summary>
    public static bool Is(string folder) => Directory.Exists(folder) && Stems.Any(s => Find(folder, s) is not null);

    public static ImageDataset Read(string folder)
    {
        var files = Stems
            .Select(s =>
                Find(folder, s)
                ?? throw new WtnException(
                    $"{folder}: an IDX dataset needs {s} (or {s}.gz) beside the others: {string.Join(", ", Stems)}"
                )
            )
            .ToArray();
        var classesPath = Path.Combine(folder, ClassesFile);
        IReadOnlyList<string> classes;
        if (File.Exists(classesPath))
        {
            classes = File.ReadAllLines(classesPath).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            if (classes.Count == 0)
                throw new WtnException(
                    $"{classesPath}: no class names; write one per line in label order, or remove the file"
                );
        }
        else
        {
            var labels = IdxReader.Read(files[1], IdxReader.LabelsMagic);
            int largest = labels.Bytes.AsSpan(labels.Offset).ToArray().Max();
            classes =
            [
                .. Enumerable
                    .Range(0, largest + 1)
                    .Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ];
        }
        var (trX, trY) = IdxReader.ReadPair(files[0], files[1], classes.Count);
        var (teX, teY) = IdxReader.ReadPair(files[2], files[3], classes.Count);
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        return new ImageDataset(Path.GetFileName(full), new ImageSplit(trX, trY), new ImageSplit(teX, teY), classes)
        {
            Folder = full,
        };
    }

    static string? Find(string folder, string stem)
    {
        foreach (var candidate in new[] { Path.Combine(folder, stem + ".gz"), Path.Combine(folder, stem) })
            if (File.Exists(candidate))
                return candidate;
        return null;
    }
}
