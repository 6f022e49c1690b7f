using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>What the exported network expects as input: images normalised per channel, or WordPiece token ids.</summary>
public sealed record ExportInput
{
    /// <summary>"image" or "tokens".</summary>
    public required string Kind { get; init; }

    /// <summary>Images: the dataset trained on (fashion-mnist, cifar-10, ..., or an image folder's name).</summary>
    public string? Dataset { get; init; }

    /// <summary>Images: (C, H, W) of the training data (the ResNets pool adaptively and take other sizes too).</summary>
    public int[]? Shape { get; init; }

    /// <summary>Images: x = (pixel / 255 - mean[c]) / std[c], as the training batches were normalised.</summary>
    public float[]? Mean { get; init; }
    public float[]? Std { get; init; }

    /// <summary>Class names in label order, when the dataset has them.</summary>
    public IReadOnlyList<string>? Classes { get; init; }

    /// <summary>Text: the vocab.txt file (copied beside the weights, relative to the manifest).</summary>
    public string? Vocab { get; init; }

    /// <summary>Text: false when the vocabulary is cased (not lowercased before WordPiece); null: lowercased.</summary>
    public bool? Lowercase { get; init; }

    /// <summary>Text: the longest sequence trained on.</summary>
    public int? MaxLength { get; init; }

    /// <summary>A masked-LM encoder from an experiment: the text its run held out and how it masked it (<c>wtn eval</c>'s default).</summary>
    public MaskedLmHeldOut? HeldOut { get; init; }
}

/// <summary>
/// Which pretraining documents a masked-LM run held out for evaluation and how it masked them: of the
/// <see cref="PretrainDocuments"/> documents (0 = all) it took, spread evenly over SOTU + Brown + IMDB-train, every
/// <see cref="Every"/>-th; <see cref="MaskProbability"/> of their tokens selected, with the masks of <see cref="Seed"/>.
/// </summary>
public sealed record MaskedLmHeldOut
{
    public required int PretrainDocuments { get; init; }
    public required int Every { get; init; }
    public required double MaskProbability { get; init; }
    public required int Seed { get; init; }

    /// <summary>The user's corpus (data.text.corpus, absolute) the documents were taken from; null: SOTU + Brown + IMDB-train.</summary>
    public string? Corpus { get; init; }
}

/// <summary>
/// The manifest written beside exported weights (NAME.json beside NAME.safetensors or NAME.pth): the architecture to
/// rebuild (<see cref="Model"/>: the fields <see cref="ModelConfig"/> takes for this family, snake_case), the input
/// it expects, where the weights came from, and the weights file's SHA-256. <c>python/wtn_models.py</c> reads it.
/// </summary>
public sealed record ExportManifest
{
    public const string CurrentFormat = "wtn-export/1";

    public string Format { get; init; } = CurrentFormat;

    /// <summary>The weights file, relative to the manifest: a PyTorch state_dict with torchvision / HuggingFace names.</summary>
    public required string Weights { get; init; }
    public required string Sha256 { get; init; }
    public required string Family { get; init; }
    public required Dictionary<string, object?> Model { get; init; }
    public required long Parameters { get; init; }
    public required ExportInput Input { get; init; }

    /// <summary>Where the weights came from, e.g. "experiment fashion-mnist-resnet, seed 0, stage finetune".</summary>
    public string? Source { get; init; }

    /// <summary>The network's test top-1 (its run's test split, scored once) and its validation top-1.</summary>
    public double? TestTop1 { get; init; }
    public double? ValTop1 { get; init; }

    /// <summary>The same network as an ONNX graph for inference (relative to the manifest), when exported as one.</summary>
    public string? Onnx { get; init; }
    public string? OnnxSha256 { get; init; }

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Reads and checks a manifest (<see cref="ExportManifestChecks"/>): it may come from anywhere.</summary>
    public static ExportManifest Read(string path)
    {
        ExportManifestChecks.RequireManifestFile(path);
        ExportManifest m;
        try
        {
            m = JsonSerializer.Deserialize<ExportManifest>(File.ReadAllText(path), Json)
                ?? throw new WtnException($"export manifest {path} is empty");
        }
        catch (JsonException e)
        {
            throw new WtnException($"export manifest {path} is not valid JSON ({e.Message})", e);
        }
        ExportManifestChecks.Validate(m, path);
        return m;
    }
}

