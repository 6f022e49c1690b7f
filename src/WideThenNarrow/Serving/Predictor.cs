using System.Security.Cryptography;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using WideThenNarrow.Data;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Export;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Serving;

/// <summary>Which runtime computes the outputs: ONNX Runtime on the exported graph, or TorchSharp on the state_dict.</summary>
public enum InferenceEngine
{
    Onnx,
    Torch,
}

public sealed record ClassScore(int Label, string Name, double Probability);

/// <summary>One input (a file, or a text as given) and its most probable classes, best first.</summary>
public sealed record Prediction(string Input, IReadOnlyList<ClassScore> Top);

/// <summary>
/// <c>wtn predict</c>: an exported classifier on images or texts, prepared exactly as its training data was (from the
/// manifest): images resized to the training size, scaled to [0, 1] and normalised per channel with the training
/// mean and std; texts tokenised with the run's WordPiece vocabulary as [CLS] text [SEP], truncated to the training
/// length. Runs on ONNX Runtime when the export has a graph (<c>-o NAME.onnx</c>), else on TorchSharp.
/// </summary>
public sealed class Predictor : IDisposable
{
    static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg" };

    readonly string manifestPath;
    readonly OnnxSession? onnx;
    readonly StagedModel? torchModel;
    readonly Device device;
    readonly IReadOnlyList<string> classes;

    Predictor(
        string manifestPath,
        ExportManifest manifest,
        InferenceEngine engine,
        OnnxSession? onnx,
        StagedModel? torchModel,
        Device device
    )
    {
        this.manifestPath = manifestPath;
        Manifest = manifest;
        Engine = engine;
        this.onnx = onnx;
        this.torchModel = torchModel;
        this.device = device;
        int n = ModelExport.ConfigOf(manifest, manifestPath).Classes;
        classes =
            manifest.Input.Classes is { } names && names.Count == n
                ? names
                :
                [
                    .. Enumerable
                        .Range(0, n)
                        .Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ];
    }

    public ExportManifest Manifest { get; }
    public InferenceEngine Engine { get; }

    /// <summary>
    /// Opens an exported classifier. <paramref name="engine"/> null: ONNX Runtime when the manifest names a graph, else
    /// TorchSharp. Checksums are checked (weights always, the graph when it is used).
    /// </summary>
    public static Predictor Open(
        string manifestPath,
        InferenceEngine? engine = null,
        Device? device = null,
        int threads = 0
    )
    {
        var m = ModelExport.Verify(manifestPath);
        if (m.Family == "bert" && m.Model.TryGetValue("head", out var head) && Equals(head?.ToString(), "mlm"))
            throw new WtnException(
                $"{manifestPath}: a masked-LM encoder has no classes to predict; wtn predict takes classifiers (image networks, or a downstream_ stage's BERT); wtn eval scores an encoder"
            );
        var chosen = engine ?? (m.Onnx is null ? InferenceEngine.Torch : InferenceEngine.Onnx);
        if (chosen == InferenceEngine.Onnx)
        {
            var graph = OnnxPath(manifestPath, m);
            return new Predictor(manifestPath, m, chosen, new OnnxSession(graph, threads), null, CPU);
        }
        return new Predictor(manifestPath, m, chosen, null, ModelExport.Load(manifestPath, device), device ?? CPU);
    }

