using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace WideThenNarrow.Export;

/// <summary>
/// Builds an ONNX graph from typed protobuf classes (OnnxSharp's <see cref="ModelProto"/>): nodes in execution order,
/// weights as initializers. Every helper returns the name of the value it produced, so emitters read like forward
/// passes. Operators are those of the default domain at <see cref="Opset"/>.
/// </summary>
public sealed class OnnxGraph
{
    /// <summary>Opset 17: the first with LayerNormalization, and supported by every ONNX Runtime of the last years.</summary>
    public const int Opset = 17;

    /// <summary>IR version 8 is what opset 17 requires at least; ONNX Runtime reads up to 10 and more.</summary>
    const long IrVersion = 8;

    readonly GraphProto graph = new() { Name = "wtn" };
    readonly Dictionary<string, int> counters = [];

    /// <summary>A new value name, unique in the graph: <paramref name="stem"/>_k.</summary>
    public string Fresh(string stem)
    {
        counters.TryGetValue(stem, out var k);
        counters[stem] = k + 1;
        return $"{stem}_{k}";
    }

    /// <summary>A graph input; a dimension is a name (dynamic, e.g. "batch") or a size.</summary>
    public string Input(string name, TensorProto.Types.DataType type, params object[] dims)
    {
        graph.Input.Add(Value(name, type, dims));
        return name;
    }

    /// <summary>Declares <paramref name="value"/> a graph output under the name <paramref name="name"/>.</summary>
    public void Output(string value, string name, TensorProto.Types.DataType type, params object[] dims)
    {
        if (value != name)
            Node("Identity", [value], name);
        graph.Output.Add(Value(name, type, dims));
    }

    /// <summary>A float32 initializer holding <paramref name="t"/>'s values (copied, on the CPU).</summary>
    public string Weight(string name, Tensor t)
    {
        using var cpu = t.detach().to(ScalarType.Float32, CPU).contiguous();
        var values = cpu.data<float>().ToArray();
        graph.Initializer.Add(
            new TensorProto
            {
                Name = name,
                DataType = (int)TensorProto.Types.DataType.Float,
                Dims = { cpu.shape },
                RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())),
            }
        );
        return name;
    }

    /// <summary>An int64 constant initializer (shapes, axes, pads).</summary>
    public string Longs(string stem, params long[] values)
    {
        var name = Fresh(stem);
        graph.Initializer.Add(
            new TensorProto
            {
                Name = name,
                DataType = (int)TensorProto.Types.DataType.Int64,
                Dims = { values.Length },
                Int64Data = { values },
            }
        );
        return name;
    }

    /// <summary>A float32 scalar initializer.</summary>
    public string Scalar(string stem, float value)
    {
        var name = Fresh(stem);
        graph.Initializer.Add(
            new TensorProto
            {
                Name = name,
                DataType = (int)TensorProto.Types.DataType.Float,
                FloatData = { value },
            }
        );
        return name;
    }

    /// <summary>Adds a node of <paramref name="op"/> with one output named <paramref name="output"/> (fresh when null).</summary>
    public string Node(
        string op,
        IEnumerable<string> inputs,
        string? output = null,
        params (string Name, object Value)[] attributes
    )
    {
        output ??= Fresh(op.ToLowerInvariant());
        var node = new NodeProto
        {
            OpType = op,
            Name = output + "/" + op,
            Input = { inputs },
            Output = { output },
        };
        foreach (var (name, value) in attributes)
            node.Attribute.Add(Attribute(name, value));
        graph.Node.Add(node);
        return output;
    }

    public ModelProto ToModel(string docString) =>
        new()
        {
            IrVersion = IrVersion,
            ProducerName = "wtn",
            ProducerVersion = typeof(OnnxGraph).Assembly.GetName().Version?.ToString() ?? "",
            DocString = docString,
            OpsetImport =
            {
                new OperatorSetIdProto { Domain = "", Version = Opset },
            },
            Graph = graph,
        };

    static AttributeProto Attribute(string name, object value) =>
        value switch
        {
            long i => new AttributeProto
            {
                Name = name,
                Type = AttributeProto.Types.AttributeType.Int,
                I = i,
            },
            int i => new AttributeProto
            {
                Name = name,
                Type = AttributeProto.Types.AttributeType.Int,
                I = i,
            },
            float f => new AttributeProto
            {
                Name = name,
                Type = AttributeProto.Types.AttributeType.Float,
                F = f,
            },
            long[] ints => new AttributeProto
            {
                Name = name,
                Type = AttributeProto.Types.AttributeType.Ints,
                Ints = { ints },
            },
            string s => new AttributeProto
            {
                Name = name,
                Type = AttributeProto.Types.AttributeType.String,
                S = ByteString.CopyFromUtf8(s),
            },
            _ => throw new ArgumentException(
                $"attribute {name}: unsupported type {value.GetType().Name}",
                nameof(value)
            ),
        };

    static ValueInfoProto Value(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(
                d switch
                {
                    string param => new TensorShapeProto.Types.Dimension { DimParam = param },
                    long size => new TensorShapeProto.Types.Dimension { DimValue = size },
                    int size => new TensorShapeProto.Types.Dimension { DimValue = size },
                    _ => throw new ArgumentException($"input {name}: a dimension is a name or a size", nameof(dims)),
                }
            );
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape },
            },
        };
    }
}
