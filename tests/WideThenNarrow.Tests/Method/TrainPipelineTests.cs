using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Method;

/// <summary><c>wtn train</c>'s pipeline as a library call: progress through the interface, nothing on the console.</summary>
public sealed class TrainPipelineTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("train-pipeline");

    public void Dispose() => TestData.DeleteFolder(_dir);

    sealed class Collect : IProgress<TrainingProgress>
    {
        public readonly List<TrainingProgress> Reports = [];

        public void Report(TrainingProgress value)
        {
            lock (Reports)
                Reports.Add(value);
        }
    }

    [Fact]
    public void Trains_an_mlp_from_a_config_reports_progress_and_writes_the_final_network_without_printing()
    {
        TestData.Ensure("fashion-mnist");
        var cfg = ConfigLoader.Parse<TrainConfig>(
            "model: { name: mlp, width: 16, depth: 2 }\nepochs: 1\n",
            "t.yaml",
            [
                "data.train_per_class=8",
                "data.test_per_class=4",
                "data.val_per_class=4",
                "data.batch_size=40",
                "logging.tensorboard=false",
            ]
        );
        var progress = new Collect();
        var console = new StringWriter();
        var (stdout, stderr) = (Console.Out, Console.Error);
        Console.SetOut(console);
        Console.SetError(console);
        TrainingResult result;
        try
        {
            result = TrainPipeline.Run(
                cfg,
                TestData.DataDir,
                TorchSharp.torch.CPU,
                Path.Combine(_dir, "run"),
                resume: false,
                progress,
                CancellationToken.None
            );
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }

        Assert.Equal("", console.ToString());
        Assert.NotEmpty(progress.Reports);
        Assert.Equal(2, result.Steps); // 80 examples / 40
        Assert.InRange(result.TestTop1!.Value, 0, 1);
        // The dataset filled in what the config left to it: 10 classes, 1 x 28 x 28 flattened.
        var manifest = ModelExport.Verify(Path.Combine(result.RunDir, "final.json"));
        var built = ModelExport.ConfigOf(manifest, "final.json");
        Assert.Equal((10, 784), (built.Classes, built.InputDim));
        Assert.Equal(result.TestTop1, manifest.TestTop1);
    }
}
