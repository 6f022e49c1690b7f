using System.Security.Cryptography;
using System.Text.Json;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// A finished stage, as written to STAGE/stage.json (its presence means "done": a rerun skips the stage).
/// Top-1 values are test-set fractions; <see cref="Curve"/> has one point per epoch of the stage's last run.
/// </summary>
public sealed record StageSummary
{
    public required string Stage { get; init; }
    public required string Model { get; init; }
    public double WallSeconds { get; init; }
    public double? BestTop1 { get; init; }
    public double? LastTop1 { get; init; }
    public List<CurvePoint> Curve { get; init; } = [];
    /// <summary>Stage 2 only: every block's imitation run.</summary>
    public List<BlockSummary>? Blocks { get; init; }
    /// <summary>Stage 2, full widening: which adapter pairs were merged and which dropped.</summary>
    public List<AdapterFate>? Adapters { get; init; }
    public bool? HeadCopied { get; init; }
    /// <summary>The stage's final weights (TorchSharp format), relative to the stage folder.</summary>
    public string Weights { get; init; } = "final.model";
    /// <summary>SHA-256 of <see cref="Weights"/> as written: a damaged file is refused wherever it is loaded.</summary>
    public string? WeightsSha256 { get; init; }

    public const string FileName = "stage.json";

    /// <summary>Whether the stage in <paramref name="stageDir"/> is finished (its stage.json exists).</summary>
    public static bool IsDone(string stageDir) => File.Exists(Path.Combine(stageDir, FileName));

    public static StageSummary? TryLoad(string stageDir)
    {
        if (!IsDone(stageDir)) return null;
        var path = Path.Combine(stageDir, FileName);
        try { return JsonSerializer.Deserialize<StageSummary>(File.ReadAllText(path), StageContext.Json); }
        catch (JsonException e) { throw new WtnException($"{path} is corrupt ({e.Message}); delete it to rerun the stage", e); }
    }

    /// <summary>
    /// Saves the final weights, then the summary with their SHA-256 (last, so a crash in between reruns the stage);
    /// each through a temporary file renamed into place.
    /// </summary>
    public void Save(string stageDir, nn.Module model)
    {
        Directory.CreateDirectory(stageDir);
        const string advice = "free space on that disk and run the same command again (the stage's last checkpoint is kept)";
        string? sha = null;
        WriteFailure.Replace(Path.Combine(stageDir, Weights), tmp =>
        {
            model.save(tmp);
            sha = Sha256Of(tmp);
        }, advice);
        var saved = this with { WeightsSha256 = sha };
        WriteFailure.Replace(Path.Combine(stageDir, FileName), tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(saved, StageContext.Json)), advice);
    }

    /// <summary>Loads the stage's final weights into <paramref name="model"/> once their SHA-256 matches the one in stage.json.</summary>
    public void LoadWeights(string stageDir, nn.Module model)
    {
        var path = Path.Combine(stageDir, Weights);
        var redo = $"delete {stageDir} to train the stage again";
        if (WeightsSha256 is null)
            throw new WtnException($"{Path.Combine(stageDir, FileName)} records no SHA-256 of {Weights} (written by an older wtn), so it cannot be checked; {redo}");
        if (!File.Exists(path)) throw new WtnException($"{path} is missing; {redo}");
        if (Sha256Of(path) != WeightsSha256)
            throw new WtnException($"{path} is damaged (truncated or altered: its SHA-256 differs from the one in {FileName}); {redo}");
        model.load(path);
    }

    static string Sha256Of(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    public static List<CurvePoint> CurveOf(TrainingResult r) =>
        r.Epochs.Where(m => m.Kind == "epoch").Select(m => new CurvePoint(m.Epoch, m.TrainLoss, m.EvalTop1)).ToList();
}

public sealed record CurvePoint(int Epoch, double TrainLoss, double? EvalTop1);

/// <summary>One block's imitation: its loss in the first and last logged window of steps, every logged window, its time.</summary>
public sealed record BlockSummary(int Block, string Point, int WidePoint, double FirstLoss, double LastLoss, double Seconds, List<double> StepLosses);
