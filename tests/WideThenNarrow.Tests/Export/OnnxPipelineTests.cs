using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Export;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Tests.Cli;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Export;

/// <summary><c>wtn demo</c>'s pipeline (wide ResNet-20, imitation, fine-tuning) on a tiny subset, then <c>wtn export -o thin.onnx</c>.</summary>
[Collection("torch-rng")]
public class OnnxPipelineTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The demo's experiment with a few steps per stage and no baseline.</summary>
    internal static ExperimentConfig TinyDemo(string name)
    {
        var c = ExperimentConfig.Demo();
        static TrainerSettings Steps(TrainerSettings t, long steps) =>
            t with
            {
                Epochs = 0,
                Steps = steps,
                Eval = new EvalConfig { EveryEpochs = 0 },
            };
        return c with
        {
            Name = name,
            Data = c.Data with { TrainPerClass = 8, TestPerClass = 4, BatchSize = 40, EvalBatchSize = 40 },
            Wide = c.Wide! with { Train = Steps(c.Wide.Train, 4) },
            Imitation = c.Imitation! with
            {
                Train = Steps(c.Imitation.Train, 2),
                WideCacheMb = 0,
                BnRecalibrationBatches = 2,
            },
            Finetune = c.Finetune! with { Train = Steps(c.Finetune.Train, 4) },
            Standard = null,
            Report = c.Report with { LatencyRepeats = 2 },
        };
    }

    [Fact]
    public void The_demo_network_exports_to_onnx_and_onnx_runtime_gives_its_outputs()
    {
        var runs = TestData.NewTempFolder("onnx-demo");
        try
        {
            var runner = new ExperimentRunner(
                TinyDemo("onnx-demo"),
                runs,
                Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!,
                CPU
            );
            runner.Run();
            var onnx = Path.Combine(runs, "export", "thin.onnx");
            var manifest = runner.Exporter.Export("finetune", 0, onnx);
            Assert.Equal("thin.onnx", manifest.Onnx);
            Assert.Equal("thin.safetensors", manifest.Weights);
            var written = ModelExport.Verify(Path.Combine(runs, "export", "thin.json"));
            Assert.Equal(manifest.OnnxSha256, written.OnnxSha256);
            Assert.Equal(
                Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(onnx))),
                written.OnnxSha256
            );

            // As a user would: the manifest's network in TorchSharp against the graph in ONNX Runtime, on real test images.
            using var scope = NewDisposeScope();
            using var model = ModelExport.Load(Path.Combine(runs, "export", "thin.json"));
            using var source = new ImageBatchSource(
                TestData.FashionMnist,
                TestData.FashionMnist.Test,
                ImageLoaderOptions.Evaluation(16)
            );
            using var batch = source.Epoch(0, CPU).First();
            var diff = OnnxExport.MaxDifference(model, onnx, batch.Input);
            output.WriteLine($"thin ResNet-20 after the pipeline: max |ORT - TorchSharp| = {diff:G3}");
            Assert.InRange(diff, 0, OnnxExport.Tolerance);

            // The same through the CLI, then both engines timed on the export.
            var data = Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!;
            var cli = Path.Combine(runs, "cli", "thin.onnx");
            var (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 --data-dir \"{data}\" export \"{Path.Combine(runs, "onnx-demo")}\" -o \"{cli}\""
            );
            Assert.True(code == 0, stderr);
            Assert.Contains("ONNX Runtime gives TorchSharp's outputs", stdout);
            Assert.True(
                File.Exists(Path.ChangeExtension(cli, ".safetensors"))
                    && File.Exists(Path.ChangeExtension(cli, ".json"))
            );
            (code, _, stderr) = WtnProcess.Run(
                $"export \"{Path.Combine(runs, "onnx-demo")}\" -o \"{cli}\" --format pth"
            );
            Assert.Equal(2, code);
            Assert.Contains("--format pth", stderr);
            (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 bench inference \"{Path.ChangeExtension(cli, ".json")}\" --batch 1 --batch 4 --repeats 3 --json"
            );
            Assert.True(code == 0, stderr);
            var rows = System.Text.Json.JsonDocument.Parse(stdout).RootElement[0].GetProperty("latencies");
            Assert.Equal(4, rows.GetArrayLength());
            Assert.All(rows.EnumerateArray(), r => Assert.True(r.GetProperty("medianMs").GetDouble() > 0));
        }
        finally
        {
            TestData.DeleteFolder(runs);
        }
    }
}
