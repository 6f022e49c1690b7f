using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>The architecture a HuggingFace BERT's config.json describes (the fields wtn's BERT reads), and its tokenizer's casing.</summary>
public sealed record HuggingFaceBertConfig(
    int Hidden,
    int Layers,
    int Heads,
    int Intermediate,
    int MaxPositions,
    int TypeVocab,
    int Vocab,
    bool Lowercase
);

/// <summary>
/// A HuggingFace BERT checkpoint folder as <c>save_pretrained</c> writes it: config.json, model.safetensors or
/// pytorch_model.bin (BertModel, BertForMaskedLM or BertForPreTraining names), vocab.txt and optionally
/// tokenizer_config.json. wtn's <see cref="Bert"/> has the same parameter names, so the encoder loads tensor by tensor.
/// </summary>
public static class HuggingFaceBert
{
    public const string ConfigFile = "config.json",
        VocabFile = "vocab.txt",
        TokenizerConfigFile = "tokenizer_config.json";
    public static readonly IReadOnlyList<string> WeightFiles = ["model.safetensors", "pytorch_model.bin"];
    const long MaxJsonBytes = 1L << 20;

    /// <summary>A path to import from that is a folder, not a weights file: it is read as a HuggingFace BERT.</summary>
    public static bool IsFolder(string path) => Directory.Exists(path);

    public static string VocabPath(string folder) => Path.Combine(folder, VocabFile);

    /// <summary>model.safetensors when present, else pytorch_model.bin.</summary>
    public static string WeightsPath(string folder) =>
        WeightFiles.Select(f => Path.Combine(folder, f)).FirstOrDefault(File.Exists)
        ?? throw new WtnException(
            $"{folder}: no {string.Join(" or ", WeightFiles)}; a HuggingFace BERT folder holds its weights in one of them (save_pretrained writes it)"
        );