    /// <summary>The manifest's ONNX graph, checked against its SHA-256.</summary>
    public static string OnnxPath(string manifestPath, ExportManifest m)
    {
        if (m.Onnx is null)
            throw new WtnException(
                $"--engine onnx: {manifestPath} has no ONNX graph; export the network with wtn export -o NAME.onnx, or use --engine torch"
            );
        var graph = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(manifestPath))!, m.Onnx);
        if (!File.Exists(graph))
            throw new WtnException(
                $"{manifestPath} names the ONNX graph {graph}, which does not exist; export it again"
            );
        using var f = File.OpenRead(graph);
        var sha = Convert.ToHexStringLower(SHA256.HashData(f));
        if (sha != m.OnnxSha256)
            throw new WtnException(
                $"{graph}: SHA-256 {sha} differs from {m.OnnxSha256} in {manifestPath}; the file is damaged, export it again"
            );
        return graph;
    }

    /// <summary>Image files, and the PNG/JPEG files of folders (subfolders included, in name order), as given.</summary>
    public static IReadOnlyList<string> ImageFiles(IEnumerable<string> inputs)
    {
        var files = new List<string>();
        foreach (var input in inputs)
        {
            if (Directory.Exists(input))
            {
                var found = Directory
                    .GetFiles(input, "*", SearchOption.AllDirectories)
                    .Where(f => ImageExtensions.Contains(Path.GetExtension(f)))
                    .Order(StringComparer.Ordinal)
                    .ToList();
                if (found.Count == 0)
                    throw new WtnException($"{input}: no PNG or JPEG files in this folder");
                files.AddRange(found);
            }
            else if (File.Exists(input))
                files.Add(input);
            else
                throw new WtnException($"{input}: no such image file or folder");
        }
        return files;
    }

    /// <summary>Predictions for image files (see <see cref="ImageFiles"/>), <paramref name="batchSize"/> at a time.</summary>
    public IReadOnlyList<Prediction> PredictImages(IReadOnlyList<string> files, int topK, int batchSize = 64)
    {
        var input = Manifest.Input;
        if (
            input.Kind != "image"
            || input.Shape is not [var c, var h, var w]
            || input.Mean is null
            || input.Std is null
        )
            throw new WtnException(
                $"{manifestPath}: this network takes {input.Kind}, not images; give texts (or --file)"
            );
        var results = new List<Prediction>();
        foreach (var chunk in files.Chunk(batchSize))
        {
            using var scope = NewDisposeScope();
            var pixels = new float[chunk.Length * c * h * w];
            for (int i = 0; i < chunk.Length; i++)
                ReadImage(chunk[i], c, h, w, input.Mean, input.Std, pixels.AsSpan(i * c * h * w, c * h * w));
            var batch = tensor(pixels, [chunk.Length, c, h, w]);
            results.AddRange(Top(new ModelInput(batch), chunk, topK));
        }
        return results;
    }

    /// <summary>Predictions for texts, each tokenised as fine-tuning did ([CLS] text [SEP], truncated, padded per batch).</summary>
    public IReadOnlyList<Prediction> PredictTexts(IReadOnlyList<string> texts, int topK, int batchSize = 32)
    {
        if (Manifest.Input is not { Kind: "tokens", Vocab: { } vocab, MaxLength: { } maxLength })
            throw new WtnException(
                $"{manifestPath}: this network takes {Manifest.Input.Kind}, not text; give image files or folders"
            );
        var tokenizer = TextTokenizer.Load(
            Path.Combine(Path.GetDirectoryName(Path.GetFullPath(manifestPath))!, vocab),
            Manifest.Input.Lowercase ?? true
        );
        var results = new List<Prediction>();
        foreach (var chunk in texts.Chunk(batchSize))
        {
            using var scope = NewDisposeScope();
            var docs = chunk.Select(t => tokenizer.Encode(t).Take(maxLength - 2).ToArray()).ToList();
            int t = docs.Max(d => d.Length) + 2;
            var ids = new long[chunk.Length * t];
            if (tokenizer.Specials.Pad != 0)
                ids.AsSpan().Fill(tokenizer.Specials.Pad);
            var mask = new long[chunk.Length * t];
            for (int r = 0; r < docs.Count; r++)
            {
                var row = ids.AsSpan(r * t, t);
                row[0] = tokenizer.Specials.Cls;
                for (int j = 0; j < docs[r].Length; j++)
                    row[1 + j] = docs[r][j];
                row[1 + docs[r].Length] = tokenizer.Specials.Sep;
                mask.AsSpan(r * t, docs[r].Length + 2).Fill(1);
            }
            long[] shape = [chunk.Length, t];
            results.AddRange(
                Top(
                    new ModelInput(tensor(ids, shape), tensor(mask, shape), zeros(shape, ScalarType.Int64)),
                    chunk,
                    topK
                )
            );
        }
        return results;
    }

    IEnumerable<Prediction> Top(ModelInput input, IReadOnlyList<string> names, int topK)
    {
        Tensor logits;
        if (onnx is not null)
            logits = onnx.Run(input);
        else
        {
            using var _ = no_grad();
            var onDevice = new ModelInput(
                input.Input.to(device),
                input.AttentionMask?.to(device),
                input.TokenTypeIds?.to(device)
            );
            logits = torchModel!.call(onDevice).to(ScalarType.Float32, CPU);
        }
        var probs = logits.softmax(-1);
        var (values, indices) = probs.topk(Math.Min(topK, classes.Count), dim: -1);
        var p = values.data<float>().ToArray();
        var k = indices.data<long>().ToArray();
        int width = (int)values.shape[1];
        for (int i = 0; i < names.Count; i++)
            yield return new Prediction(
                names[i],
                [
                    .. Enumerable
                        .Range(0, width)
                        .Select(j => new ClassScore(
                            (int)k[i * width + j],
                            classes[(int)k[i * width + j]],
                            p[i * width + j]
                        )),
                ]
            );
    }

    /// <summary>One image as the network's input: resized to (h, w), gray (luma) or RGB, (pixel / 255 - mean) / std, CHW.</summary>
    static void ReadImage(string file, int channels, int h, int w, float[] mean, float[] std, Span<float> chw)
    {
        using (var image = ImageFolderReader.Load(file, "give PNG or JPEG files"))
        {
            if (image.Width != w || image.Height != h)
                image.Mutate(x => x.Resize(w, h));
            var hwc = new byte[h * w * 3];
            image.CopyPixelDataTo(hwc);
            for (int y = 0; y < h * w; y++)
            {
                byte r = hwc[3 * y],
                    g = hwc[3 * y + 1],
                    b = hwc[3 * y + 2];
                if (channels == 1)
                {
                    // A gray image gives its own value (as the training data, whose R = G = B); a colour one its luma.
                    float luma = r == g && g == b ? r : 0.299f * r + 0.587f * g + 0.114f * b;
                    chw[y] = (luma / 255f - mean[0]) / std[0];
                }
                else
                {
                    chw[y] = (r / 255f - mean[0]) / std[0];
                    chw[h * w + y] = (g / 255f - mean[1]) / std[1];
                    chw[2 * h * w + y] = (b / 255f - mean[2]) / std[2];
                }
            }
        }
    }

    public void Dispose()
    {
        onnx?.Dispose();
        torchModel?.Dispose();
    }
}
