using System.Text;

namespace WideThenNarrow.Data.Text;

/// <summary>A folder of UTF-8 .txt files, one document each (e.g. the State of the Union addresses).</summary>
public static class PlainTextCorpus
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The documents of <paramref name="folder"/>, in ordinal file-name order.</summary>
    public static List<string> Read(string folder, string pattern = "*.txt")
    {
        if (!Directory.Exists(folder))
            throw new WtnException($"{folder}: text folder not found; run `wtn data fetch`");
        var files = Directory.GetFiles(folder, pattern).Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0)
            throw new WtnException($"{folder}: no {pattern} files; run `wtn data fetch`");
        return [.. files.Select(f => ReadFile(f, "delete it and fetch the corpus again"))];
    }

    /// <summary>A user's UTF-8 text files, one document per file, in the order given.</summary>
    public static List<string> ReadFiles(IEnumerable<string> files) =>
        [.. files.Select(f => ReadFile(f, "give UTF-8 text"))];

    /// <summary>
    /// A user's corpus (data.text.corpus): a folder of UTF-8 .txt files, one document per file in ordinal name order, or
    /// one .txt file whose paragraphs (runs of lines between blank lines) are the documents.
    /// </summary>
    public static List<string> ReadCorpus(string path)
    {
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path, "*.txt").Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0)
                throw new WtnException(
                    $"{path}: no .txt files in the corpus folder; put the text in UTF-8 .txt files, one document each"
                );
            return ReadFiles(files);
        }
        if (!path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            throw new WtnException($"{path}: a corpus is a .txt file or a folder of .txt files");
        var text = LabelledTextFile.ReadText(path, LabelledTextFile.MaxBytes);
        var paragraphs = Paragraphs(text);
        return paragraphs.Count > 0 ? paragraphs : throw new WtnException($"{path}: empty text file; give UTF-8 text");
    }

    /// <summary>Runs of non-blank lines, each joined with line breaks.</summary>
    internal static List<string> Paragraphs(string text)
    {
        var docs = new List<string>();
        var current = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            var l = line.TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(l))
            {
                if (current.Length > 0)
                    docs.Add(current.ToString());
                current.Clear();
                continue;
            }
            if (current.Length > 0)
                current.Append('\n');
            current.Append(l);
        }
        if (current.Length > 0)
            docs.Add(current.ToString());
        return docs;
    }

    static string ReadFile(string file, string remedy)
    {
        // Named by a config or a manifest: a FIFO or a device would block or read forever.
        Runtime.InputFiles.RequireRegular(file, $"text file {file}", LabelledTextFile.MaxBytes);
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
