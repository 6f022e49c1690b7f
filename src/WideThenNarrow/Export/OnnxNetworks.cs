using Onnx;
using TorchSharp.Modules;
using WideThenNarrow.Models;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace WideThenNarrow.Export;

/// <summary>
/// The zoo's networks as ONNX graphs for inference: each family's forward pass in eval mode (dropout gone, batch norm
/// folded into the convolution before it), written by walking the model's blocks and their modules. Initializers keep
/// the state_dict's names (torchvision / HuggingFace), so a graph can be read against the safetensors file.
/// </summary>
public static class OnnxNetworks
{
    /// <summary>The graph of <paramref name="model"/>, whose inputs have <paramref name="example"/>'s shapes past the dynamic axes.</summary>
    public static ModelProto Build(StagedModel model, ModelInput example, string docString)
    {
        var g = new OnnxGraph();
        switch (model)
        {
            case ResNet r:
                ResNetGraph(g, r, example);
                break;
            case Mlp m:
                MlpGraph(g, m, example);
                break;
            case Bert b:
                BertGraph(g, b);
                break;
            default:
                throw new ArgumentException($"no ONNX export for {model.GetType().Name}", nameof(model));
        }
        return g.ToModel(docString);
    }

    /// <summary>Input names in the order <see cref="Inputs"/> gives their tensors.</summary>
    public static IReadOnlyList<string> InputNames(StagedModel model) =>
        model is Bert ? ["input_ids", "attention_mask", "token_type_ids"] : ["input"];

    /// <summary>The tensors a graph input takes, by <see cref="InputNames"/>: token models need all three.</summary>
    public static IReadOnlyList<Tensor> Inputs(StagedModel model, ModelInput input) =>
        model is Bert
            ?
            [
                input.Input,
                input.AttentionMask ?? throw new ArgumentException("BERT's graph needs an attention mask"),
                input.TokenTypeIds ?? throw new ArgumentException("BERT's graph needs token type ids"),
            ]
            : [input.Input];

    public const string OutputName = "logits";

    static Dictionary<string, nn.Module> Children(nn.Module m) =>
        m.named_children().ToDictionary(c => c.name, c => c.module);

    // ---- ResNet: conv (batch norm folded) + relu blocks, global average pool, fc.

    static void ResNetGraph(OnnxGraph g, ResNet model, ModelInput example)
    {
        var x = g.Input("input", DataType.Float, "batch", example.Input.shape[1], "height", "width");
        var stem = model.BlockModules(0);
        x = g.Node("Relu", [ConvBn(g, "conv1", (Conv2d)stem[0], (BatchNorm2d)stem[1], x)]);
        if (model.StemLayout == ResNet.Layout.ImageNet)
            x = g.Node(
                "MaxPool",
                [x],
                null,
                ("kernel_shape", new long[] { 3, 3 }),
                ("strides", new long[] { 2, 2 }),
                ("pads", new long[] { 1, 1, 1, 1 })
            );
        var names = model.named_modules().Where(m => m.module is ResNet.ResidualBlock).Select(m => m.name).ToList();
        for (int i = 1; i < model.BlockCount; i++)
        {
            var block = (ResNet.ResidualBlock)model.BlockModules(i)[0];
            x = ResidualBlock(g, names[i - 1], block, x);
        }
        var pooled = g.Node("GlobalAveragePool", [x]);
        var flat = g.Node("Flatten", [pooled], null, ("axis", 1L));
        var fc = (Linear)model.HeadModules[0];
        g.Output(Gemm(g, "fc", fc, flat), OutputName, DataType.Float, "batch", fc.weight!.shape[0]);
    }

