using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace WideThenNarrow.Data.Text;

/// <summary>
/// BERT WordPiece tokenisation over a vocab.txt (Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>), plus the
/// pre-tokenisation the vocabulary trainer counts words with, so training and encoding see identical words.
/// Vocabularies start with <see cref="SpecialTokens"/> in BERT's order, so their ids are fixed constants.
/// </summary>
public sealed class TextTokenizer
{
    public static readonly IReadOnlyList<string> SpecialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    public const int PadId = 0, UnkId = 1, ClsId = 2, SepId = 3, MaskId = 4;
    /// <summary>Ids below this are special tokens: never masked, never drawn as random replacements.</summary>
    public const int FirstRegularId = 5;

    static readonly Dictionary<string, int> SpecialIds = SpecialTokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);

    // BERT splits every punctuation character into its own token. The library's default pattern (\w+|\p{P})
    // silently drops symbols such as $ + < = > ^ ` | ~ instead; BERT's tokenizer keeps ASCII symbols as
    // punctuation, so every non-word, non-space character becomes a one-character token here.
    static readonly PreTokenizer WordOrSymbol = new RegexPreTokenizer(new Regex(@"\w+|[^\w\s]", RegexOptions.Compiled), SpecialIds);

    static BertOptions Options() => new()
    {
        LowerCaseBeforeTokenization = true,
        RemoveNonSpacingMarks = true,
        IndividuallyTokenizeCjk = true,
        ApplyBasicTokenization = true,
        SplitOnSpecialTokens = true,
        PreTokenizer = WordOrSymbol,
    };

    /// <summary>The same normaliser the tokenizer applies (lowercase, strip accents, CJK split, control chars).</summary>
    static readonly Normalizer BasicNormalizer =
        BertTokenizer.Create(new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', SpecialTokens) + "\n")), Options()).Normalizer!;

    TextTokenizer(BertTokenizer bert, int vocabSize, string vocabHash)
    {
        Bert = bert;
        VocabSize = vocabSize;
        VocabHash = vocabHash;
    }

    public BertTokenizer Bert { get; }
    public int VocabSize { get; }
    /// <summary>SHA-256 (hex) of the vocab file: part of every token-cache key.</summary>
    public string VocabHash { get; }

    /// <summary>Loads a vocab.txt whose first lines are <see cref="SpecialTokens"/>.</summary>
    public static TextTokenizer Load(string vocabPath)
    {
        if (!File.Exists(vocabPath)) throw new WtnException($"{vocabPath}: vocabulary not found; build it first (WordPieceTrainer)");
        var bytes = File.ReadAllBytes(vocabPath);
        var lines = Encoding.UTF8.GetString(bytes).Split('\n');
        for (int i = 0; i < SpecialTokens.Count; i++)
            if (i >= lines.Length || lines[i].TrimEnd('\r') != SpecialTokens[i])
                throw new WtnException($"{vocabPath}: line {i + 1} must be {SpecialTokens[i]} (BERT's special tokens come first, in order)");
        int size = lines.Length - (lines[^1].Length == 0 ? 1 : 0);
        var bert = BertTokenizer.Create(new MemoryStream(bytes), Options());
        return new TextTokenizer(bert, size, Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    /// <summary>WordPiece ids of <paramref name="text"/>, without [CLS]/[SEP].</summary>
    public int[] Encode(string text) => [.. Bert.EncodeToIds(Prepare(text), addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true)];

    /// <summary>Text of <paramref name="ids"/>: ## pieces joined to their word, special tokens kept.</summary>
    public string Decode(IEnumerable<int> ids) => Bert.Decode(ids, skipSpecialTokens: false);

    /// <summary>The words the tokenizer will split into pieces: normalised and pre-tokenised exactly as in <see cref="Encode"/>.</summary>
    public static List<string> Words(string text)
    {
        var words = new List<string>();
        ForEachWord(text, w => words.Add(w.ToString()));
        return words;
    }

    /// <summary>Calls <paramref name="onWord"/> for every word of <paramref name="text"/> without allocating a string per word.</summary>
    public static void ForEachWord(string text, Action<ReadOnlySpan<char>> onWord)
    {
        var normalized = BasicNormalizer.Normalize(Prepare(text));
        foreach (var (offset, length) in WordOrSymbol.PreTokenize(normalized))
            onWord(normalized.AsSpan(offset, length));
    }

    /// <summary>
    /// What BertNormalizer cannot do here: it deletes tabs and line breaks as control characters (gluing the words on
    /// either side together), and under InvariantGlobalization string.Normalize cannot decompose accents, so accented
    /// Latin-1 letters are folded to their base letter by table.
    /// </summary>
    static string Prepare(string text)
    {
        var span = text.AsSpan();
        if (span.IndexOfAny(NeedsPreparing) < 0) return text;
        return string.Create(text.Length, text, static (dst, src) =>
        {
            for (int i = 0; i < src.Length; i++)
            {
                char c = src[i];
                int accented = c >= '\u00C0' && c <= '\u00FF' ? AccentedLatin1.IndexOf(c) : -1;
                dst[i] = accented >= 0 ? BaseLatin1[accented] : c is '\t' or '\n' or '\r' or '\f' or '\u0085' or '\u2028' or '\u2029' ? ' ' : c;
            }
        });
    }

    const string AccentedLatin1 = "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöøùúûüýÿ";
    const string BaseLatin1 = "AAAAAACEEEEIIIINOOOOOOUUUUYaaaaaaceeeeiiiinoooooouuuuyy";
    static readonly System.Buffers.SearchValues<char> NeedsPreparing = System.Buffers.SearchValues.Create("\t\n\r\f\u0085\u2028\u2029" + AccentedLatin1);
}
