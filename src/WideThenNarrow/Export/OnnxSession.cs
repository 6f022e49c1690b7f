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
        if (!File.Exists(path))
            throw new WtnException($"ONNX file {path} not found");
        Path = path;
        session = Open(o => new InferenceSession(path, o), threads, path);
        inputNames = [.. session.InputMetadata.Keys];
    }

    /// <summary>A graph built in memory (a latency measurement of a network that was never exported).</summary>
    public OnnxSession(Onnx.ModelProto graph, int threads)
    {
        Path = "(in memory)";
        session = Open(
            o => new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(graph), o),
            threads,
            Path
        );
        inputNames = [.. session.InputMetadata.Keys];
    }

    static InferenceSession Open(Func<SessionOptions, InferenceSession> open, int threads, string path)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
        };
        try
        {
            return open(options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new WtnException(
                $"ONNX file {path} cannot be loaded by ONNX Runtime: {e.Message.Split('\n')[0]}; export it again",
                e
            );
        }
    }

    public string Path { get; }

    /// <summary>
    /// The first output for <paramref name="input"/> as a CPU float32 tensor (logits). Inputs are passed by name:
    /// images as "input"; BERT's "input_ids", "attention_mask", "token_type_ids".
    /// </summary>
    public Tensor Run(ModelInput input)
    {
        using var prepared = Prepare(input);
        using var outputs = prepared.Run();
        var result = outputs[0];
        return tensor(result.GetTensorDataAsSpan<float>().ToArray(), result.GetTensorTypeAndShape().Shape);
    }

    /// <summary><paramref name="input"/> copied into ONNX Runtime's values once, to run many times (latency).</summary>
    public Prepared Prepare(ModelInput input)
    {
        var values = new List<OrtValue>();
        try
        {
            foreach (var name in inputNames)
                values.Add(
                    name switch
                    {
                        "input" => Float(input.Input),
                        "input_ids" => Long(input.Input),
                        "attention_mask" => Long(
                            input.AttentionMask
                                ?? throw new ArgumentException("the graph needs an attention mask", nameof(input))
                        ),
                        "token_type_ids" => Long(
                            input.TokenTypeIds
                                ?? throw new ArgumentException("the graph needs token type ids", nameof(input))
                        ),
                        _ => throw new WtnException(
                            $"{Path}: unknown graph input '{name}'; export the network again with this wtn"
                        ),
                    }
                );
            return new Prepared(this, values);
        }
        catch
        {
            foreach (var v in values)
                v.Dispose();
            throw;
        }
    }

    public sealed class Prepared(OnnxSession owner, List<OrtValue> values) : IDisposable
    {
        /// <summary>One inference; the caller disposes the outputs.</summary>
        public IDisposableReadOnlyCollection<OrtValue> Run() =>
            owner.session.Run(owner.run, owner.inputNames, values, [owner.session.OutputNames[0]]);

        public void Dispose()
        {
            foreach (var v in values)
                v.Dispose();
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
