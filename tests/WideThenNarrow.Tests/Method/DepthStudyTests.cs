using System.Text.Json;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Reporting;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Method;

public class DepthStudyTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static TrainerSettings Recipe(long steps) =>
        new()
        {
            Optimizer = new OptimizerConfig
            {
                Name = OptimizerKind.AdamW,
                Lr = 3e-3,
                WeightDecay = 0,
            },
            Schedule = new ScheduleConfig { Name = ScheduleKind.Cosine },
            Steps = steps,
            Logging = new LoggingConfig { EverySteps = 10, Tensorboard = false },
            Checkpoint = new CheckpointConfig
            {
                EverySteps = 0,
                KeepLast = 1,
                KeepBest = false,
            },
        };

    /// <summary>experiments/depth-mlp.yaml with a budget of seconds: depths 2 and 4, a few steps, a small subset.</summary>
    static ExperimentConfig Tiny()
    {
        var c = ConfigLoader.Load<ExperimentConfig>(Path.Combine(TestData.RepoRoot, "experiments", "depth-mlp.yaml"));
        return c with
        {
            Name = "depth",
            Seeds = 1,
            Data = c.Data with { BatchSize = 50, EvalBatchSize = 200, TrainPerClass = 40, ValPerClass = 20 },
            DepthStudy = c.DepthStudy! with
            {
                Depths = [2, 4],
                Wide = Recipe(30),
                Imitation = Recipe(20),
                EndToEnd = Recipe(0),
            },
        };
    }

    [Fact]
    public void Runs_the_study_writes_its_report_and_imitation_beats_an_untrained_thin_network()
    {
        var runs = TestData.NewTempFolder("depth");
        try
        {
            var c = Tiny();
            var log = new List<string>();
            var result = new ExperimentRunner(
                c,
                runs,
                Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!,
                CPU,
                log: new Log(log)
            ).Run();
            foreach (var l in log)
                output.WriteLine(l);
            var dir = Path.Combine(runs, "depth");
            foreach (var f in new[] { "report.md", "results.json", DepthStudyReport.PlotFile })
                Assert.True(new FileInfo(Path.Combine(dir, f)).Length > 0, f);
            var study = result.DepthStudy!;
            Assert.Equal([2, 4], study.Depths);
            Assert.Equal(
                [DepthStudy.Untrained, "imitation_teacher", "imitation_student", DepthStudy.EndToEnd],
                study.Growth.Select(g => g.Arm)
            );
            foreach (var cell in study.Cells)
            {
                Assert.All(cell.Arms, a => Assert.All(a.Discrepancy, d => Assert.InRange(d, 0, 1e3)));
                Assert.All(cell.Arms, a => Assert.Equal(cell.Depth, a.Discrepancy.Count));
                double Top(string arm) => cell.Arms.Single(a => a.Arm == arm).Discrepancy[^1];
                Assert.True(
                    Top("imitation_teacher") < Top(DepthStudy.Untrained),
                    $"depth {cell.Depth}: {Top("imitation_teacher")} vs untrained {Top(DepthStudy.Untrained)}"
                );
                // The same total steps: depth x steps per block for end to end and for each imitation.
                Assert.All(cell.Arms.Where(a => a.Arm != DepthStudy.Untrained), a =>
                    Assert.Equal(cell.Depth * 20L, a.Steps)
                );
            }
            Assert.All(study.Growth, g => Assert.True(g.Slope is { } s && double.IsFinite(s)));
            using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json"))))
                Assert.Equal(4, json.RootElement.GetProperty("growth").GetArrayLength());
            Assert.Contains(
                "| growth: slope of ln discrepancy on ln depth",
                File.ReadAllText(Path.Combine(dir, "report.md"))
            );

            // Finished cells are not trained again.
            var again = new List<string>();
            new ExperimentRunner(
                c,
                runs,
                Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!,
                CPU,
                log: new Log(again)
            ).Run();
            Assert.Equal(2, again.Count(l => l.EndsWith("already done, skipped", StringComparison.Ordinal)));
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Theory]
    [InlineData("models.wide.widen=full=8", "models.wide.widen")]
    [InlineData("models.thin.name=cifar-resnet20", "models.thin.name")]
    [InlineData("depth_study.end_to_end.steps=100", "depth_study.end_to_end.steps")]
    [InlineData("depth_study.imitation.steps=0", "depth_study.imitation.steps")]
    public void Settings_the_study_cannot_honour_are_refused_naming_the_key(string set, string key)
    {
        var c = ConfigLoader.Load<ExperimentConfig>(
            Path.Combine(TestData.RepoRoot, "experiments", "depth-mlp.yaml"),
            [set]
        );
        var runs = TestData.NewTempFolder("depth-bad");
        try
        {
            var e = Assert.Throws<WtnException>(() =>
                new ExperimentRunner(c, runs, Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!, CPU).Run()
            );
            Assert.StartsWith(key, e.Message);
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }

    [Fact]
    public void Growth_is_the_slope_of_ln_discrepancy_on_ln_depth()
    {
        Assert.Equal(1.0, DepthStudyReport.LogLogFit([(2, 0.1), (4, 0.2), (8, 0.4)])!.Value.Slope, 12);
        Assert.Equal(2.0, DepthStudyReport.LogLogFit([(2, 1.0), (4, 4.0)])!.Value.Slope, 12);
        Assert.Null(DepthStudyReport.LogLogFit([(2, 1.0), (2, 3.0)]));
    }

    sealed class Log(List<string> lines) : IProgress<string>
    {
        public void Report(string value)
        {
            lock (lines)
                lines.Add(value);
        }
    }
}
