using Microsoft.ML.OnnxRuntime;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Export;

/// <summary>
/// An exported graph under ONNX Runtime (CPU), fed the same <see cref="ModelInput"/> as the TorchSharp model:
/// float images or features, or int64 token ids with their attention mask and segment ids.
/// </summary>
public sealed class OnnxSession : IDisposable
{
    readonly InferenceSession session;
    readonly string[] inputNames;
    readonly RunOptions run = new();

    /// <param name="threads">Intra-op threads (0: ONNX Runtime's default, one per core).</param>
    public OnnxSession(string path, int threads)
    {
        if (!File.Exists(path)) throw new WtnException($"ONNX file {path} not found");
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        try { session = new InferenceSession(path, options); }
        catch (OnnxRuntimeException e) { throw new WtnException($"ONNX file {path} cannot be loaded by ONNX Runtime: {e.Message.Split('\n')[0]}; export it again", e); }
        inputNames = [.. session.InputMetadata.Keys];
        Path = path;
    }

    public string Path { get; }

    /// <summary>
    /// The first output for <paramref name="input"/> as a CPU float32 tensor (logits). Inputs are passed by name:
    /// images as "input"; BERT's "input_ids", "attention_mask", "token_type_ids".
    /// </summary>
    public Tensor Run(ModelInput input)
    {
        var values = new List<OrtValue>();
        try
        {
            foreach (var name in inputNames)
                values.Add(name switch
                {
                    "input" => Float(input.Input),
                    "input_ids" => Long(input.Input),
                    "attention_mask" => Long(input.AttentionMask ?? throw new ArgumentException("the graph needs an attention mask", nameof(input))),
                    "token_type_ids" => Long(input.TokenTypeIds ?? throw new ArgumentException("the graph needs token type ids", nameof(input))),
                    _ => throw new WtnException($"{Path}: unknown graph input '{name}'; export the network again with this wtn"),
                });
            using var outputs = session.Run(run, inputNames, values, [session.OutputNames[0]]);
            var result = outputs[0];
            var shape = result.GetTensorTypeAndShape().Shape;
            return tensor(result.GetTensorDataAsSpan<float>().ToArray(), shape);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    static OrtValue Float(Tensor t)
    {
        using var cpu = t.to(ScalarType.Float32, CPU).contiguous();
        return OrtValue.CreateTensorValueFromMemory(cpu.data<float>().ToArray(), cpu.shape);
    }

    static OrtValue Long(Tensor t)
    {
        using var cpu = t.to(ScalarType.Int64, CPU).contiguous();
        return OrtValue.CreateTensorValueFromMemory(cpu.data<long>().ToArray(), cpu.shape);
    }

    public void Dispose()
    {
        session.Dispose();
        run.Dispose();
    }
}
