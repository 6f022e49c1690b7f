namespace WideThenNarrow.Data.Text;

/// <summary>Where the text corpora live under the data folder (see <c>wtn data fetch</c>).</summary>
public static class TextData
{
    public static string ImdbReviewsPath(string dataDir) => Path.Combine(dataDir, "imdb", "reviews.json");
    public static string SotuFolder(string dataDir) => Path.Combine(dataDir, "sotu");
    public static string BrownFolder(string dataDir) => Path.Combine(dataDir, "brown");
    /// <summary>Tokenised corpora and built vocabularies: derived data, safe to delete.</summary>
    public static string CacheFolder(string dataDir) => Path.Combine(dataDir, "cache");

    /// <summary>Text for the vocabulary and MLM pretraining: SOTU, Brown and the IMDB training half (never its test half).</summary>
    public static IEnumerable<string> PretrainingTexts(string dataDir) =>
        PlainTextCorpus.Read(SotuFolder(dataDir))
            .Concat(BrownCorpus.Read(BrownFolder(dataDir)))
            .Concat(ImdbReviews.Load(ImdbReviewsPath(dataDir)).Train.Select(e => e.Text));
}
