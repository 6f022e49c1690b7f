using System.Text;

namespace WideThenNarrow.Data.Text;

/// <summary>A folder of UTF-8 .txt files, one document each (e.g. the State of the Union addresses).</summary>
public static class PlainTextCorpus
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The documents of <paramref name="folder"/>, in ordinal file-name order.</summary>
    public static List<string> Read(string folder, string pattern = "*.txt")
    {
        if (!Directory.Exists(folder)) throw new WtnException($"{folder}: text folder not found; run `wtn data fetch`");
        var files = Directory.GetFiles(folder, pattern).Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new WtnException($"{folder}: no {pattern} files; run `wtn data fetch`");
        return [.. files.Select(f => ReadFile(f, "delete it and fetch the corpus again"))];
    }

    /// <summary>A user's UTF-8 text files, one document per file, in the order given.</summary>
    public static List<string> ReadFiles(IEnumerable<string> files) => [.. files.Select(f => ReadFile(f, "give UTF-8 text"))];

    static string ReadFile(string file, string remedy)
    {
        try
        {
            var text = File.ReadAllText(file, StrictUtf8);
            return text.Trim().Length > 0 ? text : throw new WtnException($"{file}: empty text file; {remedy}");
        }
        catch (DecoderFallbackException)
        {
            throw new WtnException($"{file}: not valid UTF-8 (corrupt?); {remedy}");
        }
    }
}
