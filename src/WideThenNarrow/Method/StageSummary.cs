using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using WideThenNarrow.Runtime;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// A finished stage, as written to STAGE/stage.json (its presence means "done": a rerun skips the stage whose
/// <see cref="Fingerprint"/> matches). Top-1 values are fractions: validation during the run (the curve, one point
/// per epoch of the stage's last run, and its best epoch), test once for the finished network.
/// </summary>
public sealed record StageSummary
{
    public required string Stage { get; init; }
    public required string Model { get; init; }
    public double WallSeconds { get; init; }

    /// <summary>Validation top-1 of the run's best epoch (the one best.ckpt holds).</summary>
    public double? ValBestTop1 { get; init; }

    /// <summary>Validation top-1 of the finished network (the last epoch's).</summary>
    public double? ValTop1 { get; init; }

    /// <summary>Test top-1 and loss of the finished network: the test split's one use.</summary>
    public double? TestTop1 { get; init; }
    public double? TestLoss { get; init; }

    /// <summary>
    /// Which test examples the finished network classified right, one bit each in the test split's order (bit i of byte
    /// i / 8), base64: McNemar's test compares two networks on them. Null for a masked LM.
    /// </summary>
    public string? TestCorrect { get; init; }

    /// <summary>Multiply-accumulates the stage's training took (forward and backward of what trains, forward of teachers).</summary>
    public double? TrainMacs { get; init; }

    public static string PackBits(bool[] bits)
    {
        var bytes = new byte[(bits.Length + 7) / 8];
        for (int i = 0; i < bits.Length; i++)
            if (bits[i])
                bytes[i >> 3] |= (byte)(1 << (i & 7));
        return Convert.ToBase64String(bytes);
    }

    /// <summary>The first <paramref name="count"/> bits of <see cref="PackBits"/>'s text.</summary>
    public static bool[] UnpackBits(string packed, int count)
    {
        var bytes = Convert.FromBase64String(packed);
        return [.. Enumerable.Range(0, count).Select(i => (bytes[i >> 3] & (1 << (i & 7))) != 0)];
    }

    /// <summary>SHA-256 of <see cref="Settings"/>: what determined the stage's result (<see cref="StageFingerprint"/>).</summary>
    public string? Fingerprint { get; init; }
    public SortedDictionary<string, string>? Settings { get; init; }
    public List<CurvePoint> Curve { get; init; } = [];

    /// <summary>Stage 2 only: every block's imitation run.</summary>
    public List<BlockSummary>? Blocks { get; init; }

    /// <summary>Stage 2, full widening: which adapter pairs were merged and which dropped.</summary>
    public List<AdapterFate>? Adapters { get; init; }
    public bool? HeadCopied { get; init; }

    /// <summary>Stage 2, transformers: the embeddings' tensors copied from the wide network instead of imitated (names within block 0).</summary>
    public List<string>? EmbeddingsCopied { get; init; }

    /// <summary>
    /// A downstream stage with several fine-tuning seeds or a learning-rate grid: every fine-tuning it ran, the losing
    /// learning rates' without test numbers (the stage's own top-level numbers, curve and weights are those of
    /// fine-tuning seed 0 at <see cref="ChosenLr"/>). Null for a stage that fine-tunes once.
    /// </summary>
    public List<FineTuneRun>? FineTunes { get; init; }

    /// <summary>The learning rate chosen on validation among the downstream grid (null: no grid, or not a downstream stage).</summary>
    public double? ChosenLr { get; init; }

    /// <summary>The stage's final weights (TorchSharp format), relative to the stage folder.</summary>
    public string Weights { get; init; } = "final.model";

    /// <summary>SHA-256 of <see cref="Weights"/> as written: a damaged file is refused wherever it is loaded.</summary>
    public string? WeightsSha256 { get; init; }

    /// <summary>
    /// Where the stage was trained: each distinct machine (CPU, instruction set, threads, library versions) of its
    /// training sessions (every sessions.jsonl under the stage folder: the first process and each resume), with how
    /// many sessions ran there, and the machine that finished it (tested and saved it) last if it trained nothing there.
    /// Null in stage.json files written before wtn recorded it.
    /// </summary>
    public List<MachineUse>? Machines { get; init; }

    public const string FileName = "stage.json";

    /// <summary>Whether the stage in <paramref name="stageDir"/> is finished (its stage.json exists).</summary>
    public static bool IsDone(string stageDir) => File.Exists(Path.Combine(stageDir, FileName));

