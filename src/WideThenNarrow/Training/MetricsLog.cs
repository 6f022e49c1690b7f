using System.Text.Json;
using System.Text.Json.Serialization;
using static TorchSharp.torch.utils.tensorboard;

namespace WideThenNarrow.Training;

/// <summary>metrics.jsonl (one JSON object per line) plus optional TensorBoard scalars in RunDir/tensorboard.</summary>
sealed class MetricsLog : IDisposable
{
    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    readonly StreamWriter _jsonl;
    readonly TorchSharp.Modules.SummaryWriter? _tb;

    /// <summary>Opens the log; on resume drops rows past <paramref name="keepUpToStep"/> (written after the checkpoint).</summary>
    public MetricsLog(string runDir, bool tensorboard, long? keepUpToStep)
    {
        var path = Path.Combine(runDir, "metrics.jsonl");
        var kept = new List<string>();
        if (keepUpToStep is { } limit && File.Exists(path))
            foreach (var line in File.ReadAllLines(path))
            {
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    if (doc.RootElement.GetProperty("step").GetInt64() <= limit) kept.Add(line);
                }
                catch (JsonException) { } // a half-written last line from a killed run
            }
        _jsonl = new StreamWriter(path, append: false) { AutoFlush = true };
        foreach (var line in kept) _jsonl.WriteLine(line);
        if (tensorboard) _tb = SummaryWriter(Path.Combine(runDir, "tensorboard"));
    }

    public void Write(EpochMetrics m)
    {
        _jsonl.WriteLine(JsonSerializer.Serialize(m, Json));
        if (_tb is null) return;
        int step = (int)Math.Min(int.MaxValue, m.Step);
        var prefix = $"{m.Stage}/{m.Kind}";
        _tb.add_scalar($"{prefix}/train_loss", (float)m.TrainLoss, step);
        _tb.add_scalar($"{prefix}/lr", (float)m.Lr, step);
        _tb.add_scalar($"{prefix}/samples_per_s", (float)m.SamplesPerSecond, step);
        if (m.TrainTop1 is { } tt) _tb.add_scalar($"{prefix}/train_top1", (float)tt, step);
        if (m.EvalLoss is { } el) _tb.add_scalar($"{prefix}/eval_loss", (float)el, step);
        if (m.EvalTop1 is { } et) _tb.add_scalar($"{prefix}/eval_top1", (float)et, step);
        if (m.Parts is not null)
            foreach (var (k, v) in m.Parts) _tb.add_scalar($"{prefix}/part_{k}", (float)v, step);
    }

    public static IEnumerable<EpochMetrics> ReadAll(string path) =>
        File.ReadLines(path).Select(l => JsonSerializer.Deserialize<EpochMetrics>(l, Json)!);

    public void Dispose() => _jsonl.Dispose();
}
