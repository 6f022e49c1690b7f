using System.Globalization;
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
        if (dir is not null)
            Directory.CreateDirectory(dir);
        if (IsSafetensors(path))
        {
            module.save_safetensors(path);
            SafetensorsMetadata.Add(path, metadata);
        }
        else
            module.save_py(path);
    }

    /// <summary>
    /// Loads a state_dict into the module strictly. Throws a one-line <see cref="WtnException"/> naming the file
    /// and the first missing key, first unexpected key, first dtype and first shape mismatch when they do not match.
    /// A safetensors file is checked against the module from its header, before any tensor is read.
    /// </summary>
    public static void Load(nn.Module module, string path)
    {
        var expected = module
            .state_dict()
            .ToDictionary(kv => kv.Key, kv => new TensorSpec(kv.Value.dtype, kv.Value.shape));
        var state = Read(path, expected);
        try
        {
            foreach (var k in state.Keys.Where(IsPositionIds).ToList())
            {
                state[k].Dispose();
                state.Remove(k);
            }
            CheckFits(
                path,
                module.GetName(),
                state.ToDictionary(kv => kv.Key, kv => new TensorSpec(kv.Value.dtype, kv.Value.shape)),
                expected
            );
            module.load_state_dict(state, strict: true);
        }
        finally
        {
            foreach (var t in state.Values)
                t.Dispose();
        }
    }

    /// <summary>Reads every tensor of a weights file (on the CPU).</summary>
    public static Dictionary<string, Tensor> Read(string path) => Read(path, null);

    /// <summary>
    /// Reads every tensor of a weights file meant to hold about <paramref name="expectedBytes"/> of tensors: a file whose
    /// tensors take far more (more than twice, plus <see cref="ArchiveSlackBytes"/>) is refused before any is read.
    /// </summary>
    public static Dictionary<string, Tensor> Read(string path, long expectedBytes)
    {
        long stored = StoredBytes(path),
            limit = 2 * expectedBytes + ArchiveSlackBytes;
        if (stored > limit)
            throw new WtnException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"weights file {path} holds {stored:N0} bytes of tensors, far more than the {expectedBytes:N0} bytes of the model's; is it the right file?"
                )
            );
        return Read(path, null);
    }

    /// <summary>The dtype and shape of a tensor, as a file's header or a module's state_dict gives them.</summary>
    sealed record TensorSpec(ScalarType DType, long[] Shape)
    {
        public long Bytes => Shape.Aggregate(1L, (n, d) => checked(n * d)) * ElementSize(DType);
    }

    /// <summary>
    /// With <paramref name="expected"/> (a module's state_dict), a safetensors file must fit it before its tensors are
    /// read, and a torch.save archive may not unpack to much more than it holds.
    /// </summary>
    static Dictionary<string, Tensor> Read(string path, IReadOnlyDictionary<string, TensorSpec>? expected)
    {
        long length = RequireFile(path);
        try
        {
            if (IsSafetensors(path))
            {
                var header = ReadSafetensorsHeader(path, length);
                if (expected is not null)
                    CheckFits(
                        path,
                        "the model",
                        header.Entries.ToDictionary(e => e.Key, e => new TensorSpec(e.DType, e.Shape)),
                        expected
                    );
                return ReadSafetensors(path, header);
            }
            if (expected is not null)
                CheckArchiveSize(path, length, expected.Values.Sum(e => e.Bytes));
            var table = PyTorchUnpickler.UnpickleStateDict(path);
            var result = new Dictionary<string, Tensor>();
            foreach (System.Collections.DictionaryEntry e in table)
                result[(string)e.Key] =
                    e.Value as Tensor
                    ?? throw new WtnException(
                        $"weights file {path}: entry '{e.Key}' is not a tensor; save a state_dict (torch.save(model.state_dict(), path))"
                    );
            return result;
        }
        catch (Exception e) when (e is not WtnException)
        {
            throw new WtnException(
                $"weights file {path} cannot be read as a {(IsSafetensors(path) ? "safetensors" : "PyTorch state_dict (torch.save)")} file: {e.Message.Split('\n')[0]}",
                e
            );
        }
    }

    /// <summary>Every key of the model in the file with its dtype and shape, and nothing else; one line naming the first of each kind of difference.</summary>
    static void CheckFits(
        string path,
        string model,
        Dictionary<string, TensorSpec> file,
        IReadOnlyDictionary<string, TensorSpec> expected
    )
    {
        // Older HuggingFace checkpoints store the constant position_ids buffer; it carries no weights.
        foreach (var k in file.Keys.Where(IsPositionIds).ToList())
            file.Remove(k);
        var missing = expected.Keys.Where(k => !file.ContainsKey(k)).ToList();
        var unexpected = file.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        var dtypes = expected
            .Where(kv => file.TryGetValue(kv.Key, out var f) && f.DType != kv.Value.DType)
            .Select(kv => $"{kv.Key} is {file[kv.Key].DType} in the file, {kv.Value.DType} in the model")
            .ToList();
        var shapes = expected
            .Where(kv => file.TryGetValue(kv.Key, out var f) && !f.Shape.SequenceEqual(kv.Value.Shape))
            .Select(kv => $"{kv.Key} is {Shape(file[kv.Key].Shape)} in the file, {Shape(kv.Value.Shape)} in the model")
            .ToList();
        if (missing.Count + unexpected.Count + dtypes.Count + shapes.Count == 0)
            return;
        var parts = new List<string>();
        if (missing.Count > 0)
            parts.Add($"{missing.Count} missing key(s), first '{missing[0]}'");
        if (unexpected.Count > 0)
            parts.Add($"{unexpected.Count} unexpected key(s), first '{unexpected[0]}'");
        if (dtypes.Count > 0)
            parts.Add($"{dtypes.Count} dtype mismatch(es), first {dtypes[0]}");
        if (shapes.Count > 0)
            parts.Add($"{shapes.Count} shape mismatch(es), first {shapes[0]}");
        throw new WtnException(
            $"weights file {path} does not fit model {model}: {string.Join("; ", parts)} (was it saved from this architecture, widening, number of classes and dtype?)"
        );
    }

    static bool IsPositionIds(string key) => key.EndsWith("embeddings.position_ids", StringComparison.Ordinal);

    /// <summary>Slack for what a torch.save archive holds besides the tensors: the pickle, version records, storages shared by views.</summary>
    const long ArchiveSlackBytes = 64L << 20;

    /// <summary>
    /// A torch.save file is a zip archive: refuses one whose entries unpack to more than twice the model's tensors (plus
    /// <see cref="ArchiveSlackBytes"/>) before the unpickler allocates them.
    /// </summary>
    static void CheckArchiveSize(string path, long length, long expectedBytes)
    {
        long limit = 2 * expectedBytes + ArchiveSlackBytes;
        if (length > limit)
            throw new WtnException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"weights file {path} is {length:N0} bytes, far more than the {expectedBytes:N0} bytes of the model's tensors; is it the right file?"
                )
            );
        System.IO.Compression.ZipArchive zip;
        try
        {
            zip = System.IO.Compression.ZipFile.OpenRead(path);
        }
        catch (InvalidDataException)
        {
            return;
        } // not an archive: the unpickler refuses it with its own message
        using (zip)
        {
            long unpacked = zip.Entries.Sum(e => e.Length);
            if (unpacked > limit)
                throw new WtnException(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"weights file {path} unpacks to {unpacked:N0} bytes, far more than the {expectedBytes:N0} bytes of the model's tensors; the archive is corrupt or hostile"
                    )
                );
        }
    }

    /// <summary>Deflate's largest compression ratio: a zip entry cannot unpack to more than this times its packed size.</summary>
    const long MaxDeflateRatio = 1032;

    /// <summary>
    /// At most how many tensor bytes a weights file holds, read without reading a tensor: a safetensors file's tensors
    /// (from its validated header); a torch.save archive's unpacked size as its directory declares it, which deflate
    /// bounds by the file's length.
    /// </summary>
    public static long StoredBytes(string path)
    {
        long length = RequireFile(path);
        if (IsSafetensors(path))
            return ReadSafetensorsHeader(path, length).Entries.Sum(e => e.End - e.Begin);
        try
        {
            using var zip = System.IO.Compression.ZipFile.OpenRead(path);
            return Math.Min(
                zip.Entries.Sum(e => e.Length),
                length > long.MaxValue / MaxDeflateRatio ? long.MaxValue : length * MaxDeflateRatio
            );
        }
        catch (InvalidDataException)
        {
            return length;
        } // not an archive: loading refuses it by name
    }

    /// <summary>Key -> shape of every tensor in a weights file, without reading the tensors of a safetensors file.</summary>
    public static Dictionary<string, long[]> ReadShapes(string path)
    {
        long length = RequireFile(path);
        if (!IsSafetensors(path))
        {
            var state = Read(path);
            var shapes = state.ToDictionary(kv => kv.Key, kv => kv.Value.shape);
            foreach (var t in state.Values)
                t.Dispose();
            return shapes;
        }
        return ReadSafetensorsHeader(path, length).Entries.ToDictionary(e => e.Key, e => e.Shape);
    }

    sealed record SafetensorsEntry(string Key, ScalarType DType, long[] Shape, long Begin, long End);

    sealed record SafetensorsHeader(List<SafetensorsEntry> Entries, long DataStart);

    /// <summary>The safetensors format's own bound on the JSON header.</summary>
    const long MaxHeaderBytes = 100L << 20;

    /// <summary>
    /// The JSON header (8-byte little-endian length, then JSON) and where the data starts, validated whole before any
    /// tensor is allocated: known dtypes, non-negative shapes, offsets inside the data section, each range exactly
    /// dtype x shape bytes, no two ranges overlapping (so the tensors together never exceed the file).
    /// </summary>
    static SafetensorsHeader ReadSafetensorsHeader(string path, long fileLength)
    {
        string Bad(string why) => $"weights file {path} is not a valid safetensors file: {why}";
        try
        {
            if (fileLength < 8)
                throw new WtnException(Bad($"{fileLength} bytes is shorter than the 8-byte header length"));
            using var f = File.OpenRead(path);
            var lenBytes = new byte[8];
            f.ReadExactly(lenBytes);
            long len = BitConverter.ToInt64(lenBytes);
            if (len <= 0 || len > fileLength - 8 || len > MaxHeaderBytes)
                throw new WtnException(
                    Bad($"header length {len} does not fit a {fileLength}-byte file (at most {MaxHeaderBytes} bytes)")
                );
            var header = new byte[len];
            f.ReadExactly(header);
            long dataStart = 8 + len,
                dataLength = fileLength - dataStart;
            using var doc = JsonDocument.Parse(header);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new WtnException(Bad("the header is not a JSON object"));
            var entries = new List<SafetensorsEntry>();
            var seen = new HashSet<string>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                    continue;
                if (!seen.Add(p.Name))
                    throw new WtnException(Bad($"tensor '{p.Name}' appears twice"));
                entries.Add(Entry(p, dataLength, Bad));
            }
            var byOffset = entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin).ToList();
            for (int i = 1; i < byOffset.Count; i++)
                if (byOffset[i].Begin < byOffset[i - 1].End)
                    throw new WtnException(
                        Bad(
                            $"tensors '{byOffset[i - 1].Key}' and '{byOffset[i].Key}' overlap in the data (bytes {byOffset[i].Begin}..{byOffset[i - 1].End})"
                        )
                    );
            return new SafetensorsHeader(entries, dataStart);
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException or FormatException)
        {
            throw new WtnException(Bad(e.Message.Split('\n')[0]), e);
        }
    }

    static SafetensorsEntry Entry(JsonProperty p, long dataLength, Func<string, string> bad)
    {
        var v = p.Value;
        if (
            v.ValueKind != JsonValueKind.Object
            || !v.TryGetProperty("dtype", out var dt)
            || dt.ValueKind != JsonValueKind.String
            || !v.TryGetProperty("shape", out var sh)
            || sh.ValueKind != JsonValueKind.Array
            || !v.TryGetProperty("data_offsets", out var off)
            || off.ValueKind != JsonValueKind.Array
            || off.GetArrayLength() != 2
        )
            throw new WtnException(bad($"tensor '{p.Name}' needs dtype, shape and data_offsets [begin, end]"));
        var dtype = DTypeOf(dt.GetString()!)
            ?? throw new WtnException(bad($"tensor '{p.Name}' has unsupported dtype {dt.GetString()}"));
        var shape = sh.EnumerateArray().Select(x => x.GetInt64()).ToArray();
        long begin = off[0].GetInt64(),
            end = off[1].GetInt64();
        if (shape.Any(d => d < 0))
            throw new WtnException(
                bad($"tensor '{p.Name}' has a negative dimension in shape [{string.Join(", ", shape)}]")
            );
        if (begin < 0 || end < begin || end > dataLength)
            throw new WtnException(
                bad($"tensor '{p.Name}' has data_offsets [{begin}, {end}] outside the {dataLength}-byte data section")
            );
        long bytes;
        try
        {
            bytes = new TensorSpec(dtype, shape).Bytes;
        }
        catch (OverflowException)
        {
            bytes = -1;
        }
        if (bytes != end - begin)
            throw new WtnException(
                bad(
                    $"tensor '{p.Name}' has {end - begin} bytes for shape {Shape(shape)} {dt.GetString()}, which takes {(bytes < 0 ? "more than 2^63" : bytes.ToString())}"
                )
            );
        return new SafetensorsEntry(p.Name, dtype, shape, begin, end);
    }

    static ScalarType? DTypeOf(string name) =>
        name switch
        {
            "F64" => ScalarType.Float64,
            "F32" => ScalarType.Float32,
            "F16" => ScalarType.Float16,
            "BF16" => ScalarType.BFloat16,
            "I64" => ScalarType.Int64,
            "I32" => ScalarType.Int32,
            "I16" => ScalarType.Int16,
            "I8" => ScalarType.Int8,
            "U8" => ScalarType.Byte,
            "BOOL" => ScalarType.Bool,
            _ => null,
        };

    static long ElementSize(ScalarType t) =>
        t switch
        {
            ScalarType.Float64 or ScalarType.Int64 => 8,
            ScalarType.Float32 or ScalarType.Int32 => 4,
            ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
            ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
            _ => throw new WtnException($"tensors of dtype {t} are not supported in weights files"),
        };

    static Dictionary<string, Tensor> ReadSafetensors(string path, SafetensorsHeader header)
    {
        using var f = File.OpenRead(path);
        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var e in header.Entries)
            {
                var data = new byte[e.End - e.Begin];
                f.Position = header.DataStart + e.Begin;
                f.ReadExactly(data);
                var t = empty(e.Shape, e.DType);
                t.bytes = data;
                result[e.Key] = t;
            }
        }
        catch
        {
            foreach (var t in result.Values)
                t.Dispose();
            throw;
        }
        return result;
    }

    static bool IsSafetensors(string path) => path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    static long RequireFile(string path) => Runtime.InputFiles.RequireRegular(path, $"weights file {path}");

    static string Shape(long[] s) => s.Length == 0 ? "a scalar" : string.Join("x", s);
}