    static string ResidualBlock(OnnxGraph g, string name, ResNet.ResidualBlock block, string x)
    {
        var c = Children(block);
        var convs = new[] { "conv1", "conv2", "conv3" }.Where(c.ContainsKey).ToList();
        var h = x;
        for (int k = 0; k < convs.Count; k++)
        {
            var n = convs[k].Replace("conv", "");
            h = ConvBn(g, $"{name}.conv{n}", (Conv2d)c[$"conv{n}"], (BatchNorm2d)c[$"bn{n}"], h);
            if (k < convs.Count - 1)
                h = g.Node("Relu", [h]);
        }
        string shortcut;
        if (c.TryGetValue("downsample", out var d))
        {
            var projection = Children(d);
            shortcut = ConvBn(g, $"{name}.downsample.0", (Conv2d)projection["0"], (BatchNorm2d)projection["1"], x);
        }
        else
            shortcut = OptionA(g, block, ((Conv2d)c["conv1"]).weight!.shape[1], x);
        return g.Node("Relu", [g.Node("Add", [h, shortcut])]);
    }

    /// <summary>The parameter-free shortcut: subsample by the stride, zero-pad the new channels half before, half after.</summary>
    static string OptionA(OnnxGraph g, ResNet.ResidualBlock block, long inplanes, string x)
    {
        long extra = block.OutChannels - inplanes,
            front = extra / 2;
        if (block.Stride == 1 && extra == 0)
            return x;
        if (block.Stride != 1)
            x = g.Node(
                "Slice",
                [
                    x,
                    g.Longs("starts", 0, 0),
                    g.Longs("ends", long.MaxValue, long.MaxValue),
                    g.Longs("axes", 2, 3),
                    g.Longs("steps", block.Stride, block.Stride),
                ]
            );
        return extra == 0 ? x : g.Node("Pad", [x, g.Longs("pads", 0, front, 0, 0, 0, extra - front, 0, 0)]);
    }

