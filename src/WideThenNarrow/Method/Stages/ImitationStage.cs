using System.Text.Json;
using TorchSharp;
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
[StageOrder(20)]
public sealed class ImitationStage : ExperimentStage<ImitationStageConfig>
{
    public override string Name => "imitation";
    public override string Model => "thin";
    public override IReadOnlyList<string> StartsFrom => ["wide"];
    public override IReadOnlyList<string> Networks => ["thin", "wide"];
    public override IReadOnlyList<ReportRow> Rows => [new("thin: after imitation only", Model, ["wide", Name], 30)];

    public override ImitationStageConfig? Section(ExperimentConfig c) => c.Imitation;

    public override string? Invalid(ExperimentConfig c) =>
        c.Imitation is { BnRecalibrationBatches: < 0 } im
            ? $"imitation.bn_recalibration_batches must be 0 (off) or more, got {im.BnRecalibrationBatches}"
            : null;

    /// <summary>One run per unit: no run named "train" to measure its pace by (<see cref="PlannedStage.TrainCost"/> null).</summary>
    internal override PlannedStage Plan(SeedPlan p, ImitationStageConfig im) =>
        p.Add(this, Name, im, "imitation", Cost(p, im), () =>
        {
            var teacher = p.Wide();
            var thin = p.Ctx.Build("thin");
            return (thin, () => Run(p.Ctx, thin, teacher, im, p.Cancel));
        }) with
        {
            TrainCost = null,
            Units = UnitsIndependent(im) ? UnitCount(p, im) : 0,
            PrepareUnit = k =>
            {
                var teacher = p.Wide();
                var thin = p.Ctx.Build("thin");
                return (thin, () => RunUnit(p.Ctx, thin, teacher, im, k, p.Cancel));
            },
        };

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
        double wide = p.Size("wide").Blocks.Sum(b => (double)b.Macs),
            total = thin.Sum(),
            perStep = 0,
            steps = p.Steps(im.Train);
        double cached = 0;
        if (im.WideCacheMb > 0)
        {
            double perExample = p.Size("wide").Blocks.Sum(b => b.Shape.Aggregate(4.0, (a, d) => a * d));
            cached = Math.Min(
                1,
                im.WideCacheMb * (double)(1L << 20) / (steps * p.Ctx.TrainData.BatchSize * perExample)
            );
        }
        foreach (var u in LayerwiseImitation.Group(p.Size("thin").Blocks.Select(b => b.Name).ToList(), im.Unit))
        {
            double unit = thin.Skip(u.First).Take(u.Count).Sum(),
                end = thin.Take(u.Last + 1).Sum();
            bool teacherInput = im.Input == ImitationInput.Teacher && u.First > 0;
            bool earlierTrain = !teacherInput && im.EarlierBlocksLrFactor > 0;
            double wideForward = (u.First == 0 ? cached * wide : 0) + (1 - cached) * wide * end / total;
            perStep += wideForward + (teacherInput ? unit : end) + 2 * (earlierTrain ? end : unit);
        }
        return steps * perStep;
    }

    /// <summary>
    /// Whether the units can run as separate processes (a Slurm job array), each from the fresh thin network, with the
    /// result of one process: with teacher input a unit reads only the wide network and trains only its own blocks
    /// (and adapters), so no unit sees another's weights. Student input chains them; the wide activation cache is
    /// filled by the first unit for the others.
    /// </summary>
    public static bool UnitsIndependent(ImitationStageConfig c) =>
        c.Input == ImitationInput.Teacher && c.WideCacheMb == 0;

    /// <summary>The number of units the thin network imitates in (blocks, or stages of blocks), from its sizes alone.</summary>
    internal static int UnitCount(SeedPlan p, ImitationStageConfig c) =>
        LayerwiseImitation.Group(p.Size("thin").Blocks.Select(b => b.Name).ToList(), c.Unit).Count;

    /// <summary>The stage's state while its units train: the thin network with its adapters, the wide network, the plan.</summary>
    sealed class Units
    {
        public required StageContext Ctx { get; init; }
        public required LayerwiseImitation Li { get; init; }
        public required Dictionary<string, nn.Module> Modules { get; init; }
        public required ImitationStageConfig Config { get; init; }
        public string Dir => Ctx.StageDir("imitation");

        public string RunDir(int k) => Path.Combine(Dir, $"block-{k:D2}");
    }

    static Units Start(
        StageContext ctx,
        StagedModel thin,
        StagedModel wide,
        ImitationStageConfig c,
        IWideActivationSource? cache = null
    )
    {
        var li = new LayerwiseImitation(thin, wide, c, cache);
        li.Adapters.to(ctx.Device);
        if (li.Copied.Count > 0)
            ctx.Log?.Report(
                $"imitation: copied from the wide network instead of imitated: {string.Join(", ", li.Copied.Select(x => x.Name))}"
                    + (li.Units[0].First > 0 ? " (the whole of block 0, which is not imitated)" : "")
            );
        // A head tied to a block (masked-LM decoder = word embeddings) is seeded from the wide network before block 0
        // trains; a resumed run then restores the blocks' own checkpoints over it.
        if (c.CopyHead && HeadTransfer.CopyTiedIfShapesMatch(wide, thin) is > 0 and var tied)
            ctx.Log?.Report(
                $"imitation: {tied} head tensor(s) tied to a block copied from the wide network before imitation"
            );
        return new Units
        {
            Ctx = ctx,
            Li = li,
            Modules = new() { ["model"] = thin, ["adapters"] = li.Adapters },
            Config = c,
        };
    }

    /// <summary>Trains unit <paramref name="k"/> (resuming its own run) and writes its block.json.</summary>
    static BlockSummary TrainUnit(Units u, int k, CancellationToken cancel)
    {
        var (ctx, li, runDir) = (u.Ctx, u.Li, u.RunDir(k));
        var b = li.Unit(k);
        var r = ctx.Train(
            $"imitate {k + 1}/{li.UnitCount}",
            runDir,
            u.Modules,
            b.Groups,
            b.Objective,
            u.Config.Train,
            evaluate: false,
            evalOnly: [li.Wide],
            cancel: cancel
        );
        var steps = MetricsLog
            .ReadAll(Path.Combine(runDir, "metrics.jsonl"))
            .Where(m => m.Kind == "step")
            .Select(m => m.TrainLoss)
            .ToList();
        // First and last logged windows of steps show what the block's run achieved (an epoch may be longer than the run).
        var epochLoss = r.Last?.TrainLoss ?? double.NaN;
        var summary = new BlockSummary(
            k,
            b.PointName,
            li.Map[li.Units[k].Last],
            steps.Count > 0 ? steps[0] : epochLoss,
            steps.Count > 0 ? steps[^1] : epochLoss,
            r.WallTime.TotalSeconds,
            steps
        );
        WriteFailure.Replace(
            Path.Combine(runDir, "block.json"),
            tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(summary, StageContext.Json)),
            "free space on that disk and run the same command again (the block's last checkpoint is kept)"
        );
        return summary;
    }

    /// <summary>
    /// One unit of a stage whose units are independent (<see cref="UnitsIndependent"/>), on its own: a task of a Slurm
    /// job array. The stage itself (<see cref="Run"/>) then finds the unit done and takes its weights from its checkpoint.
    /// </summary>
    public static BlockSummary RunUnit(
        StageContext ctx,
        StagedModel thin,
        StagedModel wide,
        ImitationStageConfig c,
        int k,
        CancellationToken cancel
    )
    {
        if (!UnitsIndependent(c))
            throw new WtnException(
                "imitation: units run on their own only with input: teacher and wide_cache_mb: 0 (otherwise each unit needs the ones before it); run the whole stage"
            );
        var u = Start(ctx, thin, wide, c);
        if (k < 0 || k >= u.Li.UnitCount)
            throw new WtnException($"--unit {k}: stage 2 of this experiment has units 0 to {u.Li.UnitCount - 1}");
        return ReadBlock(Path.Combine(u.RunDir(k), "block.json"), ctx.Log) ?? TrainUnit(u, k, cancel);
    }

    /// <summary>
    /// Independent units: each unit's blocks (parameters and buffers, with its adapters) from the last checkpoint of its
    /// own run, whichever process trained it. The rest of the thin network (the head, untouched by any unit) is the
    /// same in every checkpoint.
    /// </summary>
    static void Assemble(Units u)
    {
        var li = u.Li;
        var saved = new List<(Tensor Into, Tensor Value)>();
        for (int k = 0; k < li.UnitCount; k++)
        {
            var ckpt = Trainer.LatestCheckpoint(u.RunDir(k))
                ?? throw new WtnException(
                    $"{u.RunDir(k)}: block {k} is marked done but has no checkpoint; delete that folder to rerun the block"
                );
            Trainer.LoadModules(ckpt, u.Modules);
            var r = li.Units[k];
            var own = Enumerable
                .Range(r.First, r.Count)
                .SelectMany(j => li.Thin.BlockModules(j))
                .SelectMany(m => m.parameters().Cast<Tensor>().Concat(m.buffers()))
                .Concat(r.Count == 1 ? li.Adapters.ParametersForBlock(r.First) : []);
            using (no_grad())
                foreach (var t in own)
                    saved.Add((t, t.detach().clone()));
        }
        using (no_grad())
            foreach (var (into, value) in saved)
            {
                into.copy_(value);
                value.Dispose();
            }
    }

    public static StageSummary Run(
        StageContext ctx,
        StagedModel thin,
        StagedModel wide,
        ImitationStageConfig c,
        CancellationToken cancel
    )
    {
        var dir = ctx.StageDir("imitation");
        var cacheDir = Path.Combine(dir, "wide-cache");
        var cache =
            c.WideCacheMb > 0 ? new DiskCachedWideActivations(wide, cacheDir, c.WideCacheMb * (1L << 20)) : null;
        var u = Start(ctx, thin, wide, c, cache);
        var li = u.Li;
        bool independent = UnitsIndependent(c);
        var blocks = new List<BlockSummary>();
        bool ranLast = false;
        for (int k = 0; k < li.UnitCount; k++)
        {
            if (ReadBlock(Path.Combine(u.RunDir(k), "block.json"), ctx.Log) is { } finished)
            {
                blocks.Add(finished);
                ranLast = false;
                continue;
            }
            if (!independent && k > 0 && !ranLast)
            {
                // Resuming after finished blocks: their weights live in the last finished block's checkpoint.
                var last = Trainer.LatestCheckpoint(u.RunDir(k - 1))
                    ?? throw new WtnException(
                        $"{dir}: block {k - 1} is marked done but has no checkpoint; delete {dir} to rerun stage 2"
                    );
                Trainer.LoadModules(last, u.Modules);
            }
            blocks.Add(TrainUnit(u, k, cancel));
            ranLast = true;
        }
        // Independent units may have been trained anywhere (a job array, an earlier process): each from its own run.
        if (independent)
            Assemble(u);
        else if (!ranLast && blocks.Count > 0)
        {
            // Every block was already done (the stage summary was lost): restore the final state.
            var last = Trainer.LatestCheckpoint(u.RunDir(li.UnitCount - 1))
                ?? throw new WtnException(
                    $"{dir}: blocks are marked done but the last has no checkpoint; delete {dir} to rerun stage 2"
                );
            Trainer.LoadModules(last, u.Modules);
        }
        li.Release();
        if (cache is not null)
        {
            ctx.Log?.Report(
                $"imitation: wide activation cache {cache.Hits} hits, {cache.Misses} misses, {cache.BytesUsed >> 20} MiB"
                    + (
                        cache.WriteFailed is { } why
                            ? $"; it stopped storing when a write failed ({why}), and the rest ran on the fly"
                            : ""
                    )
            );
            if (Directory.Exists(cacheDir))
                Directory.Delete(cacheDir, recursive: true);
        }
        bool headCopied = c.CopyHead && HeadTransfer.CopyIfShapesMatch(wide, thin);
        var fates = li.Adapters.MergeInto(thin);
        var (layers, batches) = BatchNormRecalibration.Run(thin, ctx.TrainData, ctx.Device, c.BnRecalibrationBatches);
        if (layers > 0)
            ctx.Log?.Report(
                $"imitation: recomputed the statistics of {layers} batch-norm layers from {batches} training batches"
            );
        // The warm start on its own: the thin network's validation top-1 right after stage 2, before any fine-tuning.
        thin.eval();
        var (_, warmTop1) = Trainer.Evaluate(ctx.Dataset.TaskObjective(thin), ctx.ValidationData, ctx.Device);
        thin.train();
        ctx.Log?.Report(
            $"imitation: thin network after stage 2, validation top-1 {(warmTop1 is { } w ? $"{100 * w:F2}%" : "n/a")}"
        );
        return new StageSummary
        {
            Stage = "imitation",
            Model = "thin",
            WallSeconds = blocks.Sum(b => b.Seconds),
            Blocks = blocks,
            Adapters = fates.ToList(),
            HeadCopied = c.CopyHead ? headCopied : null, // null: not attempted (copy_head: false)
            EmbeddingsCopied = li.Copied.Count > 0 ? [.. li.Copied.Select(x => x.Name)] : null,
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
        if (!File.Exists(path))
            return null;
        try
        {
            if (JsonSerializer.Deserialize<BlockSummary>(File.ReadAllText(path), StageContext.Json) is { } block)
                return block;
        }
        catch (JsonException) { }
        log?.Report($"imitation: {path} is unreadable; running the block again from its last checkpoint");
        return null;
    }
}
