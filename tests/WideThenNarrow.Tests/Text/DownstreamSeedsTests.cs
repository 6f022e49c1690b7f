using System.Globalization;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Models;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Reporting;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Text;

/// <summary>
/// downstream.seeds and downstream.lrs on real text: tiny BERTs pretrained for a few steps on SOTU + Brown, then
/// fine-tuned on 40 IMDB reviews per class (validation 30, test 30 per class) with three fine-tuning seeds and a grid
/// of two learning rates.
/// </summary>
// Bit-exact comparisons need the global torch RNG to themselves: no test may draw from it concurrently.
[Collection("torch-rng")]
public class DownstreamSeedsTests(Xunit.Abstractions.ITestOutputHelper output)
{
    const double Low = 0.0002,
        High = 0.004;

    static string Yaml(string name, string downstream, int steps) =>
        """
            name: @name
            data:
              text: {vocab_size: 8000, pretrain_documents: 400, imdb_train_per_class: 40, imdb_test_per_class: 30, imdb_val_per_class: 30, max_length: 64, batch_size: 16, sequence_length: 64}
            models:
              thin: {name: bert, layers: 2, hidden: 32, heads: 2, intermediate: 64}
              wide: {name: bert, layers: 2, hidden: 32, heads: 2, intermediate: 64, widen: inner=2}
            wide: {train: {steps: 3, eval: {every_epochs: 1}, checkpoint: {every_steps: 0}, logging: {tensorboard: false}}}
            imitation: {train: {steps: 1, checkpoint: {every_steps: 0}, logging: {tensorboard: false}}}
            finetune: {train: {steps: 2, eval: {every_epochs: 1}, checkpoint: {every_steps: 0}, logging: {tensorboard: false}}}
            standard: {train: {steps: 3, eval: {every_epochs: 1}, checkpoint: {every_steps: 0}, logging: {tensorboard: false}}}
            downstream:
              @downstream
              train: {optimizer: {name: adam_w, lr: @lr, weight_decay: 0.01}, steps: @steps, eval: {every_epochs: 2}, checkpoint: {every_steps: 0}, logging: {every_steps: 5, tensorboard: false}}
            report: {latency_repeats: 1}
            """.Replace("@name", name).Replace("@downstream", downstream).Replace(
            "@lr",
            Low.ToString("R", CultureInfo.InvariantCulture)
        ).Replace("@steps", steps.ToString(CultureInfo.InvariantCulture));

    const string Study = "seeds: 3\n  lrs: [0.0002, 0.004]";

    /// <summary>
    /// 40 fine-tuning steps (8 epochs of 5 batches) are enough for the larger lr to beat the smaller one on validation
    /// (about 58 % against 50 %, a constant prediction), so the choice is not a tie; the resume test needs no learning.
    /// </summary>
    static ExperimentConfig Config(string name, string downstream, int steps = 40) =>
        ConfigLoader.Parse<ExperimentConfig>(Yaml(name, downstream, steps), $"{name}.yaml");

    static ExperimentRunner Runner(
        ExperimentConfig c,
        string runs,
        IProgress<TrainingProgress>? progress = null,
        List<string>? log = null
    )
    {
        TestData.Ensure("sotu");
        TestData.Ensure("brown");
        TestData.Ensure("imdb");
        return new ExperimentRunner(
            c,
            runs,
            TestData.DataDir,
            CPU,
            progress,
            log is null ? null : new WideThenNarrow.Tests.Method.ExperimentRunnerTests.ListLog(log)
        );
    }

    /// <summary>The module weights of a unit's last checkpoint (its finished network).</summary>
    static Dictionary<string, Tensor> UnitWeights(ExperimentConfig c, string stageDir, string unit)
    {
        using var data = ExperimentDatasets.Load(c.Data, TestData.DataDir);
        var model = ModelFactory.Create(
            ((MaskedLmExperimentDataset)data).Downstream().ModelConfig(c.Models.Thin, "thin")
        );
        Trainer.LoadModules(
            Trainer.LatestCheckpoint(Path.Combine(stageDir, unit))!,
            new Dictionary<string, nn.Module> { ["model"] = model }
        );
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
    }

