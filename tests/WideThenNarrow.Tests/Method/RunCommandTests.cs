using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Tests.Cli;

namespace WideThenNarrow.Tests.Method;

public class RunCommandTests
{
    [Fact]
    public void Shipped_experiment_file_loads_with_strict_keys()
    {
        var path = Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-resnet.yaml");
        var c = ConfigLoader.Load<ExperimentConfig>(path);
        Assert.Equal(3, c.Seeds);
        Assert.Equal("inner=4", c.Models.Wide.Widen);
        Assert.Equal("cifar-resnet56", c.Models.Deeper!.Name);
        Assert.NotNull(c.Standard);
        Assert.NotNull(c.Baseline<DistillStageConfig>("kd"));
        Assert.NotNull(c.Baseline<FitNetsStageConfig>("fitnets"));
        Assert.Equal(0, c.Imitation!.Train.Optimizer.WeightDecay);
        // Stages 2 + 3 make as many passes over the data as the standard baseline.
        Assert.Equal(c.Standard!.Train.Epochs, 10 * c.Imitation.Train.Epochs + c.Finetune!.Train.Epochs);
        var shrunk = ConfigLoader.Load<ExperimentConfig>(path, ["max_steps=5", "kd=null", "finetune.alpha=0.3"]);
        Assert.Equal(5, shrunk.MaxSteps);
        Assert.Null(shrunk.Baseline<DistillStageConfig>("kd"));
        Assert.Equal(0.3, shrunk.Finetune!.Alpha);

        var ablation = ConfigLoader.Load<ExperimentConfig>(
            Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-imitation-ablation.yaml"),
            ["imitation.unit=stage"]
        );
        Assert.Equal(ImitationInput.Student, ablation.Imitation!.Input);
        Assert.Equal(ImitationUnit.Stage, ablation.Imitation.Unit);
        Assert.Null(ablation.Finetune);
    }

    [Theory]
    [InlineData("--set imitation.inptu=student", "imitation.inptu")]
    [InlineData("--set imitation.input=sideways", "imitation.input")]
    [InlineData("--set imitation.bn_recalibration_batches=-1", "imitation.bn_recalibration_batches")]
    public void Bad_keys_and_values_fail_with_one_line_naming_them(string set, string named)
    {
        var path = Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-resnet.yaml");
        var (code, _, stderr) = WtnProcess.Run($"run {path} {set}");
        Assert.Equal(2, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(named, lines[0]);
    }

    [Fact]
    public void Report_of_an_experiment_that_never_ran_says_how_to_start_it()
    {
        var path = Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-resnet.yaml");
        var runs = TestData.NewTempFolder("noreport");
        try
        {
            var (code, _, stderr) = WtnProcess.Run($"report {path} --runs-dir {runs}");
            Assert.Equal(2, code);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("nothing has run yet", line);
            Assert.Contains("wtn run", line);
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }
}