/// <summary>
/// Writes a trained network as a PyTorch state_dict (<c>.safetensors</c>, or <c>.pth</c>/<c>.pt</c>/<c>.bin</c> in
/// torch.save format) plus its <see cref="ExportManifest"/>, so it can be rebuilt and loaded outside wtn:
/// <c>python/wtn_models.py</c> builds the ResNets, MLPs and BERTs in plain PyTorch (BERT's names are HuggingFace's).
/// </summary>
public static class ModelExport
{
    /// <summary>The weights formats, by extension: safetensors, or torch.save under any of its usual extensions.</summary>
    public static readonly IReadOnlyList<string> WeightExtensions = [".safetensors", ".pth", ".pt", ".bin"];

    /// <summary>What to do when a file of an export cannot be written (a full disk, a file-size limit, a read-only folder).</summary>
    const string Advice = "free some space or choose another --out";

    /// <summary>The manifest's path for <paramref name="weightsPath"/>: the same name with .json.</summary>
    public static string ManifestPath(string weightsPath) => Path.ChangeExtension(weightsPath, ".json");

    /// <summary>Fails with one line unless <paramref name="path"/> names a weights file wtn can write.</summary>
    public static void CheckPath(string path, string option = "--out")
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (!WeightExtensions.Contains(ext))
            throw new WtnException(
                $"{option}: '{path}' must end in {string.Join(", ", WeightExtensions)} (the format follows the extension)"
            );
    }

    /// <summary>
    /// Writes <paramref name="model"/>'s state_dict to <paramref name="path"/> and the manifest beside it, each through
    /// a temporary file renamed into place (an interrupted export leaves no half-written file under either name).
    /// A text model's vocabulary is copied beside them as NAME.vocab.txt.
    /// </summary>
    public static ExportManifest Write(
        StagedModel model,
        ModelConfig config,
        string path,
        ExportInput input,
        string? source = null,
        double? testTop1 = null,
        double? valTop1 = null
    )
    {
        CheckPath(path);
        path = Path.GetFullPath(path);
        try
        {
            return WriteFiles(model, config, path, input, source, testTop1, valTop1);
        }
        catch (Exception e) when (WriteFailure.Is(e))
        {
            // The folder cannot be made (each file's own write failure names that file: Advice).
            throw new WtnException($"cannot write {path} or its manifest: {WriteFailure.Describe(e)}; {Advice}", e);
        }
    }

    static ExportManifest WriteFiles(
        StagedModel model,
        ModelConfig config,
        string path,
        ExportInput input,
        string? source,
        double? testTop1,
        double? valTop1
    )
    {
        var dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        var architecture = Architecture(model, config);
        // A safetensors file carries what rebuilds it too, for tools that see the file without its manifest.
        var metadata = new Dictionary<string, string>
        {
            ["wtn_format"] = ExportManifest.CurrentFormat,
            ["wtn_family"] = model.Family,
            ["wtn_model"] = JsonSerializer.Serialize(architecture),
        };
        if (source is not null)
            metadata["wtn_source"] = source;
        WriteFailure.Replace(path, tmp => Models.Weights.Save(model, tmp, metadata), Advice);

        if (input.Vocab is { } vocab)
        {
            var copy = Path.ChangeExtension(path, ".vocab.txt");
            CopyAtomically(vocab, copy);
            input = input with { Vocab = Path.GetFileName(copy) };
        }
        string sha;
        using (var f = File.OpenRead(path))
            sha = Convert.ToHexStringLower(SHA256.HashData(f));
        var manifest = new ExportManifest
        {
            Weights = Path.GetFileName(path),
            Sha256 = sha,
            Family = model.Family,
            Model = architecture,
            Parameters = model.parameters().Sum(p => p.numel()),
            Input = input,
            Source = source,
            TestTop1 = testTop1,
            ValTop1 = valTop1,
        };
        WriteFailure.Replace(
            ManifestPath(path),
            tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(manifest, ExportManifest.Json)),
            Advice
        );
        return manifest;
    }

    /// <summary>Removes what <see cref="Write"/> wrote for <paramref name="weightsPath"/> (weights, manifest, vocabulary).</summary>
    public static void Delete(string weightsPath)
    {
        foreach (
            var f in new[] { weightsPath, ManifestPath(weightsPath), Path.ChangeExtension(weightsPath, ".vocab.txt") }
        )
            if (File.Exists(f))
                File.Delete(f);
    }

    static void CopyAtomically(string from, string to)
    {
        if (!File.Exists(from))
            throw new WtnException(
                $"vocabulary {from} not found; rerun the experiment's data preparation (wtn run rebuilds it)"
            );
        WriteFailure.Replace(to, tmp => File.Copy(from, tmp, overwrite: true), Advice);
    }

    /// <summary>The fields that rebuild this family's network (those <see cref="ModelFactory.Create"/> reads for it).</summary>
    static Dictionary<string, object?> Architecture(StagedModel model, ModelConfig c)
    {
        var a = new Dictionary<string, object?> { ["name"] = c.Name, ["widen"] = c.Widen.ToString() };
        switch (model.Family)
        {
            case "resnet":
                a["classes"] = c.Classes;
                a["input_channels"] = c.InputChannels;
                a["projection_shortcuts"] = c.ProjectionShortcuts;
                if (model is ResNet { IsCifar: true })
                    a["base_width"] = c.BaseWidth;
                break;
            case "mlp":
                a["classes"] = c.Classes;
                a["input_dim"] = c.InputDim;
                a["width"] = c.Width;
                a["depth"] = c.Depth;
                a["residual"] = c.Residual;
                break;
            default:
                // BERT: the sizes before widening (what rebuilds it, with "widen" and "widen_heads"), then the resolved ones
                // in HuggingFace BertConfig's terms plus the head size, which inner widening changes (or keeps while it
                // multiplies the heads): heads x head size then differs from hidden_size and HuggingFace's BertModel
                // cannot hold it.
                var thin = BertSizes.From(c with { Widen = Widening.None });
                var s = BertSizes.From(c);
                a["widen_heads"] = c.WidenHeads == HeadWidening.Size ? "size" : "count";
                a["head"] = c.Head == BertHead.MaskedLm ? "mlm" : "cls";
                a["classes"] = c.Classes;
                a["layers"] = thin.Layers;
                a["hidden"] = thin.Hidden;
                a["heads"] = thin.Heads;
                a["intermediate"] = thin.Intermediate;
                a["vocab"] = c.Vocab;
                a["max_positions"] = c.MaxPositions;
                a["type_vocab"] = c.TypeVocab;
                a["num_hidden_layers"] = s.Layers;
                a["hidden_size"] = s.Hidden;
                a["num_attention_heads"] = s.Heads;
                a["attention_head_size"] = s.HeadSize;
                a["intermediate_size"] = s.Intermediate;
                a["vocab_size"] = c.Vocab;
                a["max_position_embeddings"] = c.MaxPositions;
                a["type_vocab_size"] = c.TypeVocab;
                break;
        }
        return a;
    }

    /// <summary>The <see cref="ModelConfig"/> a manifest describes.</summary>
    public static ModelConfig ConfigOf(ExportManifest m, string manifestPath)
    {
        var a = m.Model;
        string Str(string key) => Get(key) is { ValueKind: JsonValueKind.String } e ? e.GetString()! : throw Bad(key);
        int Int(string key) =>
            Get(key) is { ValueKind: JsonValueKind.Number } e && e.TryGetInt32(out var v) ? v : throw Bad(key);
        bool Bool(string key) =>
            Get(key) is { ValueKind: JsonValueKind.True or JsonValueKind.False } e ? e.GetBoolean() : throw Bad(key);
        JsonElement? Get(string key) => a.TryGetValue(key, out var v) && v is JsonElement e ? e : null;
        WtnException Bad(string key) =>
            new($"export manifest {manifestPath}: model.{key} is missing or of the wrong type");
        var c = new ModelConfig
        {
            Name = Str("name"),
            Widen = Widening.Parse(Str("widen"), "model.widen"),
            Classes = Int("classes"),
        };
        var config = m.Family switch
        {
            "resnet" => c with
            {
                InputChannels = Int("input_channels"),
                ProjectionShortcuts = Bool("projection_shortcuts"),
                BaseWidth = ModelFactory.IsCifarResNet(c.Name) ? Int("base_width") : c.BaseWidth,
            },
            "mlp" => c with
            {
                InputDim = Int("input_dim"),
                Width = Int("width"),
                Depth = Int("depth"),
                Residual = Bool("residual"),
            },
            "bert" => c with
            {
                Head = Str("head") == "mlm" ? BertHead.MaskedLm : BertHead.Classification,
                WidenHeads = Str("widen_heads") switch
                {
                    "size" => HeadWidening.Size,
                    "count" => HeadWidening.Count,
                    var other => throw new WtnException(
                        $"export manifest {manifestPath}: model.widen_heads is '{other}', expected size or count"
                    ),
                },
                Layers = Int("layers"),
                Hidden = Int("hidden"),
                Heads = Int("heads"),
                Intermediate = Int("intermediate"),
                Vocab = Int("vocab"),
                MaxPositions = Int("max_positions"),
                TypeVocab = Int("type_vocab"),
            },
            _ => throw new WtnException(
                $"export manifest {manifestPath}: unknown family '{m.Family}' (resnet, mlp or bert)"
            ),
        };
        config.Validate(new Config.ConfigKeys($"export manifest {manifestPath}", "model"));
        return config;
    }

    /// <summary>
    /// Rebuilds an exported network from its manifest and loads its weights strictly, after checking their SHA-256:
    /// how a .NET application gets the network <c>wtn export</c> wrote. The model is returned in eval mode. The weights
    /// must lie inside the manifest's folder unless <paramref name="allowOutside"/>.
    /// </summary>
    public static StagedModel Load(string manifestPath, Device? device = null, bool allowOutside = false)
    {
        var m = Verify(manifestPath, allowOutside);
        var weights = WeightsPath(m, manifestPath, allowOutside);
        var config = ConfigOf(m, manifestPath);
        ExportManifestChecks.CheckFitsWeights(m, config, manifestPath, weights);
        var model = ModelFactory.Create(config);
        try
        {
            Models.Weights.Load(model, weights);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return device is null ? model : model.to(device);
    }

    /// <summary>
    /// Checks a weights file against its manifest's SHA-256 (a copy damaged on the way fails here). The weights must lie
    /// inside the manifest's folder unless <paramref name="allowOutside"/>.
    /// </summary>
    public static ExportManifest Verify(string manifestPath, bool allowOutside = false)
    {
        var m = ExportManifest.Read(manifestPath);
        if (m.Format != ExportManifest.CurrentFormat)
            throw new WtnException(
                $"export manifest {manifestPath} has format '{m.Format}'; this wtn reads {ExportManifest.CurrentFormat}"
            );
        var weights = WeightsPath(m, manifestPath, allowOutside);
        using var f = File.OpenRead(weights);
        var sha = Convert.ToHexStringLower(SHA256.HashData(f));
        if (sha != m.Sha256)
            throw new WtnException(
                $"{weights}: SHA-256 {sha} differs from {m.Sha256} in {manifestPath}; the file is damaged: write it again (wtn export, or for a wtn train run's final.json the same wtn train command with --resume)"
            );
        return m;
    }

    /// <summary>The weights file a manifest names, resolved beside it and checked (<see cref="Runtime.InputFiles.Beside"/>).</summary>
    public static string WeightsPath(ExportManifest m, string manifestPath, bool allowOutside = false) =>
        Runtime.InputFiles.Beside(manifestPath, m.Weights, "weights", allowOutside);

    /// <summary>The input an image network was trained on, normalised as <see cref="Data.ImageBatchSource"/> does.</summary>
    public static ExportInput ImageInput(Data.ImageDataset d) =>
        new()
        {
            Kind = "image",
            Dataset = d.Folder ?? d.Name, // a dataset read by path is found again from any working folder
            Shape = [d.Channels, d.Height, d.Width],
            Mean = d.Mean,
            Std = d.Std.Select(Data.ImageBatchSource.UsedStd).ToArray(),
            Classes = d.Classes,
        };
}
