using System.Globalization;
using System.Text.Json;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method.Stages;

/// <summary>
/// Text experiments: a network pretrained by stage <c>S</c> (masked LM) is fine-tuned on the downstream task as
/// stage <c>downstream_S</c>: a fresh classification model of the same spec takes every encoder tensor of the
/// pretrained one (same HuggingFace name and shape; the pooler and classifier start fresh, as in BERT), then trains
/// with the standard recipe on the downstream data.
/// <para>
/// With <c>downstream.seeds</c> above 1 or a learning-rate grid (<c>downstream.lrs</c>) the stage runs in units, each
/// a fine-tuning of its own in STAGE/ftK-lrLR/ (a trainer run that resumes from its checkpoints, and unit.json when
/// finished): every lr of the grid on fine-tuning seed 0; the lr whose run has the best validation top-1 (its best
/// evaluated epoch's; ties: the smaller lr) is chosen; fine-tuning seeds 1 to N - 1 run at that lr only. Then the chosen lr's
/// networks, and only those, are tested (their test numbers join their unit.json). The stage's own weights and
/// top-level numbers are those of fine-tuning seed 0 at the chosen lr; <see cref="StageSummary.FineTunes"/> lists every run.
/// </para>
/// </summary>
public sealed class DownstreamStage(ExperimentStage pretraining) : ExperimentStage<DownstreamStageConfig>
{
    public const string Task = "IMDB";

    const string Prefix = "downstream_";

    /// <summary>A finished unit's record, in its folder beside the trainer's files.</summary>
    public const string UnitFile = "unit.json";

    /// <summary>Whether <paramref name="stage"/> is a downstream stage (downstream_S).</summary>
    public static bool IsDownstream(string stage) => stage.StartsWith(Prefix, StringComparison.Ordinal);

    public override string Name => Prefix + pretraining.Name;
    public override string Model => pretraining.Model;
    public override IReadOnlyList<string> StartsFrom => [pretraining.Name];

    public override IReadOnlyList<ReportRow> Rows =>
        [.. pretraining.Rows.Select(r => r with { Method = r.Method + RowSuffix(Task), Stages = [.. r.Stages, Name] })];

    /// <summary>What a downstream row adds to its pretrained row's name (the report puts the run's own task in).</summary>
    public static string RowSuffix(string task) => $", fine-tuned on {task}";

    public override DownstreamStageConfig? Section(ExperimentConfig c) => c.Downstream;

    public override bool IsDeclared(ExperimentConfig c) => c.Downstream is not null && pretraining.IsDeclared(c);

    public override string? Invalid(ExperimentConfig c) =>
        c is { Downstream: not null, Data.Text: null }
            ? "downstream fine-tunes pretrained text encoders: it needs data.text"
            : null;

    /// <summary>Whether each encoder is fine-tuned more than once (several seeds, or a learning-rate grid): the stage then runs in units.</summary>
    public static bool InUnits(DownstreamStageConfig c) => c.Seeds > 1 || c.Lrs.Count > 0;

    /// <summary>The learning rates fine-tuning seed 0 tries: the grid, or the optimizer's lr.</summary>
    public static IReadOnlyList<double> Grid(DownstreamStageConfig c) =>
        c.Lrs.Count > 0 ? c.Lrs : [c.Train.Optimizer.Lr];

    /// <summary>Fine-tunings per encoder: every lr of the grid on seed 0, then seeds 1 to N - 1 at the chosen one.</summary>
    public static int RunCount(DownstreamStageConfig c) => Grid(c).Count + c.Seeds - 1;

    /// <summary>
    /// The generator seed of fine-tuning seed <paramref name="k"/> under experiment seed <paramref name="seed"/>: the
    /// experiment seed itself for k = 0 (the one fine-tuning of a stage without fine-tuning seeds, so seed 0 is that
    /// same run), else <see cref="StageContext.InitSeed"/>(seed, "downstream-K"): the first 8 bytes of
    /// SHA-256("SEED/downstream-K"). The same for every encoder, so their fine-tunings pair seed by seed (same data
    /// order; same fresh pooler and classifier where the shapes agree).
    /// </summary>
    public static long FineTuneSeed(long seed, int k) =>
        k == 0 ? seed
        : k > 0 ? StageContext.InitSeed(seed, $"downstream-{k}")
        : throw new ArgumentOutOfRangeException(nameof(k), k, "fine-tuning seeds count from 0");

    /// <summary>The unit folder of fine-tuning seed <paramref name="k"/> at <paramref name="lr"/>, e.g. ft1-lr0.0002.</summary>
    public static string UnitName(int k, double lr) => $"ft{k}-lr{lr.ToString("R", CultureInfo.InvariantCulture)}";

