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

    /// <summary>
    /// Opens the log for appending; on resume first drops rows past <paramref name="keepUpToStep"/> (written after the
    /// checkpoint) and a half-written last line, through a temporary file renamed over the log: a kill at any moment
    /// leaves every row that was there before.
    /// </summary>
    public MetricsLog(string runDir, bool tensorboard, long? keepUpToStep)
    {
        var path = Path.Combine(runDir, "metrics.jsonl");
        if (keepUpToStep is { } limit && File.Exists(path))
            DropRowsAfter(path, limit);
        _jsonl = new StreamWriter(path, append: keepUpToStep is not null) { AutoFlush = true };
        if (tensorboard)
            _tb = SummaryWriter(Path.Combine(runDir, "tensorboard"));
    }

    static void DropRowsAfter(string path, long limit)
    {
        var text = File.ReadAllText(path);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var kept = lines.Where(l => StepOf(l) <= limit).ToList();
        if (kept.Count == lines.Length && (text.Length == 0 || text.EndsWith('\n')))
            return;
        WriteFailure.Replace(path, tmp => File.WriteAllLines(tmp, kept));
    }

    /// <summary>A row's step; past any limit for a line that is not a row (a half-written last line from a killed run).</summary>
    static long StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return
                doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("step", out var step)
                && step.TryGetInt64(out var s)
                ? s
                : long.MaxValue;
        }
        catch (JsonException)
        {
            return long.MaxValue;
        }
    }

    public void Write(EpochMetrics m)
    {
        _jsonl.WriteLine(JsonSerializer.Serialize(m, Json));
        if (_tb is null)
            return;
        int step = (int)Math.Min(int.MaxValue, m.Step);
        var prefix = $"{m.Stage}/{m.Kind}";
        _tb.add_scalar($"{prefix}/train_loss", (float)m.TrainLoss, step);
        _tb.add_scalar($"{prefix}/lr", (float)m.Lr, step);
        _tb.add_scalar($"{prefix}/samples_per_s", (float)m.SamplesPerSecond, step);
        if (m.TrainTop1 is { } tt)
            _tb.add_scalar($"{prefix}/train_top1", (float)tt, step);
        if (m.EvalLoss is { } el)
            _tb.add_scalar($"{prefix}/eval_loss", (float)el, step);
        if (m.EvalTop1 is { } et)
            _tb.add_scalar($"{prefix}/eval_top1", (float)et, step);
        if (m.Parts is not null)
            foreach (var (k, v) in m.Parts)
                _tb.add_scalar($"{prefix}/part_{k}", (float)v, step);
    }

    public static IEnumerable<EpochMetrics> ReadAll(string path) =>
        File.ReadLines(path).Select(l => JsonSerializer.Deserialize<EpochMetrics>(l, Json)!);

    public void Dispose() => _jsonl.Dispose();
}
