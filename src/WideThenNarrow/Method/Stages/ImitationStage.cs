using TorchSharp;
using System.Text.Json;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method.Stages;

/// <summary>
/// Stage 2: one trainer run per thin block (imitation/block-KK/), stem first, bottom to top. A finished block
/// leaves block.json (an unreadable one reruns its block); after an interruption the finished blocks are skipped and the thin network (with its
/// adapters) is restored from the last finished block's checkpoint. Then the head is copied where shapes allow
/// (head tensors tied to a block, like a masked-LM decoder, are copied before the first block instead) and full-mode
/// adapter pairs are merged or dropped.
/// </summary>
public sealed class ImitationStage : ExperimentStage<ImitationStageConfig>
{
    public override string Name => "imitation";
    public override string Model => "thin";
    public override IReadOnlyList<string> StartsFrom => ["wide"];
    public override IReadOnlyList<string> Networks => ["thin", "wide"];
    public override IReadOnlyList<ReportRow> Rows => [new("thin: after imitation only", Model, ["wide", Name], 30)];
    public override ImitationStageConfig? Section(ExperimentConfig c) => c.Imitation;

    public override string? Invalid(ExperimentConfig c) => c.Imitation is { BnRecalibrationBatches: < 0 } im
        ? $"imitation.bn_recalibration_batches must be 0 (off) or more, got {im.BnRecalibrationBatches}" : null;

    /// <summary>One run per unit: no run named "train" to measure its pace by (<see cref="PlannedStage.TrainCost"/> null).</summary>
    internal override PlannedStage Plan(SeedPlan p, ImitationStageConfig im) =>
        p.Add(this, Name, im, "imitation", Cost(p, im), () =>
        {
            var teacher = p.Wide();
            var thin = p.Ctx.Build("thin");
            return (thin, () => Run(p.Ctx, thin, teacher, im, p.Cancel));
        }) with { TrainCost = null };

    /// <summary>
    /// Per unit's run: each step runs the wide network up to the unit's point (taken as the same share of its blocks'
    /// MACs as the thin network's up to there), the thin network up to the unit (only the unit with teacher input),
    /// and backward through the unit (2 x its MACs; through the earlier blocks too when they train). With
    /// wide_cache_mb, the share of the batches whose activations fit is run through the whole wide network once, by
    /// the first unit, and read from disk by the others.
    /// </summary>
    static double Cost(SeedPlan p, ImitationStageConfig im)
    {
        var thin = p.Size("thin").Blocks.Select(b => (double)b.Macs).ToList();
        double wide = p.Size("wide").Blocks.Sum(b => (double)b.Macs), total = thin.Sum(), perStep = 0, steps = p.Steps(im.Train);
        double cached = 0;
        if (im.WideCacheMb > 0)
        {
            double perExample = p.Size("wide").Blocks.Sum(b => b.Shape.Aggregate(4.0, (a, d) => a * d));
            cached = Math.Min(1, im.WideCacheMb * (double)(1L << 20) / (steps * p.Ctx.TrainData.BatchSize * perExample));
        }
        foreach (var u in LayerwiseImitation.Group(p.Size("thin").Blocks.Select(b => b.Name).ToList(), im.Unit))
        {
            double unit = thin.Skip(u.First).Take(u.Count).Sum(), end = thin.Take(u.Last + 1).Sum();
            bool teacherInput = im.Input == ImitationInput.Teacher && u.First > 0;
            bool earlierTrain = !teacherInput && im.EarlierBlocksLrFactor > 0;
            double wideForward = (u.First == 0 ? cached * wide : 0) + (1 - cached) * wide * end / total;
            perStep += wideForward + (teacherInput ? unit : end) + 2 * (earlierTrain ? end : unit);
        }
        return steps * perStep;
    }