    /// <summary>The pretrained network (from its finished stage's weights) fine-tuned with the one downstream recipe, once or in units.</summary>
    internal override PlannedStage Plan(SeedPlan p, DownstreamStageConfig ds)
    {
        double one = p.Cost(ds.Train, Model, on: p.Downstream());
        if (!InUnits(ds))
            return p.Add(this, "downstream", ds, $"downstream {Model}", one, () =>
            {
                var classifier = p.Downstream().Build(Model);
                return (classifier, () =>
                {
                    using var pretrained = p.Load(pretraining.Name, Model);
                    return Run(p.Downstream(), Name, Model, classifier, pretrained, ds, p.Cancel);
                });
            }) with { TestIn = p.Downstream };
        // One run per unit: no run named "train" to measure the stage's pace by (TrainCost null), as for stage 2.
        return p.Add(this, "downstream", ds, $"downstream {Model}", RunCount(ds) * one, () =>
        {
            var classifier = p.Downstream().Build(Model);
            return (classifier, () =>
            {
                using var pretrained = p.Load(pretraining.Name, Model);
                return RunUnits(p.Downstream(), Name, Model, classifier, pretrained, ds, p.Cancel);
            });
        }) with { TestIn = p.Downstream, TestsItself = true, TrainCost = null };
    }

    public static StageSummary Run(
        StageContext downstream,
        string stage,
        string modelKey,
        StagedModel classifier,
        StagedModel pretrained,
        DownstreamStageConfig c,
        CancellationToken cancel
    )
    {
        Transfer(stage, modelKey, pretrained, classifier);
        return StandardStage.Run(downstream, stage, modelKey, classifier, c.Train, cancel);
    }

    static void Transfer(string stage, string modelKey, StagedModel pretrained, StagedModel classifier)
    {
        if (CopyEncoder(pretrained, classifier) == 0)
            throw new WtnException(
                $"{stage}: the pretrained {modelKey} network shares no encoder tensor with its classifier; check models.{modelKey}"
            );
    }

    /// <summary>
    /// The stage in units (<see cref="InUnits"/>): the grid on fine-tuning seed 0, the choice, the other seeds at the
    /// chosen lr, the chosen lr's networks tested; finished units are read back, an interrupted one resumes. Leaves
    /// fine-tuning seed 0's network at the chosen lr in <paramref name="final"/>.
    /// </summary>
    public static StageSummary RunUnits(
        StageContext downstream,
        string stage,
        string modelKey,
        StagedModel final,
        StagedModel pretrained,
        DownstreamStageConfig c,
        CancellationToken cancel
    )
    {
        var dir = downstream.StageDir(stage);
        var runs = Grid(c).Select(lr => Unit(downstream, stage, modelKey, pretrained, c, 0, lr, cancel)).ToList();
        double chosen = Choose(runs);
        if (Grid(c).Count > 1)
            downstream.Log?.Report(
                $"{stage}: learning rate {chosen.ToString("R", CultureInfo.InvariantCulture)} chosen on validation (best-epoch top-1 "
                    + string.Join(
                        ", ",
                        runs.Select(r =>
                            $"{r.Lr.ToString("R", CultureInfo.InvariantCulture)}: {Percent(r.ValBestTop1)}"
                        )
                    )
                    + ")"
            );
        for (int k = 1; k < c.Seeds; k++)
            runs.Add(Unit(downstream, stage, modelKey, pretrained, c, k, chosen, cancel));
        // The test split, once per network of the chosen lr; the losing lrs' networks never see it.
        for (int i = 0; i < runs.Count; i++)
            if (runs[i].Lr == chosen && runs[i].TestTop1 is null)
                runs[i] = TestUnit(downstream, stage, modelKey, runs[i]);
        var first = runs.Single(r => r.FineTuneSeed == 0 && r.Lr == chosen);
        Trainer.LoadModules(
            Checkpoint(Path.Combine(dir, UnitName(0, chosen))),
            new Dictionary<string, nn.Module> { ["model"] = final }
        );
        return new StageSummary
        {
            Stage = stage,
            Model = modelKey,
            WallSeconds = runs.Sum(r => r.WallSeconds),
            ValBestTop1 = first.ValBestTop1,
            ValTop1 = first.ValTop1,
            Curve = first.Curve,
            TestTop1 = first.TestTop1,
            TestLoss = first.TestLoss,
            TestCorrect = first.TestCorrect,
            FineTunes = runs,
            ChosenLr = chosen,
        };
    }

    /// <summary>The lr of the fine-tuning-seed-0 run with the best validation top-1 (its best epoch's); ties, and runs without one, go to the smaller lr.</summary>
    public static double Choose(IReadOnlyList<FineTuneRun> seedZero)
    {
        if (seedZero.Count == 0)
            throw new ArgumentException("no run to choose from", nameof(seedZero));
        return seedZero.OrderByDescending(r => r.ValBestTop1 ?? double.NegativeInfinity).ThenBy(r => r.Lr).First().Lr;
    }

