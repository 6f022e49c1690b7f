using System.Text.Json;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>
/// Model weights as PyTorch state_dicts: <c>.pth</c>/<c>.pt</c>/<c>.bin</c> (torch.save format, read by
/// <c>torch.load</c>) or <c>.safetensors</c>. Loading is strict: every key of the model must be in the file
/// with the same shape, and nothing else (BatchNorm running statistics and num_batches_tracked included).
/// </summary>
public static class Weights
{
    /// <summary>
    /// Saves the module's state_dict; the format follows the extension (.safetensors, with <c>__metadata__</c>
    /// <c>{"format": "pt"}</c> plus <paramref name="metadata"/>; else torch.save).
    /// </summary>
    public static void Save(nn.Module module, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        if (IsSafetensors(path))
        {
            module.save_safetensors(path);
            SafetensorsMetadata.Add(path, metadata);
        }
        else module.save_py(path);
    }

    /// <summary>
    /// Loads a state_dict into the module strictly. Throws a one-line <see cref="WtnException"/> naming the file
    /// and the first missing key, first unexpected key and first shape mismatch when they do not match.
    /// </summary>
    public static void Load(nn.Module module, string path)
    {
        var state = Read(path);
        try
        {
            // Older HuggingFace checkpoints store the constant position_ids buffer; it carries no weights.
            foreach (var k in state.Keys.Where(k => k.EndsWith("embeddings.position_ids", StringComparison.Ordinal)).ToList())
            {
                state[k].Dispose();
                state.Remove(k);
            }
            var expected = module.state_dict();
            var missing = expected.Keys.Where(k => !state.ContainsKey(k)).ToList();
            var unexpected = state.Keys.Where(k => !expected.ContainsKey(k)).ToList();
            var mismatched = expected.Where(kv => state.TryGetValue(kv.Key, out var t) && !t.shape.SequenceEqual(kv.Value.shape))
                .Select(kv => $"{kv.Key} is {Shape(state[kv.Key].shape)} in the file, {Shape(kv.Value.shape)} in the model").ToList();
            if (missing.Count + unexpected.Count + mismatched.Count > 0)
            {
                var parts = new List<string>();
                if (missing.Count > 0) parts.Add($"{missing.Count} missing key(s), first '{missing[0]}'");
                if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected key(s), first '{unexpected[0]}'");
                if (mismatched.Count > 0) parts.Add($"{mismatched.Count} shape mismatch(es), first {mismatched[0]}");
                throw new WtnException($"weights file {path} does not fit model {module.GetName()}: {string.Join("; ", parts)} (was it saved from this architecture, widening and number of classes?)");
            }
            module.load_state_dict(state, strict: true);
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }

    /// <summary>Reads every tensor of a weights file (on the CPU).</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        RequireFile(path);
        try
        {
            if (IsSafetensors(path)) return ReadSafetensors(path);
            var table = PyTorchUnpickler.UnpickleStateDict(path);
            var result = new Dictionary<string, Tensor>();
            foreach (System.Collections.DictionaryEntry e in table)
                result[(string)e.Key] = e.Value as Tensor ?? throw new WtnException($"weights file {path}: entry '{e.Key}' is not a tensor; save a state_dict (torch.save(model.state_dict(), path))");
            return result;
        }
        catch (Exception e) when (e is not WtnException)
        {
            throw new WtnException($"weights file {path} cannot be read as a {(IsSafetensors(path) ? "safetensors" : "PyTorch state_dict (torch.save)")} file: {e.Message.Split('\n')[0]}", e);
        }
    }

    /// <summary>Key -> shape of every tensor in a weights file, without reading the tensors of a safetensors file.</summary>
    public static Dictionary<string, long[]> ReadShapes(string path)
    {
        RequireFile(path);
        if (!IsSafetensors(path))
        {
            var state = Read(path);
            var shapes = state.ToDictionary(kv => kv.Key, kv => kv.Value.shape);
            foreach (var t in state.Values) t.Dispose();
            return shapes;
        }
        return ReadSafetensorsHeader(path).Entries.ToDictionary(e => e.Key, e => e.Shape);
    }

    sealed record SafetensorsEntry(string Key, string DType, long[] Shape, long Begin, long End);

    /// <summary>The JSON header (8-byte little-endian length, then JSON) and where the data starts.</summary>
    static (List<SafetensorsEntry> Entries, long DataStart) ReadSafetensorsHeader(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            var lenBytes = new byte[8];
            f.ReadExactly(lenBytes);
            long len = BitConverter.ToInt64(lenBytes);
            if (len <= 0 || len > f.Length - 8) throw new InvalidDataException("bad header length");
            var header = new byte[len];
            f.ReadExactly(header);
            using var doc = JsonDocument.Parse(header);
            var entries = doc.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__")
                .Select(p =>
                {
                    var offsets = p.Value.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                    return new SafetensorsEntry(p.Name, p.Value.GetProperty("dtype").GetString() ?? "",
                        p.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray(), offsets[0], offsets[1]);
                }).ToList();
            return (entries, 8 + len);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException)
        {
            throw new WtnException($"weights file {path} is not a valid safetensors file: {e.Message.Split('\n')[0]}", e);
        }
    }

    static Dictionary<string, Tensor> ReadSafetensors(string path)
    {
        var (entries, dataStart) = ReadSafetensorsHeader(path);
        using var f = File.OpenRead(path);
        var result = new Dictionary<string, Tensor>();
        foreach (var e in entries)
        {
            var dtype = e.DType switch
            {
                "F64" => ScalarType.Float64, "F32" => ScalarType.Float32, "F16" => ScalarType.Float16, "BF16" => ScalarType.BFloat16,
                "I64" => ScalarType.Int64, "I32" => ScalarType.Int32, "I16" => ScalarType.Int16, "I8" => ScalarType.Int8,
                "U8" => ScalarType.Byte, "BOOL" => ScalarType.Bool,
                _ => throw new WtnException($"weights file {path}: tensor '{e.Key}' has unsupported dtype {e.DType}"),
            };
            var t = empty(e.Shape, dtype);
            long bytes = t.numel() * t.ElementSize;
            if (e.End - e.Begin != bytes || dataStart + e.End > f.Length)
                throw new WtnException($"weights file {path}: tensor '{e.Key}' has {e.End - e.Begin} bytes for shape {Shape(e.Shape)} {e.DType}; the file is corrupt or truncated");
            var data = new byte[bytes];
            f.Position = dataStart + e.Begin;
            f.ReadExactly(data);
            t.bytes = data;
            result[e.Key] = t;
        }
        return result;
    }

    static bool IsSafetensors(string path) => path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    static void RequireFile(string path)
    {
        if (!File.Exists(path)) throw new WtnException($"weights file {path} not found");
    }

    static string Shape(long[] s) => s.Length == 0 ? "a scalar" : string.Join("x", s);
}
