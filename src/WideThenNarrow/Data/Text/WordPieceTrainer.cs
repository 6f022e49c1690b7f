using System.Text;

namespace WideThenNarrow.Data.Text;

/// <summary>
/// <paramref name="VocabSize"/>: target size including the special tokens. <paramref name="MaxAlphabet"/>: most
/// frequent characters kept (HuggingFace's limit_alphabet); words with other characters become [UNK].
/// <paramref name="MinWordCount"/>: rarer words are left out of training. <paramref name="MinPairCount"/>: merging
/// stops early when no pair is this frequent.
/// </summary>
public sealed record WordPieceTrainerOptions(
    int VocabSize = 16000,
    int MaxAlphabet = 1000,
    int MinWordCount = 2,
    int MinPairCount = 2
);

/// <summary>
/// Trains a WordPiece vocabulary the way HuggingFace's WordPieceTrainer does: BPE merges by pair frequency over a
/// word-frequency table, where every piece after a word's first is a "##" continuation. Deterministic: ties break
/// by symbol ids, which follow a fixed ordering of words and characters.
/// </summary>
public static class WordPieceTrainer
{
    const string Continuation = "##";

    /// <summary>Counts the pre-tokenised words of <paramref name="texts"/> (in parallel).</summary>
    public static Dictionary<string, long> CountWords(IEnumerable<string> texts)
    {
        var total = new Dictionary<string, long>(StringComparer.Ordinal);
        var gate = new object();
        Parallel.ForEach(
            texts,
            () => new Dictionary<string, long>(StringComparer.Ordinal),
            (text, _, local) =>
            {
                var lookup = local.GetAlternateLookup<ReadOnlySpan<char>>();
                TextTokenizer.ForEachWord(text, w =>
                {
                    if (lookup.TryGetValue(w, out var c))
                        lookup[w] = c + 1;
                    else
                        lookup[w] = 1;
                });
                return local;
            },
            local =>
            {
                lock (gate)
                    foreach (var (w, c) in local)
                        total[w] = total.GetValueOrDefault(w) + c;
            }
        );
        return total;
    }

    /// <summary>The vocabulary: special tokens, then the alphabet, then merged pieces in the order they were learned.</summary>
    public static List<string> Train(IReadOnlyDictionary<string, long> wordCounts, WordPieceTrainerOptions options)
    {
        if (options.VocabSize <= TextTokenizer.SpecialTokens.Count)
            throw new WtnException(
                $"vocab size {options.VocabSize}: must exceed the {TextTokenizer.SpecialTokens.Count} special tokens"
            );
        var words = wordCounts
            .Where(p => p.Value >= options.MinWordCount)
            .OrderByDescending(p => p.Value)
            .ThenBy(p => p.Key, StringComparer.Ordinal)
            .ToArray();

        var alphabet = Alphabet(words, options.MaxAlphabet);
        var symbols = new List<string>();
        var symbolIds = new Dictionary<string, int>(StringComparer.Ordinal);
        int Intern(string s)
        {
            if (symbolIds.TryGetValue(s, out var id))
                return id;
            symbolIds[s] = symbols.Count;
            symbols.Add(s);
            return symbols.Count - 1;
        }

        // Words as symbol sequences; words with a character outside the alphabet cannot be spelled and are skipped.
        var seqs = new List<int[]>();
        var lengths = new List<int>();
        var freqs = new List<long>();
        foreach (var (word, count) in words)
        {
            if (!word.All(alphabet.Contains))
                continue;
            var seq = new int[word.Length];
            for (int i = 0; i < word.Length; i++)
                seq[i] = Intern(i == 0 ? word[..1] : Continuation + word[i]);
            seqs.Add(seq);
            lengths.Add(seq.Length);
            freqs.Add(count);
        }

        var pairCounts = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < seqs.Count; w++)
        for (int j = 0; j + 1 < lengths[w]; j++)
        {
            long key = Key(seqs[w][j], seqs[w][j + 1]);
            pairCounts[key] = pairCounts.GetValueOrDefault(key) + freqs[w];
            WordsOf(pairWords, key).Add(w);
        }

