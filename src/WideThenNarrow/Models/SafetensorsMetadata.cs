using System.Text;
using System.Text.Json;

namespace WideThenNarrow.Models;

/// <summary>
/// The <c>__metadata__</c> entry of a safetensors header (string to string). HuggingFace's and safetensors' own
/// writers put <c>{"format": "pt"}</c> there, and some loaders (transformers' <c>from_pretrained</c>) look for it;
/// TorchSharp's writer leaves it out, so it is added after the file is written.
/// </summary>
internal static class SafetensorsMetadata
{
    /// <summary>Rewrites the header of <paramref name="path"/> with <c>format: pt</c> plus <paramref name="extra"/>; the data is copied unchanged.</summary>
    public static void Add(string path, IReadOnlyDictionary<string, string>? extra)
    {
        var rewritten = path + ".metadata";
        using (var source = File.OpenRead(path))
        {
            var lengthBytes = new byte[8];
            source.ReadExactly(lengthBytes);
            var header = new byte[BitConverter.ToInt64(lengthBytes)];
            source.ReadExactly(header);
            using var doc = JsonDocument.Parse(header);
            var json = new MemoryStream();
            using (var w = new Utf8JsonWriter(json))
            {
                w.WriteStartObject();
                w.WriteStartObject("__metadata__");
                w.WriteString("format", "pt");
                foreach (var (k, v) in extra ?? new Dictionary<string, string>())
                    w.WriteString(k, v);
                w.WriteEndObject();
                foreach (var p in doc.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__"))
                    p.WriteTo(w);
                w.WriteEndObject();
            }
            // Data offsets are relative to the end of the header, so only its length changes; spaces keep the data
            // 8-byte aligned, as the safetensors writer does.
            while (json.Length % 8 != 0)
                json.WriteByte((byte)' ');
            using var target = File.Create(rewritten);
            target.Write(BitConverter.GetBytes(json.Length));
            json.Position = 0;
            json.CopyTo(target);
            source.CopyTo(target);
        }
        File.Move(rewritten, path, overwrite: true);
    }
}
