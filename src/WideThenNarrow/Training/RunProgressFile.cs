using System.Text.Json;

namespace WideThenNarrow.Training;

/// <summary>
/// RUN/progress.json: where a training run is, rewritten by the trainer at every logging window, epoch end and
/// checkpoint, so another process (<c>wtn report</c>) can tell how far a long run has come without touching it.
/// Epoch is 1-based here (the epoch in progress); written to a temp file and renamed, so readers never see half a file.
/// </summary>
public sealed record RunProgressFile(
    string Stage,
    int Epoch,
    int Epochs,
    long Step,
    long TotalSteps,
    double SamplesPerSecond,
    double ElapsedSeconds,
    double? EtaSeconds,
    double? LastEvalTop1,
    DateTime UpdatedUtc
)
{
    public const string FileName = "progress.json";

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void Write(string runDir)
    {
        var path = Path.Combine(runDir, FileName);
        var tmp = path + ".tmp";
        try
        {
            File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(this, Json));
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (WriteFailure.Is(e))
        {
            // Informative only: a full disk stops the run at its next checkpoint with a clear message, not here.
            try
            {
                File.Delete(tmp);
            }
            catch (IOException) { }
        }
    }

    /// <summary>The run's progress, or null when it has none (not started yet) or it is unreadable.</summary>
    public static RunProgressFile? TryRead(string runDir)
    {
        var path = Path.Combine(runDir, FileName);
        if (!File.Exists(path))
            return null;
        try
        {
            return JsonSerializer.Deserialize<RunProgressFile>(File.ReadAllBytes(path), Json);
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            return null;
        }
    }
}
