using System.Text.Json;
using WideThenNarrow.Tests.Cli;

namespace WideThenNarrow.Tests.Training;

/// <summary><c>wtn train</c> end to end on a small stratified slice of real Fashion-MNIST.</summary>
public sealed class TrainCommandTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("train-cli");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Args(string extra) =>
        $"train \"{Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-resnet20.yaml")}\" --data-dir \"{TestData.DataDir}\" " +
        $"--run-dir \"{Path.Combine(_dir, "run")}\" --threads 1 --set data.per_class_limit=8 --set data.eval_per_class_limit=4 " +
        $"--set data.batch_size=40 --set epochs=1 {extra}";

    [Fact]
    public void Trains_writes_the_run_folder_and_refuses_a_second_fresh_run()
    {
        TestData.Ensure("fashion-mnist");
        var (code, stdout, stderr) = WtnProcess.Run(Args(""));
        Assert.True(code == 0, stderr);
        Assert.Contains("eval top-1 last", stdout);
        var run = Path.Combine(_dir, "run");
        var rows = File.ReadAllLines(Path.Combine(run, "metrics.jsonl"));
        using var last = JsonDocument.Parse(rows[^1]);
        Assert.Equal("epoch", last.RootElement.GetProperty("kind").GetString());
        Assert.Equal(2, last.RootElement.GetProperty("step").GetInt64()); // 80 examples / 40
        Assert.InRange(last.RootElement.GetProperty("eval_top1").GetDouble(), 0, 1);
        Assert.Contains("batch_size: 40", File.ReadAllText(Path.Combine(run, "config.yaml")));
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "best.ckpt")));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(run, "tensorboard")));
        // The final network as PyTorch weights plus manifest: rebuilt from it, it is the last checkpoint's network.
        Assert.Contains("final weights: ", stdout);
        var manifest = WideThenNarrow.Models.ModelExport.Verify(Path.Combine(run, "final.json"));
        Assert.Equal(last.RootElement.GetProperty("eval_top1").GetDouble(), manifest.TestTop1Last);
        using (var back = WideThenNarrow.Models.ModelExport.Load(Path.Combine(run, "final.json")))
        using (var model = WideThenNarrow.Models.ModelFactory.Create(WideThenNarrow.Models.ModelExport.ConfigOf(manifest, "final.json")))
        using (TorchSharp.torch.no_grad())
        {
            var ckpt = Directory.GetFiles(Path.Combine(run, "checkpoints"), "step-*.ckpt").Order(StringComparer.Ordinal).Last();
            WideThenNarrow.Training.Trainer.LoadModules(ckpt, new Dictionary<string, TorchSharp.torch.nn.Module> { ["model"] = model });
            model.eval();
            var x = new WideThenNarrow.Models.ModelInput(TorchSharp.torch.randn(3, 1, 28, 28));
            Assert.True(back.call(x).eq(model.call(x)).all().item<bool>());
        }

        var again = WtnProcess.Run(Args(""));
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("--resume", again.Stderr);
    }

    [Fact]
    public void A_bad_override_is_one_line_with_the_closest_key()
    {
        var (code, _, stderr) = WtnProcess.Run(Args("--set optimizer.lrr=0.1"));
        Assert.Equal(2, code);
        Assert.Equal("wtn: error: --set optimizer.lrr=0.1: unknown key 'optimizer.lrr' (did you mean 'optimizer.lr'?)", stderr.Trim());
    }
}
