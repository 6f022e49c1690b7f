namespace WideThenNarrow.Data.Text;

/// <summary>Where the text corpora live under the data folder, as <c>wtn data fetch</c> lays them out.</summary>
public static class TextData
{
    public static string ImdbReviewsPath(string dataDir) =>
        Path.Combine(dataDir, DatasetCatalog.Imdb.Name, "reviews.json");

    public static string SotuFolder(string dataDir) => Path.Combine(dataDir, DatasetCatalog.Sotu.Name);

    public static string BrownFolder(string dataDir) => Path.Combine(dataDir, DatasetCatalog.Brown.Name);

    /// <summary>Tokenised corpora and built vocabularies: derived data, safe to delete.</summary>
    public static string CacheFolder(string dataDir) => Path.Combine(dataDir, "cache");
}
