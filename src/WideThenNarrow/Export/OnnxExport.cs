using System.Security.Cryptography;
using System.Text.Json;
using Google.Protobuf;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Export;

/// <summary>
/// <c>wtn export -o NAME.onnx</c>: the network as an ONNX graph (NAME.onnx, opset <see cref="OnnxGraph.Opset"/>, batch
/// and BERT's sequence length dynamic, batch norm folded) beside the usual export (NAME.safetensors and the manifest
/// NAME.json, which names the graph and its SHA-256), so TorchSharp, PyTorch and ONNX Runtime all load the same
/// network. The graph is run by ONNX Runtime before it is kept: it must give TorchSharp's outputs.
/// </summary>
public static class OnnxExport
{
    /// <summary>
    /// The largest difference from TorchSharp's outputs a graph may show (float32 rounding, batch norm folding), for
    /// outputs up to 1 in size; larger outputs scale it (<see cref="Allowed"/>), as rounding grows with them.
    /// </summary>
    public const double Tolerance = 1e-4;

    /// <summary>What <see cref="MaxDifference"/> may be for outputs whose largest magnitude is <paramref name="largest"/>.</summary>
    public static double Allowed(double largest) => Tolerance * Math.Max(1, largest);

    const string Advice = "free some space or choose another --out";

    public static bool IsOnnx(string path) =>
        Path.GetExtension(path).Equals(".onnx", StringComparison.OrdinalIgnoreCase);

    /// <summary>The state_dict written beside NAME.onnx.</summary>
    public static string WeightsPath(string onnxPath) => Path.ChangeExtension(onnxPath, ".safetensors");

    /// <summary>
    /// Writes NAME.safetensors + NAME.json through <see cref="ModelExport.Write"/>, then NAME.onnx, and checks the graph
    /// in ONNX Runtime against <paramref name="model"/> (eval mode) on <paramref name="example"/>; all three files are
    /// removed when it differs by more than <see cref="Tolerance"/>. Returns the manifest and the difference measured.
    /// </summary>
    public static (ExportManifest Manifest, double MaxDifference) Write(
        StagedModel model,
        ModelConfig config,
        string onnxPath,
        ExportInput input,
        ModelInput example,
        string? source = null,
        double? lastTop1 = null,
        double? bestTop1 = null
    )
    {
        onnxPath = Path.GetFullPath(onnxPath);
        var weights = WeightsPath(onnxPath);
        var manifest = ModelExport.Write(model, config, weights, input, source, lastTop1, bestTop1);
        try
        {
            model.eval();
            var graph = OnnxNetworks.Build(model, example, source ?? $"{config.Name} ({config.Widen})");
            WriteFailure.Replace(
                onnxPath,
                tmp =>
                {
                    using var f = File.Create(tmp);
                    graph.WriteTo(f);
                },
                Advice
            );
            var (diff, largest) = Compare(model, onnxPath, CheckInput(example));
            if (!(diff <= Allowed(largest)))
                throw new WtnException(
                    $"{onnxPath}: ONNX Runtime's outputs differ from TorchSharp's by up to {diff:G3} (more than {Allowed(largest):G2}); please report this"
                );
            string sha;
            using (var f = File.OpenRead(onnxPath))
                sha = Convert.ToHexStringLower(SHA256.HashData(f));
            manifest = manifest with { Onnx = Path.GetFileName(onnxPath), OnnxSha256 = sha };
            WriteFailure.Replace(
                ModelExport.ManifestPath(weights),
                tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(manifest, ExportManifest.Json)),
                Advice
            );
            return (manifest, diff);
        }
        catch
        {
            ModelExport.Delete(weights); // a graph that does not give the network back must not stay, nor its half of the export
            if (File.Exists(onnxPath))
                File.Delete(onnxPath);
            throw;
        }
    }

    /// <summary>
    /// The largest absolute difference between <paramref name="model"/>'s outputs (eval mode, TorchSharp) and ONNX
    /// Runtime's for the graph at <paramref name="onnxPath"/> on <paramref name="input"/>.
    /// </summary>
    public static double MaxDifference(StagedModel model, string onnxPath, ModelInput input) =>
        Compare(model, onnxPath, input).MaxDifference;

    /// <summary><see cref="MaxDifference"/> and the largest magnitude among TorchSharp's outputs.</summary>
    public static (double MaxDifference, double Largest) Compare(StagedModel model, string onnxPath, ModelInput input)
    {
        using var session = new OnnxSession(onnxPath, get_num_threads());
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        model.eval();
        var expected = model.call(input).to(ScalarType.Float32, CPU);
        var actual = session.Run(input);
        if (!actual.shape.SequenceEqual(expected.shape))
            throw new WtnException(
                $"{onnxPath}: ONNX Runtime's output has shape [{string.Join(", ", actual.shape)}], TorchSharp's [{string.Join(", ", expected.shape)}]; please report this"
            );
        return ((actual - expected).abs().max().item<float>(), expected.abs().max().item<float>());
    }

    /// <summary>
    /// The example with padding in it when it is token ids: the second sequence's last half masked out, so the check
    /// covers the attention mask too.
    /// </summary>
    public static ModelInput CheckInput(ModelInput example)
    {
        if (example.AttentionMask is not { } mask || mask.shape[0] < 2 || mask.shape[1] < 2)
            return example;
        var padded = mask.clone();
        using (var row = padded[1])
        using (var tail = row.slice(0, mask.shape[1] / 2, mask.shape[1], 1))
            tail.fill_(0);
        return new ModelInput(example.Input, padded, example.TokenTypeIds);
    }
}
