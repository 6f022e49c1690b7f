using System.Diagnostics;
using TorchSharp.PyBridge;
using WideThenNarrow.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

/// <summary>
/// Weights cross the language boundary both ways: state_dicts saved here load strictly into torchvision /
/// a plain-torch BERT with HuggingFace's names (tests/python/peer.py) and give the same outputs, and the reverse.
/// </summary>
public class PyTorchPeerTests(ITestOutputHelper output)
{
    const string Python = "/usr/bin/python3";

    static readonly Lazy<string?> PeerProblem = new(() =>
    {
        try
        {
            var (code, _, err) = RunProcess(Python, "-c \"import torch, torchvision\"");
            return code == 0 ? null : $"{Python} cannot import torch/torchvision: {err.Trim()}";
        }
        catch (Exception e)
        {
            return $"{Python} not runnable: {e.Message}";
        }
    });

    /// <summary>
    /// The peer is optional on developer machines; without it the test says so and passes. Under CI (CI=true),
    /// where .ci/run installs the peer, a missing peer is a failure, so the round trip cannot silently go unchecked.
    /// </summary>
    internal static bool PeerAvailable(ITestOutputHelper output)
    {
        if (PeerProblem.Value is null)
            return true;
        if (Environment.GetEnvironmentVariable("CI") == "true")
            Assert.Fail(
                $"PyTorch peer unavailable under CI ({PeerProblem.Value}); .ci/run must install python3-torch python3-torchvision"
            );
        output.WriteLine(
            $"SKIPPED: PyTorch peer unavailable ({PeerProblem.Value}); install python3-torch python3-torchvision"
        );
        return false;
    }

    bool PeerAvailable() => PeerAvailable(output);

    /// <summary>Runs tests/python/peer.py with <paramref name="args"/> under the peer's Python.</summary>
    internal static (int Code, string Stdout, string Stderr) RunPeer(string args) =>
        RunProcess(Python, $"\"{PeerScript}\" {args}");