        // Max-heap by count, ties to the smaller key; entries whose count changed since they were queued are stale.
        var queue = new PriorityQueue<long, (long NegCount, long Key)>();
        foreach (var (key, count) in pairCounts)
            queue.Enqueue(key, (-count, key));

        int budget = options.VocabSize - TextTokenizer.SpecialTokens.Count;
        var delta = new Dictionary<long, long>();
        while (symbols.Count < budget && queue.TryDequeue(out var best, out var priority))
        {
            long count = pairCounts.GetValueOrDefault(best);
            if (count != -priority.NegCount)
                continue;
            if (count < options.MinPairCount)
                break;
            int a = (int)(best >> 32),
                b = (int)(best & 0xffffffff);
            int merged = Intern(symbols[a] + symbols[b][Continuation.Length..]);

            delta.Clear();
            foreach (int w in pairWords[best].ToArray())
            {
                var seq = seqs[w];
                int len = lengths[w];
                long f = freqs[w];
                for (int j = 0; j + 1 < len; j++)
                    Add(delta, Key(seq[j], seq[j + 1]), -f);
                int n = 0;
                for (int j = 0; j < len; j++)
                {
                    if (j + 1 < len && seq[j] == a && seq[j + 1] == b)
                    {
                        seq[n++] = merged;
                        j++;
                    }
                    else
                        seq[n++] = seq[j];
                }
                lengths[w] = n;
                for (int j = 0; j + 1 < n; j++)
                {
                    long key = Key(seq[j], seq[j + 1]);
                    Add(delta, key, f);
                    WordsOf(pairWords, key).Add(w);
                }
            }
            pairWords.Remove(best);
            foreach (var (key, d) in delta)
            {
                if (d == 0)
                    continue;
                long c = pairCounts.GetValueOrDefault(key) + d;
                if (c > 0)
                {
                    pairCounts[key] = c;
                    queue.Enqueue(key, (-c, key));
                }
                else
                    pairCounts.Remove(key);
            }
        }
        return [.. TextTokenizer.SpecialTokens, .. symbols];
    }

    /// <summary>Writes one token per line, UTF-8 without BOM, "\n" endings: the same input gives the same bytes.</summary>
    public static void WriteVocab(string path, IReadOnlyList<string> vocab)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        WriteFailure.Replace(path, tmp =>
            File.WriteAllText(tmp, string.Join('\n', vocab) + "\n", new UTF8Encoding(false))
        );
    }

    /// <summary>
    /// Loads the vocabulary at <paramref name="vocabPath"/>, or trains one from <paramref name="texts"/> and writes it
    /// there first. Returns whether it was built now.
    /// </summary>
    public static (TextTokenizer Tokenizer, bool Built) LoadOrBuild(
        string vocabPath,
        Func<IEnumerable<string>> texts,
        WordPieceTrainerOptions options
    )
    {
        if (File.Exists(vocabPath))
            return (TextTokenizer.Load(vocabPath), false);
        WriteVocab(vocabPath, Train(CountWords(texts()), options));
        return (TextTokenizer.Load(vocabPath), true);
    }

    static HashSet<char> Alphabet(KeyValuePair<string, long>[] words, int maxAlphabet)
    {
        var charCounts = new Dictionary<char, long>();
        foreach (var (word, count) in words)
        foreach (char c in word)
            if (!char.IsSurrogate(c))
                charCounts[c] = charCounts.GetValueOrDefault(c) + count; // half a code point is no token
        return charCounts
            .OrderByDescending(p => p.Value)
            .ThenBy(p => p.Key)
            .Take(maxAlphabet)
            .Select(p => p.Key)
            .ToHashSet();
    }

    static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    static void Add(Dictionary<long, long> d, long key, long v) => d[key] = d.GetValueOrDefault(key) + v;

    static HashSet<int> WordsOf(Dictionary<long, HashSet<int>> pairWords, long key)
    {
        if (!pairWords.TryGetValue(key, out var set))
            pairWords[key] = set = [];
        return set;
    }
}
