using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace WideThenNarrow.Data.Text;

/// <summary>
/// Where a vocabulary keeps BERT's special tokens. Ids below <see cref="FirstRegular"/> (the specials, and the
/// [unused*] slots of Google's vocabularies) are never masked nor drawn as random replacements.
/// </summary>
public sealed record SpecialTokenIds(int Pad, int Unk, int Cls, int Sep, int Mask)
{
    /// <summary>Vocabularies built here: the five special tokens first, in BERT's order.</summary>
    public static readonly SpecialTokenIds Ours = new(0, 1, 2, 3, 4);

    public int FirstRegular => Math.Max(Math.Max(Math.Max(Pad, Unk), Math.Max(Cls, Sep)), Mask) + 1;
}

/// <summary>
/// BERT WordPiece tokenisation over a vocab.txt (Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>), plus the
/// pre-tokenisation the vocabulary trainer counts words with, so training and encoding see identical words.
/// Vocabularies built here start with <see cref="SpecialTokens"/> in BERT's order (ids 0-4, the constants below); a
/// HuggingFace vocab.txt keeps them elsewhere (<see cref="Specials"/>, e.g. [PAD] 0, [UNK] 100 ... [MASK] 103).
/// </summary>
public sealed class TextTokenizer
{
    public static readonly IReadOnlyList<string> SpecialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    public const int PadId = 0,
        UnkId = 1,
        ClsId = 2,
        SepId = 3,
        MaskId = 4;

    /// <summary>Ids below this are special tokens: never masked, never drawn as random replacements.</summary>
    public const int FirstRegularId = 5;

    static readonly Dictionary<string, int> SpecialIds = SpecialTokens
        .Select((t, i) => (t, i))
        .ToDictionary(p => p.t, p => p.i);

    // BERT splits every punctuation character into its own token. The library's default pattern (\w+|\p{P})
    // silently drops symbols such as $ + < = > ^ ` | ~ instead; BERT's tokenizer keeps ASCII symbols as
    // punctuation, so every non-word, non-space character becomes a one-character token here.
    static readonly PreTokenizer WordOrSymbol = new RegexPreTokenizer(
        new Regex(@"\w+|[^\w\s]", RegexOptions.Compiled),
        SpecialIds
    );

    static BertOptions Options(bool lowercase = true) =>
        new()
        {
            LowerCaseBeforeTokenization = lowercase,
            RemoveNonSpacingMarks = lowercase,
            IndividuallyTokenizeCjk = true,
            ApplyBasicTokenization = true,
            SplitOnSpecialTokens = true,
            PreTokenizer = WordOrSymbol,
        };

    /// <summary>The same normaliser the tokenizer applies (lowercase, strip accents, CJK split, control chars).</summary>
    static readonly Normalizer BasicNormalizer = BertTokenizer
        .Create(new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', SpecialTokens) + "\n")), Options())
        .Normalizer!;

    TextTokenizer(BertTokenizer bert, int vocabSize, string vocabHash, SpecialTokenIds specials)
    {
        Specials = specials;
        Bert = bert;
        VocabSize = vocabSize;
        VocabHash = vocabHash;
    }

    public BertTokenizer Bert { get; }
    public SpecialTokenIds Specials { get; }
    public int VocabSize { get; }

    /// <summary>SHA-256 (hex) of the vocab file: part of every token-cache key.</summary>
    public string VocabHash { get; }

    /// <summary>The largest vocab.txt read (a hostile or wrong file must not fill memory).</summary>
    public const long MaxVocabBytes = 64L << 20;

    /// <summary>
    /// Loads a vocab.txt, one token per line, id = line - 1: one built here or a HuggingFace BERT's. Each of
    /// <see cref="SpecialTokens"/> must be a line of it. <paramref name="lowercase"/>: lowercase and strip accents
    /// first (uncased BERT; a cased model's tokenizer_config.json says do_lower_case: false).
    /// </summary>
    public static TextTokenizer Load(string vocabPath, bool lowercase = true)
    {
        if (!File.Exists(vocabPath))
            throw new WtnException($"{vocabPath}: vocabulary not found; build it first (WordPieceTrainer)");
        Runtime.InputFiles.RequireRegular(vocabPath, $"vocabulary {vocabPath}", MaxVocabBytes);
        var bytes = File.ReadAllBytes(vocabPath);
        var lines = Encoding.UTF8.GetString(bytes).Split('\n');
        int size = lines.Length - (lines[^1].Length == 0 ? 1 : 0);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < size; i++)
            if (!ids.TryAdd(lines[i].TrimEnd('\r'), i))
                throw new WtnException(
                    $"{vocabPath}:{i + 1}: token '{lines[i].TrimEnd('\r')}' appears again (first on line {ids[lines[i].TrimEnd('\r')] + 1}); a vocabulary lists each token once"
                );
        int Id(string token) =>
            ids.TryGetValue(token, out var id)
                ? id
                : throw new WtnException(
                    $"{vocabPath}: no line {token}; a BERT vocabulary holds {string.Join(" ", SpecialTokens)}"
                );
        var specials = new SpecialTokenIds(Id("[PAD]"), Id("[UNK]"), Id("[CLS]"), Id("[SEP]"), Id("[MASK]"));
        if (specials.FirstRegular >= size)
            throw new WtnException(
                $"{vocabPath}: no token after the special ones; the vocabulary has nothing to encode text with"
            );
        var bert = BertTokenizer.Create(new MemoryStream(bytes), Options(lowercase));
        return new TextTokenizer(bert, size, Convert.ToHexStringLower(SHA256.HashData(bytes)), specials);
    }

    /// <summary>WordPiece ids of <paramref name="text"/>, without [CLS]/[SEP].</summary>
    public int[] Encode(string text) =>
        [
            .. Bert.EncodeToIds(
                Prepare(text),
                addSpecialTokens: false,
                considerPreTokenization: true,
                considerNormalization: true
            ),
        ];

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
        if (span.IndexOfAny(NeedsPreparing) < 0)
            return text;
        return string.Create(text.Length, text, static (dst, src) =>
        {
            for (int i = 0; i < src.Length; i++)
            {
                char c = src[i];
                int accented = c >= '\u00C0' && c <= '\u00FF' ? AccentedLatin1.IndexOf(c) : -1;
                dst[i] =
                    accented >= 0 ? BaseLatin1[accented]
                    : c is '\t' or '\n' or '\r' or '\f' or '\u0085' or '\u2028' or '\u2029' ? ' '
                    : c;
            }
        });
    }

    const string AccentedLatin1 = "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöøùúûüýÿ";
    const string BaseLatin1 = "AAAAAACEEEEIIIINOOOOOOUUUUYaaaaaaceeeeiiiinoooooouuuuyy";
    static readonly System.Buffers.SearchValues<char> NeedsPreparing = System.Buffers.SearchValues.Create(
        "\t\n\r\f\u0085\u2028\u2029" + AccentedLatin1
    );
}