    public static HuggingFaceBertConfig ReadConfig(string folder)
    {
        var path = Path.Combine(folder, ConfigFile);
        using var doc = Json(path);
        var o = doc.RootElement;
        if (
            o.TryGetProperty("model_type", out var type)
            && type.ValueKind == JsonValueKind.String
            && type.GetString() != "bert"
        )
            throw new WtnException($"{path}: model_type is '{type.GetString()}'; wtn imports BERT (model_type: bert)");
        string act = Text(o, "hidden_act", "gelu", path);
        if (act != "gelu")
            throw new WtnException(
                $"{path}: hidden_act is '{act}'; wtn's BERT uses exact GELU (hidden_act: gelu), so this model would compute something else"
            );
        string position = Text(o, "position_embedding_type", "absolute", path);
        if (position != "absolute")
            throw new WtnException(
                $"{path}: position_embedding_type is '{position}'; wtn's BERT has absolute positions only"
            );
        double eps =
            o.TryGetProperty("layer_norm_eps", out var e) && e.ValueKind == JsonValueKind.Number
                ? e.GetDouble()
                : 1e-12;
        if (Math.Abs(eps - 1e-12) > 1e-15)
            throw new WtnException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"{path}: layer_norm_eps is {eps}; wtn's BERT uses 1e-12 (BERT's own), so this model would compute something else"
                )
            );
        int hidden = Int(o, "hidden_size", path, 1, ModelConfig.MaxWidth),
            heads = Int(o, "num_attention_heads", path, 1, ModelConfig.MaxWidth);
        if (hidden % heads != 0)
            throw new WtnException($"{path}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}");
        bool lowercase = true;
        var tokenizerConfig = Path.Combine(folder, TokenizerConfigFile);
        if (File.Exists(tokenizerConfig))
        {
            using var t = Json(tokenizerConfig);
            if (t.RootElement.TryGetProperty("do_lower_case", out var lc))
                lowercase = lc.ValueKind is JsonValueKind.True or JsonValueKind.False
                    ? lc.GetBoolean()
                    : throw new WtnException($"{tokenizerConfig}: do_lower_case must be true or false");
        }
        return new HuggingFaceBertConfig(
            hidden,
            Int(o, "num_hidden_layers", path, 1, ModelConfig.MaxDepth),
            heads,
            Int(o, "intermediate_size", path, 1, 4 * ModelConfig.MaxWidth),
            Int(o, "max_position_embeddings", path, 1, ModelConfig.MaxPositionsLimit),
            Int(o, "type_vocab_size", path, 1, ModelConfig.MaxChannels, 2),
            Int(o, "vocab_size", path, 1, ModelConfig.MaxVocab),
            lowercase
        );
    }

    static JsonDocument Json(string path)
    {
        Runtime.InputFiles.RequireRegular(path, path, MaxJsonBytes);
        try
        {
            var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
                return doc;
            doc.Dispose();
            throw new WtnException($"{path}: not a JSON object");
        }
        catch (JsonException x)
        {
            throw new WtnException($"{path}: not valid JSON ({x.Message.Split('\n')[0]})", x);
        }
    }

    static int Int(JsonElement o, string key, string path, int min, int max, int? fallback = null)
    {
        if (!o.TryGetProperty(key, out var v))
            return fallback ?? throw new WtnException($"{path}: no \"{key}\"; a BERT config.json gives it");
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n) || n < min || n > max)
            throw new WtnException($"{path}: \"{key}\" is {v.GetRawText()}; it must be an integer in [{min}, {max}]");
        return n;
    }

    static string Text(JsonElement o, string key, string fallback, string path) =>
        !o.TryGetProperty(key, out var v) ? fallback
        : v.ValueKind == JsonValueKind.String ? v.GetString()!
        : throw new WtnException($"{path}: \"{key}\" must be a string");

    /// <summary>SHA-256 over config.json, the weights file and vocab.txt: stands for the imported network in fingerprints.</summary>
    public static string Hash(string folder)
    {
        var sb = new StringBuilder();
        foreach (var f in new[] { Path.Combine(folder, ConfigFile), WeightsPath(folder), VocabPath(folder) })
        {
            using var s = File.OpenRead(f);
            sb.Append(Path.GetFileName(f))
                .Append('=')
                .Append(Convert.ToHexStringLower(SHA256.HashData(s)))
                .Append('\n');
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>
    /// Loads the checkpoint of <paramref name="folder"/> into <paramref name="model"/> (built at its config's sizes): every
    /// encoder tensor by HuggingFace name and shape, cast to the model's dtype. BertModel names (no "bert." prefix) and
    /// TF-era LayerNorm gamma/beta are accepted; the pooler (for a masked-LM model), next-sentence head and the decoder
    /// tied to the word embeddings are skipped. Returns what did not come from the file (a BertModel checkpoint has no
    /// masked-LM head: it starts fresh). A missing encoder tensor, a shape mismatch or an unknown tensor is refused.
    /// </summary>
    public static IReadOnlyList<string> Load(StagedModel model, string folder)
    {
        var path = WeightsPath(folder);
        var target = model.state_dict();
        long expectedBytes = target.Values.Sum(t => t.NumberOfElements * t.ElementSize);
        var state = Weights.Read(path, expectedBytes);
        var loaded = new HashSet<string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        try
        {
            using var _ = no_grad();
            foreach (var (key, tensor) in state)
            {
                var name = Rename(key);
                if (Skipped(name, target))
                    continue;
                if (!target.TryGetValue(name, out var dst))
                {
                    unexpected.Add(key);
                    continue;
                }
                if (!dst.shape.SequenceEqual(tensor.shape))
                    throw new WtnException(
                        $"{path}: {key} is {string.Join("x", tensor.shape)}, the model built from {ConfigFile} has {string.Join("x", dst.shape)}; are {ConfigFile} and the weights from the same model?"
                    );
                if (!tensor.is_floating_point())
                    throw new WtnException($"{path}: {key} is {tensor.dtype}, not floating point");
                dst.copy_(tensor);
                loaded.Add(name);
            }
        }
        finally
        {
            foreach (var t in state.Values)
                t.Dispose();
        }
        if (unexpected.Count > 0)
            throw new WtnException(
                $"{path}: {unexpected.Count} tensor(s) wtn's BERT does not have, first '{unexpected[0]}'; is it a BERT (BertModel / BertForMaskedLM / BertForPreTraining) checkpoint?"
            );
        var missing = target.Keys.Where(k => !loaded.Contains(k) && !Tied(k)).ToList();
        var encoderMissing = missing.Where(k => k.StartsWith("bert.", StringComparison.Ordinal)).ToList();
        if (encoderMissing.Count > 0)
            throw new WtnException(
                $"{path}: {encoderMissing.Count} encoder tensor(s) missing, first '{encoderMissing[0]}'; the checkpoint is incomplete or not a BERT"
            );
        return missing.Count > 0
            ?
            [
                $"{missing.Count} head tensor(s) not in the checkpoint ({string.Join(", ", missing.Take(3))}{(missing.Count > 3 ? ", ..." : "")}): they start fresh",
            ]
            : [];
    }

    static string Rename(string key)
    {
        var k = key;
        if (k.EndsWith(".gamma", StringComparison.Ordinal))
            k = k[..^".gamma".Length] + ".weight";
        else if (k.EndsWith(".beta", StringComparison.Ordinal))
            k = k[..^".beta".Length] + ".bias";
        return
            k.StartsWith("embeddings.", StringComparison.Ordinal)
            || k.StartsWith("encoder.", StringComparison.Ordinal)
            || k.StartsWith("pooler.", StringComparison.Ordinal)
            ? "bert." + k
            : k;
    }

    /// <summary>Tensors of the checkpoint wtn has no use for, or holds tied to another.</summary>
    static bool Skipped(string name, Dictionary<string, Tensor> target) =>
        name.EndsWith("embeddings.position_ids", StringComparison.Ordinal)
        || name.StartsWith("cls.seq_relationship.", StringComparison.Ordinal)
        || Tied(name)
        || (name.StartsWith("bert.pooler.", StringComparison.Ordinal) && !target.ContainsKey(name));

    /// <summary>The masked-LM decoder's weight is the word embeddings, its bias cls.predictions.bias (HuggingFace ties both).</summary>
    static bool Tied(string name) => name is "cls.predictions.decoder.weight" or "cls.predictions.decoder.bias";
}
