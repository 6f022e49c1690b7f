using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace WideThenNarrow.Data.Text;

/// <summary>Documents as WordPiece ids (no [CLS]/[SEP]), stored flat: document i is Ids[Offsets[i]..Offsets[i+1]].</summary>
public sealed class TokenizedCorpus
{
    public TokenizedCorpus(int[] ids, long[] offsets)
    {
        if (offsets.Length == 0 || offsets[0] != 0 || offsets[^1] != ids.LongLength)
            throw new ArgumentException("offsets must run from 0 to the number of ids");
        Ids = ids;
        Offsets = offsets;
    }

    public int[] Ids { get; }
    public long[] Offsets { get; }
    public int Count => Offsets.Length - 1;
    public long TokenCount => Ids.LongLength;

    public ReadOnlySpan<int> this[int document] =>
        Ids.AsSpan((int)Offsets[document], (int)(Offsets[document + 1] - Offsets[document]));

    /// <summary>Tokenises <paramref name="documents"/> (in parallel; order kept).</summary>
    public static TokenizedCorpus Tokenize(TextTokenizer tokenizer, IReadOnlyList<string> documents)
    {
        var encoded = new int[documents.Count][];
        Parallel.For(0, documents.Count, i => encoded[i] = tokenizer.Encode(documents[i]));
        var offsets = new long[documents.Count + 1];
        for (int i = 0; i < encoded.Length; i++)
            offsets[i + 1] = offsets[i] + encoded[i].Length;
        var ids = new int[offsets[^1]];
        for (int i = 0; i < encoded.Length; i++)
            encoded[i].CopyTo(ids, offsets[i]);
        return new TokenizedCorpus(ids, offsets);
    }
}

/// <summary>
/// Tokenised corpora cached on disk, keyed by the vocabulary, the exact texts and the tokeniser settings, so a second
/// run skips tokenisation. File: magic, document count, token count, offsets, ids, SHA-256 of all that; a file of
/// the wrong size or checksum is rebuilt.
/// </summary>
public static class TokenCache
{
    // Bump when TextTokenizer's normalisation or pre-tokenisation changes: old caches then miss.
    const string SettingsVersion = "wtn-tokens-v1";
    static readonly byte[] Magic = "WTNTOK01"u8.ToArray();
    const int HeaderBytes = 8 + 4 + 8;

    /// <summary>The cached tokenisation of <paramref name="documents"/>, built and written if missing or corrupt.</summary>
    public static (TokenizedCorpus Corpus, bool Hit) LoadOrBuild(
        string cacheFolder,
        TextTokenizer tokenizer,
        IReadOnlyList<string> documents
    )
    {
        var path = PathFor(cacheFolder, tokenizer, documents);
        if (TryRead(path) is { } cached && cached.Count == documents.Count)
            return (cached, true);
        var corpus = TokenizedCorpus.Tokenize(tokenizer, documents);
        Write(path, corpus);
        return (corpus, false);
    }

    public static string PathFor(string cacheFolder, TextTokenizer tokenizer, IReadOnlyList<string> documents)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"{SettingsVersion}\n{tokenizer.VocabHash}\n{documents.Count}\n"));
        Span<byte> length = stackalloc byte[4];
        foreach (var doc in documents)
        {
            BinaryPrimitives.WriteInt32LittleEndian(length, doc.Length);
            hash.AppendData(length);
            hash.AppendData(MemoryMarshal.AsBytes(doc.AsSpan()));
        }
        return Path.Combine(cacheFolder, $"tokens-{Convert.ToHexStringLower(hash.GetHashAndReset())[..24]}.bin");
    }

    /// <summary>The corpus in <paramref name="path"/>, or null when it is missing, truncated or fails its checksum.</summary>
    public static TokenizedCorpus? TryRead(string path)
    {
        if (!File.Exists(path))
            return null;
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < HeaderBytes + 8 + 32 || !bytes.AsSpan(0, 8).SequenceEqual(Magic))
            return null;
        int docs = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        long tokens = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(12));
        if (docs < 0 || tokens < 0 || tokens > int.MaxValue)
            return null;
        long expected = HeaderBytes + 8L * (docs + 1) + 4L * tokens + 32;
        if (bytes.LongLength != expected)
            return null;
        int body = bytes.Length - 32;
        if (!SHA256.HashData(bytes.AsSpan(0, body)).AsSpan().SequenceEqual(bytes.AsSpan(body)))
            return null;
        var offsets = MemoryMarshal.Cast<byte, long>(bytes.AsSpan(HeaderBytes, 8 * (docs + 1))).ToArray();
        var ids = MemoryMarshal
            .Cast<byte, int>(bytes.AsSpan(HeaderBytes + 8 * (docs + 1), (int)(4 * tokens)))
            .ToArray();
        for (int i = 0; i < docs; i++)
            if (offsets[i] > offsets[i + 1])
                return null;
        return offsets[0] == 0 && offsets[^1] == tokens ? new TokenizedCorpus(ids, offsets) : null;
    }

    static void Write(string path, TokenizedCorpus corpus)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var header = new byte[HeaderBytes];
        Magic.CopyTo(header, 0);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), corpus.Count);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(12), corpus.TokenCount);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(header);
        hash.AppendData(MemoryMarshal.AsBytes(corpus.Offsets.AsSpan()));
        hash.AppendData(MemoryMarshal.AsBytes(corpus.Ids.AsSpan()));
        var digest = hash.GetHashAndReset();
        WriteFailure.Replace(path, tmp =>
        {
            using var f = File.Create(tmp);
            f.Write(header);
            f.Write(MemoryMarshal.AsBytes(corpus.Offsets.AsSpan()));
            f.Write(MemoryMarshal.AsBytes(corpus.Ids.AsSpan()));
            f.Write(digest);
        });
    }
}