    public static StageSummary Run(StageContext ctx, StagedModel thin, StagedModel wide, ImitationStageConfig c, CancellationToken cancel)
    {
        const string stage = "imitation";
        var dir = ctx.StageDir(stage);
        var cacheDir = Path.Combine(dir, "wide-cache");
        var cache = c.WideCacheMb > 0 ? new DiskCachedWideActivations(wide, cacheDir, c.WideCacheMb * (1L << 20)) : null;
        var li = new LayerwiseImitation(thin, wide, c, cache);
        li.Adapters.to(ctx.Device);
        var modules = new Dictionary<string, nn.Module> { ["model"] = thin, ["adapters"] = li.Adapters };
        // A head tied to a block (masked-LM decoder = word embeddings) is seeded from the wide network before block 0
        // trains; a resumed run then restores the blocks' own checkpoints over it.
        if (c.CopyHead && HeadTransfer.CopyTiedIfShapesMatch(wide, thin) is > 0 and var tied)
            ctx.Log?.Report($"imitation: {tied} head tensor(s) tied to a block copied from the wide network before imitation");
        var blocks = new List<BlockSummary>();
        TrainingResult? previous = null;
        for (int k = 0; k < li.UnitCount; k++)
        {
            var runDir = Path.Combine(dir, $"block-{k:D2}");
            var done = Path.Combine(runDir, "block.json");
            if (ReadBlock(done, ctx.Log) is { } finished)
            {
                blocks.Add(finished);
                previous = null;
                continue;
            }
            if (k > 0 && blocks.Count == k && previous is null)
            {
                // Resuming after finished blocks: their weights live in the last finished block's checkpoint.
                var last = Trainer.LatestCheckpoint(Path.Combine(dir, $"block-{k - 1:D2}"))
                           ?? throw new WtnException($"{dir}: block {k - 1} is marked done but has no checkpoint; delete {dir} to rerun stage 2");
                Trainer.LoadModules(last, modules);
            }
            var b = li.Unit(k);
            var r = ctx.Train($"imitate {k + 1}/{li.UnitCount}", runDir, modules, b.Groups, b.Objective, c.Train, evaluate: false, evalOnly: [wide], cancel: cancel);
            previous = r;
            var steps = MetricsLog.ReadAll(Path.Combine(runDir, "metrics.jsonl")).Where(m => m.Kind == "step").Select(m => m.TrainLoss).ToList();
            // First and last logged windows of steps show what the block's run achieved (an epoch may be longer than the run).
            var epochLoss = r.Last?.TrainLoss ?? double.NaN;
            var summary = new BlockSummary(k, b.PointName, li.Map[li.Units[k].Last], steps.Count > 0 ? steps[0] : epochLoss,
                steps.Count > 0 ? steps[^1] : epochLoss, r.WallTime.TotalSeconds, steps);
            WriteFailure.Replace(done, tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(summary, StageContext.Json)),
                "free space on that disk and run the same command again (the block's last checkpoint is kept)");
            blocks.Add(summary);
        }
        if (previous is null && blocks.Count > 0)
        {
            // Every block was already done (the stage summary was lost): restore the final state.
            var last = Trainer.LatestCheckpoint(Path.Combine(dir, $"block-{li.UnitCount - 1:D2}"))
                       ?? throw new WtnException($"{dir}: blocks are marked done but the last has no checkpoint; delete {dir} to rerun stage 2");
            Trainer.LoadModules(last, modules);
        }
        li.Release();
        if (cache is not null)
        {
            ctx.Log?.Report($"imitation: wide activation cache {cache.Hits} hits, {cache.Misses} misses, {cache.BytesUsed >> 20} MiB"
                + (cache.WriteFailed is { } why ? $"; it stopped storing when a write failed ({why}), and the rest ran on the fly" : ""));
            if (Directory.Exists(cacheDir)) Directory.Delete(cacheDir, recursive: true);
        }
        bool headCopied = c.CopyHead && HeadTransfer.CopyIfShapesMatch(wide, thin);
        var fates = li.Adapters.MergeInto(thin);
        var (layers, batches) = BatchNormRecalibration.Run(thin, ctx.TrainData, ctx.Device, c.BnRecalibrationBatches);
        if (layers > 0) ctx.Log?.Report($"imitation: recomputed the statistics of {layers} batch-norm layers from {batches} training batches");
        // The warm start on its own: the thin network's validation top-1 right after stage 2, before any fine-tuning.
        thin.eval();
        var (_, warmTop1) = Trainer.Evaluate(ctx.Dataset.TaskObjective(thin), ctx.ValidationData, ctx.Device);
        thin.train();
        ctx.Log?.Report($"imitation: thin network after stage 2, validation top-1 {(warmTop1 is { } w ? $"{100 * w:F2}%" : "n/a")}");
        return new StageSummary
        {
            Stage = stage,
            Model = "thin",
            WallSeconds = blocks.Sum(b => b.Seconds),
            Blocks = blocks,
            Adapters = fates.ToList(),
            HeadCopied = c.CopyHead ? headCopied : null, // null: not attempted (copy_head: false)
            ValBestTop1 = warmTop1,
            ValTop1 = warmTop1,
        };
    }

    /// <summary>
    /// A finished block's block.json, or null when the block is to run. An unreadable one (empty or cut short, as a
    /// crash before the file reached the disk can leave it despite the rename) marks the block as not finished: its run resumes from its last checkpoint, which
    /// already holds the whole run, and writes block.json again.
    /// </summary>
    static BlockSummary? ReadBlock(string path, IProgress<string>? log)
    {
        if (!File.Exists(path)) return null;
        try
        {
            if (JsonSerializer.Deserialize<BlockSummary>(File.ReadAllText(path), StageContext.Json) is { } block) return block;
        }
        catch (JsonException) { }
        log?.Report($"imitation: {path} is unreadable; running the block again from its last checkpoint");
        return null;
    }
}
