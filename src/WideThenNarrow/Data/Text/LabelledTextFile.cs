using System.Globalization;
using System.Text;
using System.Text.Json;

namespace WideThenNarrow.Data.Text;

/// <summary>One row of a user's labelled text file: the text, its label as written, and the line it starts on.</summary>
public sealed record LabelledRow(string Text, string Label, int Line);

/// <summary>
/// A user's labelled text, strictly read: CSV (<c>.csv</c>, comma) or TSV (<c>.tsv</c>, tab) with a header row naming
/// the text and label columns, fields quoted per RFC 4180 (a field starting with <c>"</c> runs to the next lone
/// <c>"</c>, may hold delimiters and line breaks, and writes a quote as <c>""</c>); or JSON Lines (<c>.jsonl</c>), one
/// object per line with a string text and a string or integer label. Blank lines are skipped. Any other bad row is a
/// one-line <see cref="WtnException"/> naming the file, the line the row starts on and what is wrong.
/// </summary>
public static class LabelledTextFile
{
    /// <summary>The largest file read: .NET strings hold at most 2^30 characters.</summary>
    public const long MaxBytes = 1L << 30;

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static IReadOnlyList<string> Extensions { get; } = [".csv", ".tsv", ".jsonl"];

    public static List<LabelledRow> Read(string path, string textColumn = "text", string labelColumn = "label")
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (!Extensions.Contains(ext))
            throw new WtnException(
                $"{path}: labelled text must be .csv, .tsv or .jsonl (the extension says which), not '{ext}'"
            );
        var text = ReadText(path, MaxBytes);
        var rows =
            ext == ".jsonl"
                ? ReadJsonLines(path, text, textColumn, labelColumn)
                : ReadDelimited(path, text, ext == ".csv" ? ',' : '\t', textColumn, labelColumn);
        return rows.Count > 0
            ? rows
            : throw new WtnException(
                $"{path}: no labelled rows; give at least one row{(ext == ".jsonl" ? "" : " after the header")}"
            );
    }

    /// <summary>The file as strict UTF-8 (a leading byte-order mark dropped); invalid bytes name their line.</summary>
    internal static string ReadText(string path, long maxBytes)
    {
        Runtime.InputFiles.RequireRegular(path, $"text file {path}", maxBytes);
        var bytes = File.ReadAllBytes(path);
        int start = bytes.AsSpan().StartsWith("\xEF\xBB\xBF"u8) ? 3 : 0;
        try
        {
            return StrictUtf8.GetString(bytes, start, bytes.Length - start);
        }
        catch (DecoderFallbackException e)
        {
            int at = Math.Clamp(start + e.Index, 0, bytes.Length);
            int line = 1 + bytes.AsSpan(0, at).Count((byte)'\n');
            throw new WtnException($"{path}:{line}: not valid UTF-8; save the file as UTF-8");
        }
    }

    static List<LabelledRow> ReadDelimited(
        string path,
        string text,
        char delimiter,
        string textColumn,
        string labelColumn
    )
    {
        var records = Records(path, text, delimiter).GetEnumerator();
        if (!records.MoveNext())
            throw new WtnException(
                $"{path}: empty file; the first row must be a header naming the '{textColumn}' and '{labelColumn}' columns"
            );
        var header = records.Current.Fields;
        int ti = Column(path, header, textColumn, "data.text.text_column"),
            li = Column(path, header, labelColumn, "data.text.label_column");
        var rows = new List<LabelledRow>();
        while (records.MoveNext())
        {
            var (fields, line) = records.Current;
            if (fields.Count == 1 && fields[0].Length == 0)
                continue; // a blank line
            if (fields.Count != header.Count)
                throw new WtnException(
                    $"{path}:{line}: {fields.Count} field(s) where the header has {header.Count}; quote a field that holds a {(delimiter == ',' ? "comma" : "tab")}, a quote or a line break (\"...\", a quote inside written \"\")"
                );
            rows.Add(Row(path, line, fields[ti], fields[li], textColumn, labelColumn));
        }
        return rows;
    }

    static int Column(string path, List<string> header, string name, string key)
    {
        int at = header.IndexOf(name);
        if (at < 0)
            throw new WtnException(
                $"{path}:1: the header has no column '{name}' (it has: {string.Join(", ", header.Select(h => $"'{h}'"))}); rename the column or set {key}"
            );
        if (header.LastIndexOf(name) != at)
            throw new WtnException($"{path}:1: the header names column '{name}' twice; rename one");
        return at;
    }

    static LabelledRow Row(string path, int line, string text, string label, string textColumn, string labelColumn)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw new WtnException(
                $"{path}:{line}: empty text in column '{textColumn}'; remove the row or give it text"
            );
        label = label.Trim();
        if (label.Length == 0)
            throw new WtnException($"{path}:{line}: empty label in column '{labelColumn}'; every row needs its class");
        return new LabelledRow(text, label, line);
    }

    /// <summary>RFC 4180 records with the line each starts on; CRLF, LF and a last record without a line break all end a record.</summary>
    static IEnumerable<(List<string> Fields, int Line)> Records(string path, string text, char delimiter)
    {
        int i = 0,
            line = 1,
            n = text.Length;
        var field = new StringBuilder();
        while (i < n)
        {
            int recordLine = line;
            var fields = new List<string>();
            while (true)
            {
                field.Clear();
                if (i < n && text[i] == '"')
                {
                    int opened = line;
                    i++;
                    while (true)
                    {
                        if (i >= n)
                            throw new WtnException(
                                $"{path}:{opened}: a quoted field opened on this line is never closed; close it with \" (a quote inside written \"\")"
                            );
                        char c = text[i++];
                        if (c == '"')
                        {
                            if (i < n && text[i] == '"')
                            {
                                field.Append('"');
                                i++;
                                continue;
                            }
                            break;
                        }
                        if (c == '\n')
                            line++;
                        field.Append(c);
                    }
                    if (
                        i < n
                        && text[i] != delimiter
                        && text[i] != '\n'
                        && !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n')
                        && !(text[i] == '\r' && i + 1 == n)
                    )
                        throw new WtnException(
                            $"{path}:{line}: text after the closing quote of field {fields.Count + 1}; a quote inside a quoted field is written \"\""
                        );
                }
                else
                {
                    while (i < n && text[i] != delimiter && text[i] != '\n')
                    {
                        char c = text[i];
                        if (c == '\r' && (i + 1 == n || text[i + 1] == '\n'))
                            break;
                        if (c == '"' && delimiter == ',')
                            throw new WtnException(
                                $"{path}:{line}: a quote inside unquoted field {fields.Count + 1}; quote the whole field (\"...\") and write the quote as \"\""
                            );
                        field.Append(c);
                        i++;
                    }
                }
                fields.Add(field.ToString());
                if (i < n && text[i] == delimiter)
                {
                    i++;
                    continue;
                }
                if (i < n && text[i] == '\r')
                    i++;
                if (i < n && text[i] == '\n')
                {
                    i++;
                    line++;
                }
                break;
            }
            yield return (fields, recordLine);
        }
    }

    static List<LabelledRow> ReadJsonLines(string path, string text, string textColumn, string labelColumn)
    {
        var rows = new List<LabelledRow>();
        int line = 0;
        foreach (var raw in text.Split('\n'))
        {
            line++;
            var s = raw.TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(s))
                continue;
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(s);
            }
            catch (JsonException e)
            {
                throw new WtnException(
                    $"{path}:{line}: not valid JSON ({e.Message.Split('\n')[0]}); each line holds one object such as {{\"{textColumn}\": \"...\", \"{labelColumn}\": \"...\"}}"
                );
            }
            using (doc)
            {
                var o = doc.RootElement;
                if (o.ValueKind != JsonValueKind.Object)
                    throw new WtnException(
                        $"{path}:{line}: a JSON {Kind(o)}, not an object; each line holds one object"
                    );
                if (!o.TryGetProperty(textColumn, out var t))
                    throw new WtnException(
                        $"{path}:{line}: no \"{textColumn}\" key; add it or set data.text.text_column"
                    );
                if (t.ValueKind != JsonValueKind.String)
                    throw new WtnException($"{path}:{line}: \"{textColumn}\" is a JSON {Kind(t)}; give a string");
                if (!o.TryGetProperty(labelColumn, out var l))
                    throw new WtnException(
                        $"{path}:{line}: no \"{labelColumn}\" key; add it or set data.text.label_column"
                    );
                string label = l.ValueKind switch
                {
                    JsonValueKind.String => l.GetString()!,
                    JsonValueKind.Number when l.TryGetInt64(out var v) => v.ToString(CultureInfo.InvariantCulture),
                    _ => throw new WtnException(
                        $"{path}:{line}: \"{labelColumn}\" is {(l.ValueKind == JsonValueKind.Number ? $"the number {l.GetRawText()}" : $"a JSON {Kind(l)}")}; give a string or an integer"
                    ),
                };
                rows.Add(Row(path, line, t.GetString()!, label, textColumn, labelColumn));
            }
        }
        return rows;
    }

    static string Kind(JsonElement e) => e.ValueKind.ToString().ToLowerInvariant();

    /// <summary>
    /// The classes of <paramref name="rows"/> in id order: numeric order when every label is an integer, else ordinal
    /// order of the names. A task needs at least two.
    /// </summary>
    public static List<string> Classes(string path, IReadOnlyList<LabelledRow> rows)
    {
        var names = rows.Select(r => r.Label).Distinct(StringComparer.Ordinal).ToList();
        if (names.Count < 2)
            throw new WtnException(
                $"{path}: every row has label '{names[0]}'; a classifier needs at least two classes"
            );
        bool numeric = names.All(n =>
            long.TryParse(n, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)
        );
        return numeric
            ? [.. names.OrderBy(n => long.Parse(n, CultureInfo.InvariantCulture))]
            : [.. names.Order(StringComparer.Ordinal)];
    }

    /// <summary><paramref name="rows"/> with class ids from <paramref name="classes"/>; a label outside them names its row.</summary>
    public static List<TextExample> Examples(
        string path,
        IReadOnlyList<LabelledRow> rows,
        IReadOnlyList<string> classes,
        string classesFrom
    )
    {
        var ids = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        return
        [
            .. rows.Select(r =>
                ids.TryGetValue(r.Label, out var id)
                    ? new TextExample(r.Text, id)
                    : throw new WtnException(
                        $"{path}:{r.Line}: label '{r.Label}' is not one of the classes of {classesFrom} ({string.Join(", ", classes.Take(10))}{(classes.Count > 10 ? ", ..." : "")})"
                    )
            ),
        ];
    }
}
