using System.Diagnostics;
using WideThenNarrow.Export;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Serving;

/// <summary>Milliseconds per forward pass of one engine at one batch size: median and the 10th-90th percentile spread.</summary>
public sealed record EngineLatency(string Engine, int Batch, double MedianMs, double P10Ms, double P90Ms, int Passes);

/// <summary>One network's latencies, both engines at every batch size, and TorchSharp's median over ONNX Runtime's.</summary>
public sealed record InferenceComparison(string Network, int Threads, IReadOnlyList<EngineLatency> Latencies)
{
    public double Speedup(int batch) =>
        Latencies.Single(l => l.Engine == InferenceBench.Torch && l.Batch == batch).MedianMs
        / Latencies.Single(l => l.Engine == InferenceBench.Onnx && l.Batch == batch).MedianMs;
}

/// <summary>
/// Serving latency: the same network in TorchSharp eager mode and in ONNX Runtime (its graph built from the model, or
/// the export's .onnx), on the same input and threads, passes alternated (the order swapped every pass) so that a
/// machine busy with something else slows both alike.
/// </summary>
public static class InferenceBench
{
    public const string Torch = "torchsharp";
    public const string Onnx = "onnxruntime";

    /// <param name="graph">The network's ONNX graph; null: built from <paramref name="model"/>.</param>
    public static InferenceComparison Compare(
        string network,
        StagedModel model,
        Func<int, Device, ModelInput> example,
        IReadOnlyList<int> batches,
        int repeats,
        OnnxSession? graph = null
    )
    {
        if (repeats < 1)
            throw new WtnException($"repeats must be at least 1, got {repeats}");
        model.eval();
        int threads = get_num_threads();
        using var inputs = NewDisposeScope();
        var own = graph is null ? new OnnxSession(OnnxNetworks.Build(model, example(2, CPU), network), threads) : null;
        var session = graph ?? own!;
        try
        {
            var rows = new List<EngineLatency>();
            foreach (var batch in batches)
            {
                var input = example(batch, CPU);
                using var prepared = session.Prepare(input);
                var (torch, onnx) = (new double[repeats], new double[repeats]);
                for (int i = -3; i < repeats; i++)
                {
                    double t,
                        o;
                    if ((i & 1) == 0)
                    {
                        t = TimeTorch(model, input);
                        o = TimeOnnx(prepared);
                    }
                    else
                    {
                        o = TimeOnnx(prepared);
                        t = TimeTorch(model, input);
                    }
                    if (i < 0)
                        continue;
                    torch[i] = t;
                    onnx[i] = o;
                }
                rows.Add(Summary(Torch, batch, torch));
                rows.Add(Summary(Onnx, batch, onnx));
            }
            return new InferenceComparison(network, threads, rows);
        }
        finally
        {
            own?.Dispose();
        }
    }

    /// <summary>Median milliseconds of ONNX Runtime on the graph of <paramref name="model"/> (the report's latency column).</summary>
    public static double OnnxLatency(StagedModel model, Func<int, Device, ModelInput> example, int batch, int repeats)
    {
        using var scope = NewDisposeScope();
        model.eval();
        using var session = new OnnxSession(
            OnnxNetworks.Build(model, example(2, CPU), model.GetName()),
            get_num_threads()
        );
        using var prepared = session.Prepare(example(batch, CPU));
        var times = new double[repeats];
        for (int i = -3; i < repeats; i++)
        {
            double ms = TimeOnnx(prepared);
            if (i >= 0)
                times[i] = ms;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }

    static double TimeTorch(StagedModel model, ModelInput input)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        model.call(input);
        return clock.Elapsed.TotalMilliseconds;
    }

    static double TimeOnnx(OnnxSession.Prepared prepared)
    {
        var clock = Stopwatch.StartNew();
        using (prepared.Run())
            return clock.Elapsed.TotalMilliseconds;
    }

    static EngineLatency Summary(string engine, int batch, double[] times)
    {
        var sorted = times.Order().ToArray();
        double At(double q) => sorted[(int)Math.Round(q * (sorted.Length - 1))];
        return new EngineLatency(engine, batch, At(0.5), At(0.1), At(0.9), sorted.Length);
    }
}