    /// <summary>
    /// conv then batch norm with its running statistics, as one convolution: w' = w * s, b' = beta - mean * s (+ b * s),
    /// s = gamma / sqrt(var + eps), computed in float64 and rounded once.
    /// </summary>
    static string ConvBn(OnnxGraph g, string name, Conv2d conv, BatchNorm2d bn, string x)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var w = conv.weight!.detach().to(ScalarType.Float64);
        var scale =
            bn.weight!.detach().to(ScalarType.Float64) / (bn.running_var!.to(ScalarType.Float64) + bn.eps).sqrt();
        var folded = w * scale.view(-1, 1, 1, 1);
        var shift = bn.bias!.detach().to(ScalarType.Float64) - bn.running_mean!.to(ScalarType.Float64) * scale;
        if (conv.bias is { } b)
            shift += b.detach().to(ScalarType.Float64) * scale;
        var pad = conv.padding
            ?? throw new ArgumentException($"{name}: a convolution with string padding has no ONNX export here");
        return g.Node(
            "Conv",
            [x, g.Weight(name + ".weight", folded), g.Weight(name + ".bias", shift)],
            null,
            ("kernel_shape", new[] { w.shape[2], w.shape[3] }),
            ("strides", conv.stride.ToArray()),
            ("pads", new[] { pad[0], pad[1], pad[0], pad[1] })
        );
    }

    /// <summary>y = x W^T + b on (N, in): one Gemm.</summary>
    static string Gemm(OnnxGraph g, string name, Linear lin, string x)
    {
        var inputs = new List<string> { x, g.Weight(name + ".weight", lin.weight!) };
        if (lin.bias is { } b)
            inputs.Add(g.Weight(name + ".bias", b));
        return g.Node("Gemm", inputs, null, ("transB", 1L));
    }

    // ---- MLP: flatten, dense blocks (plain or residual), fc.

    static void MlpGraph(OnnxGraph g, Mlp model, ModelInput example)
    {
        var dims = new List<object> { "batch" };
        dims.AddRange(example.Input.shape[1..].Cast<object>());
        var x = g.Node("Flatten", [g.Input("input", DataType.Float, [.. dims])], null, ("axis", 1L));
        for (int i = 0; i < model.BlockCount; i++)
        {
            var c = Children(model.BlockModules(i)[0]);
            var name = $"blocks.{i}";
            x = c.TryGetValue("fc", out var fc)
                ? g.Node("Relu", [Gemm(g, name + ".fc", (Linear)fc, x)])
                : g.Node(
                    "Add",
                    [
                        x,
                        Gemm(
                            g,
                            name + ".fc2",
                            (Linear)c["fc2"],
                            g.Node("Relu", [Gemm(g, name + ".fc1", (Linear)c["fc1"], x)])
                        ),
                    ]
                );
        }
        var head = (Linear)model.HeadModules[0];
        g.Output(Gemm(g, "fc", head, x), OutputName, DataType.Float, "batch", head.weight!.shape[0]);
    }

    // ---- BERT: embeddings, post-LayerNorm encoder layers with exact GELU, pooler + classifier or the masked-LM head.

    static void BertGraph(OnnxGraph g, Bert model)
    {
        var m = model.named_modules().ToDictionary(x => x.name, x => x.module);
        var s = model.Sizes;
        var ids = g.Input("input_ids", DataType.Int64, "batch", "sequence");
        var mask = g.Input("attention_mask", DataType.Int64, "batch", "sequence");
        var types = g.Input("token_type_ids", DataType.Int64, "batch", "sequence");

        const string e = "bert.embeddings";
        // TorchSharp's Embedding.weight hands out a new handle on every read: ours to dispose.
        using var wordWeight = ((Embedding)m[$"{e}.word_embeddings"]).weight!;
        using var positionWeight = ((Embedding)m[$"{e}.position_embeddings"]).weight!;
        using var typeWeight = ((Embedding)m[$"{e}.token_type_embeddings"]).weight!;
        var wordTable = g.Weight($"{e}.word_embeddings.weight", wordWeight);
        var words = g.Node("Gather", [wordTable, ids]);
        // Positions 0..T-1: the first T rows of the table, broadcast over the batch.
        var length = g.Node("Shape", [ids], null, ("start", 1L), ("end", 2L));
        var positions = g.Node(
            "Slice",
            [
                g.Weight($"{e}.position_embeddings.weight", positionWeight),
                g.Longs("starts", 0),
                length,
                g.Longs("axes", 0),
            ]
        );
        var typeRows = g.Node("Gather", [g.Weight($"{e}.token_type_embeddings.weight", typeWeight), types]);
        var h = LayerNorm(
            g,
            $"{e}.LayerNorm",
            (LayerNorm)m[$"{e}.LayerNorm"],
            g.Node("Add", [g.Node("Add", [words, positions]), typeRows])
        );

        // (N,1,1,T): 0 where a key is real, float32's lowest value where it is padding, as the TorchSharp model adds it.
        var keep = g.Node(
            "Cast",
            [g.Node("Unsqueeze", [mask, g.Longs("axes", 1, 2)])],
            null,
            ("to", (long)DataType.Float)
        );
        var additive = g.Node("Mul", [g.Node("Sub", [g.Scalar("one", 1f), keep]), g.Scalar("lowest", float.MinValue)]);

        var headShape = g.Longs("heads_shape", 0, 0, s.Heads, s.HeadSize);
        var mergedShape = g.Longs("merged_shape", 0, 0, (long)s.Heads * s.HeadSize);
        var sqrtHeadSize = g.Scalar("sqrt_head_size", (float)Math.Sqrt(s.HeadSize));
        for (int l = 0; l < s.Layers; l++)
        {
            var p = $"bert.encoder.layer.{l}";
            string Heads(string which, long[] perm) =>
                g.Node(
                    "Transpose",
                    [
                        g.Node(
                            "Reshape",
                            [
                                Dense(g, $"{p}.attention.self.{which}", (Linear)m[$"{p}.attention.self.{which}"], h),
                                headShape,
                            ]
                        ),
                    ],
                    null,
                    ("perm", perm)
                );
            var q = Heads("query", [0, 2, 1, 3]);
            var kT = Heads("key", [0, 2, 3, 1]);
            var v = Heads("value", [0, 2, 1, 3]);
            var scores = g.Node("Add", [g.Node("Div", [g.Node("MatMul", [q, kT]), sqrtHeadSize]), additive]);
            var probs = g.Node("Softmax", [scores], null, ("axis", -1L));
            var context = g.Node(
                "Reshape",
                [
                    g.Node("Transpose", [g.Node("MatMul", [probs, v])], null, ("perm", new long[] { 0, 2, 1, 3 })),
                    mergedShape,
                ]
            );
            var attended = DenseNorm(g, $"{p}.attention.output", m, context, h);
            var inner = Gelu(g, Dense(g, $"{p}.intermediate.dense", (Linear)m[$"{p}.intermediate.dense"], attended));
            h = DenseNorm(g, $"{p}.output", m, inner, attended);
        }

        if (m.TryGetValue("classifier", out var classifier))
        {
            var first = g.Node("Gather", [h, g.Longs("cls_index", 0)], null, ("axis", 1L)); // (N,1,H): keep a 2-D Gemm input below
            var cls = g.Node("Squeeze", [first, g.Longs("axes", 1)]);
            var pooled = g.Node("Tanh", [Gemm(g, "bert.pooler.dense", (Linear)m["bert.pooler.dense"], cls)]);
            var lin = (Linear)classifier;
            g.Output(Gemm(g, "classifier", lin, pooled), OutputName, DataType.Float, "batch", lin.weight!.shape[0]);
            return;
        }
        const string t = "cls.predictions.transform";
        var transformed = LayerNorm(
            g,
            $"{t}.LayerNorm",
            (LayerNorm)m[$"{t}.LayerNorm"],
            Gelu(g, Dense(g, $"{t}.dense", (Linear)m[$"{t}.dense"], h))
        );
        // The decoder is tied to the word embeddings: one initializer, transposed by a node that ORT folds at load.
        var decoder = g.Node("Transpose", [wordTable], null, ("perm", new long[] { 1, 0 }));
        var bias = g.Weight(
            "cls.predictions.bias",
            model.named_parameters().Single(x => x.name == "cls.predictions.bias").parameter
        );
        g.Output(
            g.Node("Add", [g.Node("MatMul", [transformed, decoder]), bias]),
            OutputName,
            DataType.Float,
            "batch",
            "sequence",
            wordWeight.shape[0]
        );
    }

    /// <summary>y = x W^T + b on (N, T, in): MatMul with the transposed weight, then Add.</summary>
    static string Dense(OnnxGraph g, string name, Linear lin, string x)
    {
        using var wT = lin.weight!.detach().t();
        var y = g.Node("MatMul", [x, g.Weight(name + ".weight_t", wT)]);
        return lin.bias is { } b ? g.Node("Add", [y, g.Weight(name + ".bias", b)]) : y;
    }

    /// <summary>LayerNorm(dense(x) + residual): BertSelfOutput and BertOutput.</summary>
    static string DenseNorm(OnnxGraph g, string name, Dictionary<string, nn.Module> m, string x, string residual) =>
        LayerNorm(
            g,
            $"{name}.LayerNorm",
            (LayerNorm)m[$"{name}.LayerNorm"],
            g.Node("Add", [Dense(g, $"{name}.dense", (Linear)m[$"{name}.dense"], x), residual])
        );

    static string LayerNorm(OnnxGraph g, string name, LayerNorm ln, string x) =>
        g.Node(
            "LayerNormalization",
            [x, g.Weight(name + ".weight", ln.weight!), g.Weight(name + ".bias", ln.bias!)],
            null,
            ("axis", -1L),
            ("epsilon", (float)ln.eps)
        );

    /// <summary>Exact GELU, x * (1 + erf(x / sqrt 2)) / 2 (the Gelu operator arrives only in opset 20).</summary>
    static string Gelu(OnnxGraph g, string x)
    {
        var erf = g.Node("Erf", [g.Node("Div", [x, g.Scalar("sqrt2", MathF.Sqrt(2f))])]);
        return g.Node("Mul", [g.Node("Mul", [x, g.Node("Add", [erf, g.Scalar("one", 1f)])]), g.Scalar("half", 0.5f)]);
    }
}
