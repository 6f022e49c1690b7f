using WideThenNarrow.Data.Text;

namespace WideThenNarrow.Tests.Text;

/// <summary>A small real vocabulary shared by the text tests: trained once per run on a slice of SOTU and Brown.</summary>
public static class TextFixture
{
    public static readonly WordPieceTrainerOptions Options = new(VocabSize: 3000, MinWordCount: 1);

    static readonly Lazy<(List<string> Train, List<string> HeldOut)> SharedTexts = new(() =>
    {
        var sotu = PlainTextCorpus.Read(TestData.Ensure("sotu"));
        var brown = BrownCorpus.Read(TestData.Ensure("brown"));
        return ([.. sotu.Take(30), .. brown.Take(60)], [.. sotu.Skip(200).Take(5), .. brown.Skip(400).Take(10)]);
    });

    static readonly Lazy<(string Folder, TextTokenizer Tokenizer)> SharedTokenizer = new(() =>
    {
        var folder = TestData.NewTempFolder("text-vocab");
        var path = Path.Combine(folder, "vocab.txt");
        WordPieceTrainer.WriteVocab(path, WordPieceTrainer.Train(WordPieceTrainer.CountWords(TrainTexts), Options));
        return (folder, TextTokenizer.Load(path));
    });

    /// <summary>What the shared vocabulary was trained on.</summary>
    public static List<string> TrainTexts => SharedTexts.Value.Train;

    /// <summary>Real text the vocabulary never saw.</summary>
    public static List<string> HeldOutTexts => SharedTexts.Value.HeldOut;

    public static TextTokenizer Tokenizer => SharedTokenizer.Value.Tokenizer;

    /// <summary>The shared vocabulary's tokens; a token's id is its index.</summary>
    public static string[] Vocab => File.ReadAllLines(Path.Combine(SharedTokenizer.Value.Folder, "vocab.txt"));
}