    static string Percent(double? top1) =>
        top1 is { } t ? (100 * t).ToString("F2", CultureInfo.InvariantCulture) + "%" : "n/a";

    /// <summary>One unit: read back when finished (its unit.json), else trained (from scratch, or resumed from its checkpoints).</summary>
    static FineTuneRun Unit(
        StageContext downstream,
        string stage,
        string modelKey,
        StagedModel pretrained,
        DownstreamStageConfig c,
        int k,
        double lr,
        CancellationToken cancel
    )
    {
        var runDir = Path.Combine(downstream.StageDir(stage), UnitName(k, lr));
        if (ReadUnit(runDir, downstream.Log) is { } done)
            return done;
        var ctx = downstream.WithSeed(FineTuneSeed(downstream.Seed, k));
        using var classifier = ctx.Build(modelKey);
        Transfer(stage, modelKey, pretrained, classifier);
        var settings = c.Train with { Optimizer = c.Train.Optimizer with { Lr = lr } };
        var r = ctx.Train(
            $"{stage} {UnitName(k, lr)}",
            runDir,
            new Dictionary<string, nn.Module> { ["model"] = classifier },
            [ParameterGroup.Of("model", classifier)],
            ctx.Dataset.TaskObjective(classifier),
            settings,
            evaluate: true,
            cancel: cancel
        );
        var run = new FineTuneRun
        {
            FineTuneSeed = k,
            Seed = ctx.Seed,
            Lr = lr,
            WallSeconds = r.WallTime.TotalSeconds,
            // The best of its evaluated epochs (an epoch left unevaluated by eval.every_epochs has none to compare).
            ValBestTop1 = r.Epochs.Where(m => m.Kind == "epoch").Select(m => m.EvalTop1).Max(),
            ValTop1 = r.Last?.EvalTop1,
            Curve = StageSummary.CurveOf(r),
        };
        WriteUnit(runDir, run);
        return run;
    }

    /// <summary>The unit's finished network (its last checkpoint) on the test split; the numbers are added to its unit.json.</summary>
    static FineTuneRun TestUnit(StageContext downstream, string stage, string modelKey, FineTuneRun run)
    {
        var runDir = Path.Combine(downstream.StageDir(stage), UnitName(run.FineTuneSeed, run.Lr));
        using var classifier = downstream.Build(modelKey);
        Trainer.LoadModules(Checkpoint(runDir), new Dictionary<string, nn.Module> { ["model"] = classifier });
        var (loss, top1, correct) = downstream.Test(classifier);
        var tested = run with
        {
            TestTop1 = top1,
            TestLoss = loss is { } l && double.IsFinite(l) ? l : null,
            TestCorrect = correct is null ? null : StageSummary.PackBits(correct),
        };
        WriteUnit(runDir, tested);
        return tested;
    }

    static string Checkpoint(string runDir) =>
        Trainer.LatestCheckpoint(runDir)
        ?? throw new WtnException(
            $"{runDir}: the fine-tuning is marked done but has no checkpoint; delete that folder to run it again"
        );

    static void WriteUnit(string runDir, FineTuneRun run) =>
        WriteFailure.Replace(
            Path.Combine(runDir, UnitFile),
            tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(run, StageContext.Json)),
            "free space on that disk and run the same command again (the fine-tuning's last checkpoint is kept)"
        );

    /// <summary>
    /// A finished unit's record, or null when the unit is to run. An unreadable one (a crash before it reached the
    /// disk) marks the unit unfinished: its run resumes from its last checkpoint, which holds the whole run.
    /// </summary>
    static FineTuneRun? ReadUnit(string runDir, IProgress<string>? log)
    {
        var path = Path.Combine(runDir, UnitFile);
        if (!File.Exists(path))
            return null;
        try
        {
            if (JsonSerializer.Deserialize<FineTuneRun>(File.ReadAllText(path), StageContext.Json) is { } run)
                return run;
        }
        catch (JsonException) { }
        log?.Report($"{path} is unreadable; running that fine-tuning again from its last checkpoint");
        return null;
    }

    /// <summary>
    /// Copies every tensor of <paramref name="from"/> whose name and shape <paramref name="to"/> also has. A masked-LM
    /// BERT and a classification BERT share exactly the encoder (bert.embeddings.*, bert.encoder.*): the heads are
    /// named cls.* and bert.pooler.* / classifier.*.
    /// </summary>
    public static int CopyEncoder(StagedModel from, StagedModel to)
    {
        var target = to.state_dict();
        int copied = 0;
        using var _ = no_grad();
        foreach (var (name, tensor) in from.state_dict())
        {
            if (!target.TryGetValue(name, out var dst) || !dst.shape.SequenceEqual(tensor.shape))
                continue;
            dst.copy_(tensor);
            copied++;
        }
        return copied;
    }
}