    static string PeerScript
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                var p = Path.Combine(d.FullName, "tests", "python", "peer.py");
                if (File.Exists(p))
                    return p;
            }
            throw new FileNotFoundException("tests/python/peer.py not found above the test binaries");
        }
    }

    static (int Code, string Stdout, string Stderr) RunProcess(string exe, string args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(300_000))
        {
            p.Kill(true);
            throw new TimeoutException($"{exe} {args}");
        }
        return (p.ExitCode, o.Result, e.Result);
    }

    (int Code, string Stdout, string Stderr) Peer(string mode, string spec, string weights, string io)
    {
        var r = RunProcess(Python, $"\"{PeerScript}\" {mode} {spec} \"{weights}\" \"{io}\"");
        output.WriteLine($"peer {mode} {spec}: exit {r.Code} {r.Stdout.Trim()} {r.Stderr.Trim()}");
        return r;
    }

    public static TheoryData<string, string> Models =>
        new()
        {
            { "resnet18", "resnet18:10" },
            { "bert-cls", "bert-cls:50:16:3" },
            { "bert-mlm", "bert-mlm:50:16" },
        };

    static ModelConfig Config(string key) =>
        key switch
        {
            "resnet18" => new ModelConfig { Name = "resnet18", Classes = 10 },
            "bert-cls" => new ModelConfig
            {
                Name = "bert-tiny",
                Vocab = 50,
                MaxPositions = 16,
                Classes = 3,
            },
            "bert-mlm" => new ModelConfig
            {
                Name = "bert-tiny",
                Vocab = 50,
                MaxPositions = 16,
                Head = BertHead.MaskedLm,
            },
            _ => throw new ArgumentException(key),
        };

    static ModelInput Input(string key)
    {
        if (key == "resnet18")
            return new ModelInput(randn(2, 3, 40, 40));
        var mask = ones(2, 9, dtype: ScalarType.Int64);
        mask[1, TensorIndex.Slice(7)] = tensor(0L);
        return new ModelInput(
            randint(0, 50, [2, 9]),
            mask,
            cat([zeros(2, 3, dtype: ScalarType.Int64), ones(2, 6, dtype: ScalarType.Int64)], 1)
        );
    }

    /// <summary>
    /// Training, not just inference, agrees with PyTorch: a masked-LM loss's gradient for every parameter of a BERT
    /// (the position embeddings included) equals autograd's in PyTorch on the same weights and batch.
    /// </summary>
    [Fact]
    public void A_masked_lm_step_gives_the_same_gradients_in_pytorch()
    {
        if (!PeerAvailable())
            return;
        using var scope = NewDisposeScope();
        manual_seed(7);
        using var model = ModelFactory.Create(Config("bert-mlm") with { Dropout = 0 });
        model.train();
        var input = Input("bert-mlm");
        var labels = full([2, 9], -100L, dtype: ScalarType.Int64);
        foreach (var (r, c) in new[] { (0, 2), (0, 5), (1, 1), (1, 4), (1, 6) })
            labels[r, c] = input.Input[r, c].clone();
        var logits = model.call(input);
        var loss = nn.functional.cross_entropy(logits.reshape(-1, 50), labels.reshape(-1), ignore_index: -100);
        loss.backward();

        var dir = Directory.CreateTempSubdirectory("wtn-peer-").FullName;
        try
        {
            var weights = Path.Combine(dir, "weights.pth");
            var io = Path.Combine(dir, "io.pth");
            Weights.Save(model, weights);
            var ioDict = new Dictionary<string, Tensor>
            {
                ["input"] = input.Input,
                ["attention_mask"] = input.AttentionMask!,
                ["token_type_ids"] = input.TokenTypeIds!,
                ["labels"] = labels,
                ["loss"] = loss.detach(),
            };
            foreach (var (name, p) in model.named_parameters())
                ioDict["grad." + name] = p.grad!;
            PyTorchPickler.PickleStateDict(io, ioDict);
            var (code, stdout, stderr) = Peer("grad", "bert-mlm:50:16", weights, io);
            Assert.True(code == 0, $"PyTorch's gradients differ or it failed: {stdout} {stderr}");
            Assert.Contains("max_rel_grad_diff", stdout);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Weights_saved_here_give_the_same_outputs_in_pytorch(string key, string spec)
    {
        if (!PeerAvailable())
            return;
        using var scope = NewDisposeScope();
        manual_seed(5);
        using var model = ModelFactory.Create(Config(key));
        var input = Input(key);
        // Two train-mode passes move the BatchNorm statistics away from their initial values.
        model.train();
        using (no_grad())
            for (int i = 0; i < 2; i++)
                model.call(key == "resnet18" ? new ModelInput(randn(4, 3, 40, 40) * 2 + 0.5) : input);
        model.eval();
        Tensor logits;
        using (no_grad())
            logits = model.call(input);

        var dir = Directory.CreateTempSubdirectory("wtn-peer-").FullName;
        try
        {
            var weights = Path.Combine(dir, "weights.pth");
            var io = Path.Combine(dir, "io.pth");
            Weights.Save(model, weights);
            var ioDict = new Dictionary<string, Tensor> { ["input"] = input.Input, ["output"] = logits };
            if (input.AttentionMask is not null)
            {
                ioDict["attention_mask"] = input.AttentionMask;
                ioDict["token_type_ids"] = input.TokenTypeIds!;
            }
            PyTorchPickler.PickleStateDict(io, ioDict);
            var (code, stdout, stderr) = Peer("check", spec, weights, io);
            Assert.True(code == 0, $"PyTorch disagrees or failed: {stdout} {stderr}");
            Assert.Contains("max_abs_diff", stdout);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Weights_saved_by_pytorch_give_the_same_outputs_here(string key, string spec)
    {
        if (!PeerAvailable())
            return;
        using var scope = NewDisposeScope();
        var dir = Directory.CreateTempSubdirectory("wtn-peer-").FullName;
        try
        {
            var weights = Path.Combine(dir, "weights.pth");
            var io = Path.Combine(dir, "io.pth");
            var (code, stdout, stderr) = Peer("export", spec, weights, io);
            Assert.True(code == 0, $"peer export failed: {stdout} {stderr}");
            using var model = ModelFactory.Create(Config(key));
            Weights.Load(model, weights);
            model.eval();
            var t = Weights.Read(io);
            var input = new ModelInput(
                t["input"],
                t.GetValueOrDefault("attention_mask"),
                t.GetValueOrDefault("token_type_ids")
            );
            using (no_grad())
            {
                var diff = (model.call(input) - t["output"]).abs().max().item<float>();
                output.WriteLine($"max_abs_diff {diff:g3}");
                Assert.True(diff <= 1e-5, $"max |difference| {diff} > 1e-5");
            }
            if (key == "resnet18")
                Assert.Equal(2L, model.state_dict()["layer3.1.bn2.num_batches_tracked"].item<long>());
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    public static TheoryData<string, string> Exported =>
        new()
        {
            { "cifar-resnet8 inner=2, option-A shortcuts, 1 channel", ".pth" },
            { "cifar-resnet8 full=2, projection shortcuts", ".safetensors" },
            { "cifar-resnet8 base width 4, inner=4", ".safetensors" },
            { "resnet18 inner=2", ".pth" },
            { "resnet50 (bottleneck)", ".safetensors" },
            { "mlp residual inner=2", ".safetensors" },
            { "mlp plain full=2", ".pth" },
            { "bert-tiny inner=2 (4 heads of 64 on hidden 128), classifier", ".safetensors" },
            { "bert-tiny inner=2 (2 heads of 128 on hidden 128), masked LM", ".safetensors" },
            { "bert-tiny masked LM, tied decoder", ".pth" },
        };

    static (ModelConfig Config, long[] Input) ExportCase(string name) =>
        name switch
        {
            "cifar-resnet8 inner=2, option-A shortcuts, 1 channel" => (
                new()
                {
                    Name = "cifar-resnet8",
                    Widen = Widening.Parse("inner=2"),
                    InputChannels = 1,
                },
                [2, 1, 28, 28]
            ),
            "cifar-resnet8 full=2, projection shortcuts" => (
                new()
                {
                    Name = "cifar-resnet8",
                    Widen = Widening.Parse("full=2"),
                    ProjectionShortcuts = true,
                },
                [2, 3, 32, 32]
            ),
            "cifar-resnet8 base width 4, inner=4" => (
                new()
                {
                    Name = "cifar-resnet8",
                    BaseWidth = 4,
                    Widen = Widening.Parse("inner=4"),
                },
                [2, 3, 32, 32]
            ),
            "resnet18 inner=2" => (
                new()
                {
                    Name = "resnet18",
                    Widen = Widening.Parse("inner=2"),
                    Classes = 7,
                },
                [2, 3, 40, 40]
            ),
            "resnet50 (bottleneck)" => (new() { Name = "resnet50", Classes = 5 }, [2, 3, 40, 40]),
            "mlp residual inner=2" => (
                new()
                {
                    Name = "mlp",
                    InputDim = 48,
                    Width = 16,
                    Depth = 3,
                    Residual = true,
                    Widen = Widening.Parse("inner=2"),
                },
                [2, 3, 4, 4]
            ),
            "mlp plain full=2" => (
                new()
                {
                    Name = "mlp",
                    InputDim = 48,
                    Width = 16,
                    Depth = 3,
                    Widen = Widening.Parse("full=2"),
                },
                [2, 3, 4, 4]
            ),
            "bert-tiny inner=2 (4 heads of 64 on hidden 128), classifier" => (
                new()
                {
                    Name = "bert-tiny",
                    Vocab = 50,
                    MaxPositions = 16,
                    Classes = 3,
                    Widen = Widening.Parse("inner=2"),
                    WidenHeads = HeadWidening.Count,
                },
                [2, 9]
            ),
            "bert-tiny inner=2 (2 heads of 128 on hidden 128), masked LM" => (
                new()
                {
                    Name = "bert-tiny",
                    Vocab = 50,
                    MaxPositions = 16,
                    Head = BertHead.MaskedLm,
                    Widen = Widening.Parse("inner=2"),
                },
                [2, 9]
            ),
            "bert-tiny masked LM, tied decoder" => (
                new()
                {
                    Name = "bert-tiny",
                    Vocab = 50,
                    MaxPositions = 16,
                    Head = BertHead.MaskedLm,
                },
                [2, 9]
            ),
            _ => throw new ArgumentException(name),
        };

    /// <summary>
    /// <c>wtn export</c>'s files: the manifest alone rebuilds the network, here (ModelExport.Load, bit for bit) and in plain
    /// PyTorch (python/wtn_models.py, to 1e-5), for both ResNet layouts, basic and bottleneck blocks, option-A and
    /// projection shortcuts, inner and full widening, both MLPs, and BERT with a classifier (inner widening: more heads
    /// than hidden / head size) or a tied masked-LM head; a damaged weights file is refused by its checksum.
    /// </summary>
    [Theory]
    [MemberData(nameof(Exported))]
    public void Exported_networks_rebuild_from_their_manifest_here_and_in_pytorch(string name, string extension)
    {
        using var scope = NewDisposeScope();
        var (config, shape) = ExportCase(name);
        manual_seed(8);
        using var model = ModelFactory.Create(config);
        bool text = config.Name.StartsWith("bert", StringComparison.Ordinal);
        model.train();
        if (!text)
            using (no_grad())
                for (int i = 0; i < 2; i++)
                    model.call(new ModelInput(randn([4, .. shape[1..]]) * 2 + 0.5));
        model.eval();
        var input = text ? Input("bert-cls") : new ModelInput(randn(shape));
        Tensor logits;
        using (no_grad())
            logits = model.call(input);

        var dir = Directory.CreateTempSubdirectory("wtn-export-").FullName;
        try
        {
            var weights = Path.Combine(dir, "net" + extension);
            var info = text
                ? new ExportInput { Kind = "tokens", MaxLength = 16 }
                : new ExportInput
                {
                    Kind = "image",
                    Shape = [.. shape[1..].Select(d => (int)d)],
                    Mean = [0.5f],
                    Std = [0.25f],
                };
            var manifest = ModelExport.Write(model, config, weights, info, "test");
            Assert.Equal(model.parameters().Sum(p => p.numel()), manifest.Parameters);
            var manifestPath = Path.Combine(dir, "net.json");
            Assert.True(File.Exists(manifestPath));
            Assert.Empty(Directory.GetFiles(dir, "*.tmp*"));

            using (var back = ModelExport.Load(manifestPath))
            using (no_grad())
                Assert.True(
                    back.call(input).eq(logits).all().item<bool>(),
                    "the network rebuilt from the manifest gives other outputs"
                );

            if (PeerAvailable())
            {
                var io = Path.Combine(dir, "io.pth");
                var ioDict = new Dictionary<string, Tensor> { ["input"] = input.Input, ["output"] = logits };
                if (input.AttentionMask is not null)
                {
                    ioDict["attention_mask"] = input.AttentionMask;
                    ioDict["token_type_ids"] = input.TokenTypeIds!;
                }
                PyTorchPickler.PickleStateDict(io, ioDict);
                var r = RunPeer($"manifest \"{manifestPath}\" \"{io}\"");
                output.WriteLine($"peer manifest {name}: exit {r.Code} {r.Stdout.Trim()} {r.Stderr.Trim()}");
                Assert.True(r.Code == 0, $"PyTorch disagrees or failed: {r.Stdout} {r.Stderr}");
            }

            // One flipped byte in the weights: refused by the checksum, naming the file.
            var bytes = File.ReadAllBytes(weights);
            bytes[^1] ^= 1;
            File.WriteAllBytes(weights, bytes);
            var e = Assert.Throws<WtnException>(() => ModelExport.Load(manifestPath));
            Assert.Contains("SHA-256", e.Message);
            Assert.Contains(weights, e.Message);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
