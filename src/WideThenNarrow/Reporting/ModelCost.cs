using System.Diagnostics;
using TorchSharp;
using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Serving;
using static TorchSharp.torch;

namespace WideThenNarrow.Reporting;

/// <summary>Parameters, multiply-accumulates per example, and inference latency (median, ms) at batch 1 and 64.</summary>
public sealed record ModelCostRow(
    string Model,
    string Architecture,
    long Parameters,
    long? Macs,
    double LatencyMs1,
    double LatencyMs64
)
{
    /// <summary>libtorch intra-op threads the latencies were measured on.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Measured while another process of the run was training on this machine (slower than alone).</summary>
    public bool Contended { get; init; }

    /// <summary>
    /// Which runtime the latencies are of: "onnxruntime" (the network's ONNX graph, as it would be served) or
    /// "torchsharp" (eager mode).
    /// </summary>
    public string Engine { get; init; } = Serving.InferenceBench.Torch;
}

public static class ModelCost
{
    /// <summary>Costs of the experiment's networks (thin, wide, deeper when declared), measured on fresh instances.</summary>
    public static IReadOnlyDictionary<string, ModelCostRow> Measure(
        ExperimentConfig config,
        IExperimentDataset dataset,
        Device device,
        int repeats
    )
    {
        var rows = new Dictionary<string, ModelCostRow>();
        foreach (var (key, spec) in Networks(config))
        {
            var model = ModelFactory.Create(dataset.ModelConfig(spec, key)).to(device);
            rows[key] = Of(
                key,
                spec.Name + (spec.Widen == "none" ? "" : $" ({spec.Widen})"),
                model,
                dataset.ExampleInput,
                device,
                repeats
            );
            model.Dispose();
        }
        return rows;
    }

    /// <summary>
    /// The experiment's networks by key: thin; wide only when a stage built it (models.wide has a default that an
    /// experiment without a 'wide' section never uses and need not fit its data); deeper when declared.
    /// </summary>
    public static IReadOnlyList<(string Key, ModelSpec Spec)> Networks(ExperimentConfig config)
    {
        var specs = new List<(string Key, ModelSpec Spec)> { ("thin", config.Models.Thin) };
        if (config.Wide is not null)
            specs.Add(("wide", config.Models.Wide));
        if (config.Models.Deeper is { } d)
            specs.Add(("deeper", d));
        return specs;
    }

    public static ModelCostRow Of(
        string key,
        string architecture,
        StagedModel model,
        Func<int, Device, ModelInput> example,
        Device device,
        int repeats
    )
    {
        model.eval();
        long parameters = model.parameters().Sum(p => p.numel());
        long? macs = null;
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            if (model is IMacCounting counting)
            {
                var input = example(1, device);
                var exampleShape = input.Input.shape[1..];
                var (_, points) = model.ForwardIntermediates(input);
                long total = 0;
                for (int i = 0; i < points.Length; i++)
                    total += counting.BlockMacs(
                        i,
                        i == 0 ? exampleShape : points[i - 1].shape[1..],
                        points[i].shape[1..]
                    );
                macs = total + counting.HeadMacs(points[^1].shape[1..]);
            }
        }
        // Served networks run on ONNX Runtime (a CPU runtime): the column measures it, unless the model is on a GPU.
        bool onnx = device.type == DeviceType.CPU;
        double Measure(int batch, int n) =>
            onnx ? InferenceBench.OnnxLatency(model, example, batch, n) : Latency(model, example, batch, device, n);
        return new ModelCostRow(
            key,
            architecture,
            parameters,
            macs,
            Measure(1, repeats),
            Measure(64, Math.Max(3, repeats / 4))
        )
        {
            Threads = get_num_threads(),
            Engine = onnx ? InferenceBench.Onnx : InferenceBench.Torch,
        };
    }

    /// <summary>Median milliseconds of one eval-mode forward pass of a batch of <paramref name="batch"/>, after 3 untimed passes.</summary>
    public static double Latency(
        StagedModel model,
        Func<int, Device, ModelInput> example,
        int batch,
        Device device,
        int repeats
    )
    {
        model.eval();
        using var _ = no_grad();
        using var inputs = NewDisposeScope();
        var input = example(batch, device);
        var times = new double[repeats];
        for (int i = -3; i < repeats; i++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            model.call(input);
            if (i >= 0)
                times[i] = clock.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }
}