    static Dictionary<string, Tensor> FinalWeights(ExperimentConfig c, string stageDir)
    {
        using var data = ExperimentDatasets.Load(c.Data, TestData.DataDir);
        var model = ModelFactory.Create(
            ((MaskedLmExperimentDataset)data).Downstream().ModelConfig(c.Models.Thin, "thin")
        );
        StageSummary.TryLoad(stageDir)!.LoadWeights(stageDir, model);
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
    }

    static bool Same(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b) =>
        a.Count == b.Count && a.All(kv => WideThenNarrow.Tests.Method.TestSteps.BitIdentical(kv.Value, b[kv.Key]));

    [Fact]
    public void Seeds_and_a_learning_rate_grid_fine_tune_in_units_choose_on_validation_and_test_only_the_chosen_lr()
    {
        var runs = TestData.NewTempFolder("downstream-seeds");
        try
        {
            var c = Config("units", Study);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var log = new List<string>();
            var result = Runner(c, runs, log: log).Run();
            output.WriteLine($"units run: {clock.Elapsed.TotalSeconds:F1} s");
            foreach (var l in log)
                output.WriteLine(l);
            var seedDir = Path.Combine(runs, "units", "seed-0");
            var byStage = new Dictionary<string, StageSummary>();
            foreach (var stage in new[] { "downstream_finetune", "downstream_standard" })
            {
                var s = byStage[stage] = StageSummary.TryLoad(Path.Combine(seedDir, stage))!;
                var runsOf = s.FineTunes!;
                // Both lrs on fine-tuning seed 0, then seeds 1 and 2 at the chosen lr: five fine-tunings would be 3 + 2;
                // with two lrs, 2 + 2.
                Assert.Equal(4, runsOf.Count);
                var seedZero = runsOf.Where(r => r.FineTuneSeed == 0).ToList();
                Assert.Equal([Low, High], seedZero.Select(r => r.Lr));
                foreach (var r in seedZero)
                    output.WriteLine($"{stage} lr {r.Lr}: best validation top-1 {r.ValBestTop1:P2}");
                // The chosen lr is the best validation top-1 of its best epoch (ties: the smaller lr), from the runs' own metrics.
                double BestEpoch(double lr) =>
                    MetricsLog
                        .ReadAll(Path.Combine(seedDir, stage, DownstreamStage.UnitName(0, lr), "metrics.jsonl"))
                        .Where(m => m.Kind == "epoch" && m.EvalTop1 is not null)
                        .Max(m => m.EvalTop1!.Value);
                double expected = BestEpoch(High) > BestEpoch(Low) ? High : Low;
                Assert.Equal(expected, s.ChosenLr);
                Assert.Contains(log, l =>
                    l.StartsWith(
                        $"{stage}: learning rate {ExperimentReport.Lr(expected)} chosen on validation",
                        StringComparison.Ordinal
                    )
                );
                Assert.Equal([1, 2], runsOf.Where(r => r.FineTuneSeed > 0).Select(r => r.FineTuneSeed));
                Assert.All(runsOf.Where(r => r.FineTuneSeed > 0), r => Assert.Equal(expected, r.Lr));
                // The losing lr never saw the test split; every network of the chosen one did, once.
                var losing = seedZero.Single(r => r.Lr != expected);
                Assert.Null(losing.TestTop1);
                Assert.Null(losing.TestCorrect);
                Assert.NotNull(losing.ValBestTop1);
                Assert.All(runsOf.Where(r => r.Lr == expected), r =>
                {
                    Assert.InRange(r.TestTop1!.Value, 0, 1);
                    Assert.Equal(60, StageSummary.UnpackBits(r.TestCorrect!, 60).Length);
                    Assert.Equal(
                        r.TestTop1.Value,
                        StageSummary.UnpackBits(r.TestCorrect!, 60).Count(x => x) / 60.0,
                        12
                    );
                });
                // Each unit is its own resumable run with its own done marker.
                foreach (var r in runsOf)
                {
                    var unitDir = Path.Combine(seedDir, stage, DownstreamStage.UnitName(r.FineTuneSeed, r.Lr));
                    Assert.True(File.Exists(Path.Combine(unitDir, DownstreamStage.UnitFile)), unitDir);
                    Assert.NotNull(Trainer.LatestCheckpoint(unitDir));
                }
                Assert.False(Directory.Exists(Path.Combine(seedDir, stage, "train")));
                // The stage's own numbers and weights are fine-tuning seed 0's at the chosen lr.
                var first = runsOf.Single(r => r.FineTuneSeed == 0 && r.Lr == expected);
                Assert.Equal(
                    (first.TestTop1, first.TestCorrect, first.ValBestTop1),
                    (s.TestTop1, s.TestCorrect, s.ValBestTop1)
                );
                Assert.True(
                    Same(
                        FinalWeights(c, Path.Combine(seedDir, stage)),
                        UnitWeights(c, Path.Combine(seedDir, stage), DownstreamStage.UnitName(0, expected))
                    )
                );
            }

            // Fine-tuning seeds: their own generator seeds, derived from the experiment seed and k alone (so the same for
            // both encoders, which pair by them), seed 0 being the experiment seed; and different networks.
            var seeds = byStage["downstream_finetune"]
                .FineTunes!.Select(r => (r.FineTuneSeed, r.Seed))
                .Distinct()
                .ToList();
            Assert.Equal(
                [(0, 0L), (1, DownstreamStage.FineTuneSeed(0, 1)), (2, DownstreamStage.FineTuneSeed(0, 2))],
                seeds
            );
            Assert.Equal(3, seeds.Select(x => x.Seed).Distinct().Count());
            Assert.Equal(
                seeds,
                byStage["downstream_standard"].FineTunes!.Select(r => (r.FineTuneSeed, r.Seed)).Distinct()
            );
            var chosen = byStage["downstream_finetune"].ChosenLr!.Value;
            var dir = Path.Combine(seedDir, "downstream_finetune");
            var nets = Enumerable
                .Range(0, 3)
                .Select(k => UnitWeights(c, dir, DownstreamStage.UnitName(k, chosen)))
                .ToList();
            for (int i = 0; i < 3; i++)
            for (int j = i + 1; j < 3; j++)
            {
                Assert.False(
                    WideThenNarrow.Tests.Method.TestSteps.BitIdentical(
                        nets[i]["classifier.weight"],
                        nets[j]["classifier.weight"]
                    ),
                    $"fine-tuning seeds {i} and {j}: same classifier"
                );
                Assert.False(
                    WideThenNarrow.Tests.Method.TestSteps.BitIdentical(
                        nets[i]["bert.encoder.layer.0.attention.self.query.weight"],
                        nets[j]["bert.encoder.layer.0.attention.self.query.weight"]
                    ),
                    $"fine-tuning seeds {i} and {j}: same encoder after fine-tuning"
                );
            }

            // The report: test top-1 over the three fine-tuning seeds, the lr chosen and each lr's validation top-1, and
            // the encoders compared pair by pair of fine-tuning seeds.
            var row = result.Methods.Single(m => m.Stages[^1] == "downstream_finetune");
            var tested = byStage["downstream_finetune"]
                .FineTunes!.Where(r => r.Lr == chosen)
                .Select(r => r.TestTop1)
                .ToList();
            Assert.Equal(3, row.TestTop1!.N);
            Assert.Equal(Stat.Of(tested)!, row.TestTop1);
            Assert.Equal(3, row.Downstream!.FineTuneSeeds);
            Assert.Equal([chosen], row.Downstream.ChosenLrs);
            Assert.Equal([Low, High], row.Downstream.Lrs.Select(t => t.Lr));
            Assert.Equal([chosen == Low ? 1 : 0, chosen == High ? 1 : 0], row.Downstream.Lrs.Select(t => t.Chosen));
            var vs = result.Comparisons.Single(x => x.Method == row.Method);
            Assert.Equal("thin: standard, fine-tuned on IMDB", vs.Against);
            Assert.Equal("fine-tuning seed", vs.PairedBy);
            var theirs = byStage["downstream_standard"]
                .FineTunes!.Where(r => r.Lr == byStage["downstream_standard"].ChosenLr)
                .OrderBy(r => r.FineTuneSeed)
                .ToList();
            var mine = byStage["downstream_finetune"]
                .FineTunes!.Where(r => r.Lr == chosen)
                .OrderBy(r => r.FineTuneSeed)
                .ToList();
            var t = Statistics.PairedT(
                [.. mine.Select(r => r.TestTop1!.Value)],
                [.. theirs.Select(r => r.TestTop1!.Value)]
            );
            Assert.Equal(t, vs.TTest);
            Assert.Equal(3, vs.Difference.N);
            long b = 0,
                cc = 0;
            foreach (var (x, y) in mine.Zip(theirs))
            {
                var (bx, by) = (
                    StageSummary.UnpackBits(x.TestCorrect!, 60),
                    StageSummary.UnpackBits(y.TestCorrect!, 60)
                );
                b += bx.Zip(by).Count(p => p.First && !p.Second);
                cc += bx.Zip(by).Count(p => !p.First && p.Second);
            }
            Assert.Equal((b, cc), (vs.McNemar!.B, vs.McNemar.C));
            var report = File.ReadAllText(Path.Combine(runs, "units", "report.md"));
            output.WriteLine(report);
            Assert.Contains("## Downstream fine-tuning", report);
            Assert.Contains(
                $"| val top-1 at lr {ExperimentReport.Lr(Low)} | val top-1 at lr {ExperimentReport.Lr(High)} | fine-tunings tested | test top-1 |",
                report
            );
            Assert.Contains($"| {row.Method} | {ExperimentReport.Lr(chosen)} | ", report);
            Assert.Contains(
                $" of 3 fine-tuning seed(s) | {(t.P < 0.001 ? "< 0.001" : t.P.ToString("F3", CultureInfo.InvariantCulture))} |",
                report
            );
            // results.json holds the same: the row's choice and every fine-tuning.
            using var json = System.Text.Json.JsonDocument.Parse(
                File.ReadAllText(Path.Combine(runs, "units", "results.json"))
            );
            var jsonRow = json
                .RootElement.GetProperty("methods")
                .EnumerateArray()
                .Single(m => m.GetProperty("method").GetString() == row.Method);
            Assert.Equal(chosen, jsonRow.GetProperty("downstream").GetProperty("chosen_lrs")[0].GetDouble());
            Assert.Equal(2, jsonRow.GetProperty("downstream").GetProperty("lrs").GetArrayLength());
            Assert.Equal(
                "fine-tuning seed",
                json.RootElement.GetProperty("comparisons")
                    .EnumerateArray()
                    .Single(x => x.GetProperty("method").GetString() == row.Method)
                    .GetProperty("paired_by")
                    .GetString()
            );

            // A rerun finds every unit and stage done.
            log.Clear();
            Runner(c, runs, log: log).Run();
            Assert.Equal(6, log.Count(l => l.Contains("already done")));

            // Without the keys the stage is today's one fine-tuning (downstream_S/train), and fine-tuning seed 0 at
            // the optimizer's lr is that very run: the same weights.
            var legacy = Config("legacy", "");
            Runner(legacy, runs).Run();
            var legacyDir = Path.Combine(runs, "legacy", "seed-0", "downstream_finetune");
            var old = StageSummary.TryLoad(legacyDir)!;
            Assert.Null(old.FineTunes);
            Assert.True(Directory.Exists(Path.Combine(legacyDir, "train")));
            Assert.True(Same(FinalWeights(legacy, legacyDir), UnitWeights(c, dir, DownstreamStage.UnitName(0, Low))));
            // The stage's training compute counts all four fine-tunings.
            Assert.Equal(4 * old.TrainMacs!.Value, byStage["downstream_finetune"].TrainMacs!.Value, 6);
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void An_interrupted_fine_tuning_resumes_to_the_same_weights_and_numbers()
    {
        var runs = TestData.NewTempFolder("downstream-resume");
        try
        {
            var c = Config("resume", Study, steps: 10);
            Runner(c with { Name = "straight" }, runs).Run();
            var straight = Path.Combine(runs, "straight", "seed-0");
            double chosen = StageSummary.TryLoad(Path.Combine(straight, "downstream_standard"))!.ChosenLr!.Value;
            // Stopped in the grid (fine-tuning seed 0 at the second lr), then among the other seeds at the chosen lr.
            foreach (
                var (stage, step) in new[]
                {
                    ($"downstream_finetune {DownstreamStage.UnitName(0, High)}", 3L),
                    ($"downstream_standard {DownstreamStage.UnitName(2, chosen)}", 5L),
                }
            )
            {
                using var cts = new CancellationTokenSource();
                var stopper = new WideThenNarrow.Tests.Method.ExperimentRunnerTests.StopAt(stage, step, cts);
                Assert.ThrowsAny<OperationCanceledException>(() => Runner(c, runs, stopper).Run(cancel: cts.Token));
                Assert.True(stopper.Fired, stage);
            }
            var log = new List<string>();
            Runner(c, runs, log: log).Run();
            Assert.Contains(log, l =>
                l.StartsWith(
                    $"downstream_standard {DownstreamStage.UnitName(2, chosen)}: resuming",
                    StringComparison.Ordinal
                )
            );
            var resumed = Path.Combine(runs, "resume", "seed-0");
            foreach (var stage in new[] { "downstream_finetune", "downstream_standard" })
            {
                var a = StageSummary.TryLoad(Path.Combine(straight, stage))!;
                var b = StageSummary.TryLoad(Path.Combine(resumed, stage))!;
                Assert.Equal(a.ChosenLr, b.ChosenLr);
                Assert.Equal(
                    a.FineTunes!.Select(r =>
                        (r.FineTuneSeed, r.Lr, r.ValBestTop1, r.ValTop1, r.TestTop1, r.TestLoss, r.TestCorrect)
                    ),
                    b.FineTunes!.Select(r =>
                        (r.FineTuneSeed, r.Lr, r.ValBestTop1, r.ValTop1, r.TestTop1, r.TestLoss, r.TestCorrect)
                    )
                );
                foreach (var r in a.FineTunes!)
                {
                    var unit = DownstreamStage.UnitName(r.FineTuneSeed, r.Lr);
                    Assert.True(
                        Same(
                            UnitWeights(c, Path.Combine(straight, stage), unit),
                            UnitWeights(c, Path.Combine(resumed, stage), unit)
                        ),
                        $"{stage}/{unit}"
                    );
                }
                Assert.True(
                    Same(FinalWeights(c, Path.Combine(straight, stage)), FinalWeights(c, Path.Combine(resumed, stage))),
                    stage
                );
            }
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void The_best_validation_top_1_chooses_and_a_tie_goes_to_the_smaller_lr()
    {
        static FineTuneRun Run(double lr, double? val) =>
            new()
            {
                FineTuneSeed = 0,
                Seed = 0,
                Lr = lr,
                ValBestTop1 = val,
            };
        Assert.Equal(2e-4, DownstreamStage.Choose([Run(1e-4, 0.80), Run(2e-4, 0.85), Run(5e-4, 0.84)]));
        Assert.Equal(1e-4, DownstreamStage.Choose([Run(5e-4, 0.85), Run(2e-4, 0.85), Run(1e-4, 0.85)]));
        Assert.Equal(5e-4, DownstreamStage.Choose([Run(1e-4, null), Run(5e-4, 0.5)]));
        Assert.Equal(1e-4, DownstreamStage.Choose([Run(5e-4, null), Run(1e-4, null)]));
    }

    [Fact]
    public void Fine_tuning_seed_0_is_the_experiment_seed_and_the_others_differ_from_every_seed_and_key()
    {
        Assert.Equal(7, DownstreamStage.FineTuneSeed(7, 0));
        var derived = new[] { 0L, 1L, 7L }
            .SelectMany(s => Enumerable.Range(1, 4).Select(k => DownstreamStage.FineTuneSeed(s, k)))
            .ToList();
        Assert.Equal(derived.Count, derived.Distinct().Count());
        Assert.All(derived, s => Assert.True(s >= 0));
        Assert.DoesNotContain(StageContext.InitSeed(0, "thin"), derived);
        Assert.Equal(DownstreamStage.FineTuneSeed(3, 2), DownstreamStage.FineTuneSeed(3, 2));
    }
}
