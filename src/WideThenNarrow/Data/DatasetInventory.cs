using System.Text.Json;

namespace WideThenNarrow.Data;

public sealed record SplitInfo(string Name, int Examples);

/// <summary>One dataset in the data folder: what <c>wtn data list</c> shows.</summary>
public sealed record DatasetInfo(
    string Name,
    bool Present,
    string Folder,
    IReadOnlyList<SplitInfo> Splits,
    IReadOnlyList<string> Classes,
    string? Shape,
    long SizeOnDisk,
    string? Fetch
);

/// <summary>
/// What the data folder holds. Image datasets are read with the strict readers (so a corrupt file is reported
/// here, naming it); text datasets are only counted: IMDB by its reviews, SOTU by speeches, Brown by documents.
/// </summary>
public static class DatasetInventory
{
    public const int ImdbReviews = 50000;

    public static IReadOnlyList<DatasetInfo> List(string dataDir)
    {
        var list = new List<DatasetInfo>
        {
            Image("fashion-mnist", dataDir, DatasetCatalog.FashionMnist.Name),
            Imdb(dataDir),
            Sotu(dataDir),
            Brown(dataDir),
        };
        foreach (var cifar in new[] { "cifar-10", "cifar-100" })
            if (Directory.Exists(Path.Combine(dataDir, cifar)))
                list.Add(Image(cifar, dataDir, fetch: null));
        return list;
    }

    static DatasetInfo Image(string name, string dataDir, string? fetch)
    {
        var folder = Path.Combine(dataDir, name);
        if (!Directory.Exists(folder))
            return Absent(name, folder, fetch);
        using var ds = ImageDataset.Load(name, dataDir);
        return new DatasetInfo(
            name,
            true,
            folder,
            [new SplitInfo("train", ds.Train.Count), new SplitInfo("test", ds.Test.Count)],
            ds.Classes,
            $"{ds.Channels}x{ds.Height}x{ds.Width}",
            DataFiles.SizeOnDisk(folder),
            fetch
        );
    }

    static DatasetInfo Imdb(string dataDir)
    {
        var folder = Path.Combine(dataDir, DatasetCatalog.Imdb.Name);
        var file = Path.Combine(folder, "reviews.json");
        if (!File.Exists(file))
            return Absent(DatasetCatalog.Imdb.Name, folder, DatasetCatalog.Imdb.Name);
        int reviews = CountTopLevelArrayItems(file);
        if (reviews != ImdbReviews)
            throw new WtnException(
                $"{file}: {reviews} reviews where the IMDB package holds {ImdbReviews}; fetch it again"
            );
        // Index blocks of the package: [0,12500) test-neg, [12500,25000) train-neg, [25000,37500) test-pos, [37500,50000) train-pos.
        return new DatasetInfo(
            DatasetCatalog.Imdb.Name,
            true,
            folder,
            [new SplitInfo("train", reviews / 2), new SplitInfo("test", reviews / 2)],
            ["neg", "pos"],
            null,
            DataFiles.SizeOnDisk(folder),
            DatasetCatalog.Imdb.Name
        );
    }

    static DatasetInfo Sotu(string dataDir)
    {
        var folder = Path.Combine(dataDir, DatasetCatalog.Sotu.Name);
        if (!Directory.Exists(folder))
            return Absent(DatasetCatalog.Sotu.Name, folder, DatasetCatalog.Sotu.Name);
        int speeches = Directory.GetFiles(folder, "*.txt").Length;
        return new DatasetInfo(
            DatasetCatalog.Sotu.Name,
            true,
            folder,
            [new SplitInfo("speeches", speeches)],
            [],
            null,
            DataFiles.SizeOnDisk(folder),
            DatasetCatalog.Sotu.Name
        );
    }

    static DatasetInfo Brown(string dataDir)
    {
        var folder = Path.Combine(dataDir, DatasetCatalog.Brown.Name);
        if (!Directory.Exists(folder))
            return Absent(DatasetCatalog.Brown.Name, folder, DatasetCatalog.Brown.Name);
        int documents = Directory.GetFiles(folder).Count(f => DatasetCatalog.IsBrownDocument(Path.GetFileName(f)));
        var cats = Path.Combine(folder, "cats.txt");
        // cats.txt: one "document genre" line per document; the genres are the classes.
        string[] genres = File.Exists(cats)
            ?
            [
                .. File.ReadLines(cats)
                    .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    .Where(p => p.Length == 2)
                    .Select(p => p[1])
                    .Distinct(),
            ]
            : [];
        return new DatasetInfo(
            DatasetCatalog.Brown.Name,
            true,
            folder,
            [new SplitInfo("documents", documents)],
            genres,
            null,
            DataFiles.SizeOnDisk(folder),
            DatasetCatalog.Brown.Name
        );
    }

    static DatasetInfo Absent(string name, string folder, string? fetch) =>
        new(name, false, folder, [], [], null, 0, fetch);

    /// <summary>Counts the elements of a top-level JSON array without materialising them.</summary>
    static int CountTopLevelArrayItems(string path)
    {
        try
        {
            var bytes = File.ReadAllBytes(path);
            var reader = new Utf8JsonReader(bytes);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                throw new WtnException($"{path}: expected a JSON array of reviews");
            int count = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                count++;
                reader.Skip();
            }
            if (reader.TokenType != JsonTokenType.EndArray)
                throw new WtnException($"{path}: the JSON array is truncated");
            return count;
        }
        catch (JsonException e)
        {
            throw new WtnException(
                $"{path}: not valid JSON at byte {e.BytePositionInLine} of line {e.LineNumber} ({e.Message.Split('.')[0]}); fetch it again",
                e
            );
        }
    }
}