    public static StageSummary? TryLoad(string stageDir)
    {
        if (!IsDone(stageDir))
            return null;
        var path = Path.Combine(stageDir, FileName);
        try
        {
            return JsonSerializer.Deserialize<StageSummary>(File.ReadAllText(path), StageContext.Json);
        }
        catch (JsonException e)
        {
            throw new WtnException($"{path} is corrupt ({e.Message}); delete it to rerun the stage", e);
        }
    }

    /// <summary>
    /// Saves the final weights, then the summary with their SHA-256 (last, so a crash in between reruns the stage);
    /// each through a temporary file renamed into place.
    /// </summary>
    public void Save(string stageDir, nn.Module model)
    {
        Directory.CreateDirectory(stageDir);
        const string advice =
            "free space on that disk and run the same command again (the stage's last checkpoint is kept)";
        string? sha = null;
        WriteFailure.Replace(
            Path.Combine(stageDir, Weights),
            tmp =>
            {
                model.save(tmp);
                sha = Sha256Of(tmp);
            },
            advice
        );
        var saved = this with { WeightsSha256 = sha, Machines = MachineUse.Of(stageDir) };
        WriteFailure.Replace(
            Path.Combine(stageDir, FileName),
            tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(saved, StageContext.Json)),
            advice
        );
    }

    /// <summary>Loads the stage's final weights into <paramref name="model"/> once their SHA-256 matches the one in stage.json.</summary>
    public void LoadWeights(string stageDir, nn.Module model)
    {
        var path = Path.Combine(stageDir, Weights);
        var redo = $"delete {stageDir} to train the stage again";
        if (WeightsSha256 is null)
            throw new WtnException(
                $"{Path.Combine(stageDir, FileName)} records no SHA-256 of {Weights}, so it cannot be checked; {redo}"
            );
        if (!File.Exists(path))
            throw new WtnException($"{path} is missing; {redo}");
        if (Sha256Of(path) != WeightsSha256)
            throw new WtnException(
                $"{path} is damaged (truncated or altered: its SHA-256 differs from the one in {FileName}); {redo}"
            );
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

/// <summary>
/// One fine-tuning of a downstream stage run in units (STAGE/ftK-lrLR/, its trainer run and unit.json): fine-tuning seed
/// <see cref="FineTuneSeed"/> (generator seed <see cref="Seed"/>) at learning rate <see cref="Lr"/>. Test numbers only
/// for the learning rate chosen on validation.
/// </summary>
public sealed record FineTuneRun
{
    public required int FineTuneSeed { get; init; }
    public required long Seed { get; init; }
    public required double Lr { get; init; }
    public double WallSeconds { get; init; }

    /// <summary>The best validation top-1 of the run's evaluated epochs: what the learning rate is chosen by.</summary>
    public double? ValBestTop1 { get; init; }
    public double? ValTop1 { get; init; }
    public List<CurvePoint> Curve { get; init; } = [];
    public double? TestTop1 { get; init; }
    public double? TestLoss { get; init; }

    /// <summary>Per test example, right or wrong (<see cref="StageSummary.PackBits"/>), for McNemar's test.</summary>
    public string? TestCorrect { get; init; }
}

/// <summary>One epoch: its mean training loss and its validation top-1.</summary>
public sealed record CurvePoint(int Epoch, double TrainLoss, double? ValTop1);

/// <summary>
/// One block's imitation: its loss in the first and last logged window of steps, every logged window (required when
/// read: empty when none was logged), its time.
/// </summary>
public sealed record BlockSummary(
    int Block,
    string Point,
    int WidePoint,
    double FirstLoss,
    double LastLoss,
    double Seconds,
    [property: JsonRequired] List<double> StepLosses
);

/// <summary>A machine a stage ran on (<see cref="StageSummary.Machines"/>) and how many of its training sessions ran there.</summary>
public sealed record MachineUse(Machine Machine, int Sessions)
{
    /// <summary>The machines of every training session under <paramref name="stageDir"/>, then this process's if new.</summary>
    public static List<MachineUse> Of(string stageDir)
    {
        var uses = SessionLog
            .ReadAll(stageDir)
            .GroupBy(s => s.Machine)
            .Select(g => new MachineUse(g.Key, g.Count()))
            .ToList();
        var here = Machine.Current();
        if (!uses.Any(u => u.Machine == here))
            uses.Add(new MachineUse(here, 0));
        return uses;
    }
}
