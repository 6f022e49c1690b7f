using System.Diagnostics;
using System.Text.Json.Nodes;
using WideThenNarrow.Models;
using WideThenNarrow.Tests.Cli;

namespace WideThenNarrow.Tests.Models;

/// <summary>
/// A manifest (NAME.json beside exported weights) may come from anywhere: its sizes are bounded before anything is
/// allocated, and the files it names must be regular files inside its folder unless the caller allows otherwise.
/// </summary>
public sealed class UntrustedManifestTests : IDisposable
{
    readonly string dir = TestData.NewTempFolder("untrusted-manifest");
    readonly string manifest;
    readonly long stateBytes;

    public UntrustedManifestTests()
    {
        var config = new ModelConfig
        {
            Name = "mlp",
            InputDim = 4,
            Width = 8,
            Depth = 2,
            Classes = 3,
        };
        using var model = ModelFactory.Create(config);
        stateBytes = model.state_dict().Values.Sum(t => t.numel() * t.ElementSize);
        var weights = Path.Combine(dir, "net", "net.safetensors");
        ModelExport.Write(
            model,
            config,
            weights,
            new ExportInput
            {
                Kind = "image",
                Dataset = "tiny",
                Shape = [1, 2, 2],
                Mean = [0.5f],
                Std = [0.25f],
                Classes = ["a", "b", "c"],
            }
        );
        manifest = ModelExport.ManifestPath(weights);
    }

    public void Dispose() => TestData.DeleteFolder(dir);

    void Edit(Action<JsonObject> change)
    {
        var json = JsonNode.Parse(File.ReadAllText(manifest))!.AsObject();
        change(json);
        File.WriteAllText(manifest, json.ToJsonString());
    }

    [Fact]
    public void The_untouched_export_loads()
    {
        using var model = ModelExport.Load(manifest);
        Assert.Equal("mlp", model.Family);
    }

    [Theory]
    [InlineData("std", "0", "key 'input.std' must hold positive finite numbers, got 0 at [0]")]
    [InlineData("std", "-1", "key 'input.std' must hold positive finite numbers, got -1 at [0]")]
    [InlineData("std", "[0.2, 0.3]", "key 'input.std' must hold one number per channel (1) or one for all, got 2")]
    [InlineData("mean", "[0.1, 0.2]", "key 'input.mean' must hold one number per channel (1) or one for all, got 2")]
    [InlineData(
        "shape",
        "[1, 0, 2]",
        "key 'input.shape' must hold 1..4096 channels and sides of 1..8192 pixels, got [1, 0, 2]"
    )]
    [InlineData("kind", "\"audio\"", "key 'input.kind' is 'audio', expected image or tokens")]
    [InlineData("kind", "\"tokens\"", "key 'family' is 'mlp', which does not take input of kind 'tokens'")]
    [InlineData("max_length", "100000000", "key 'input.max_length' must be between 3 and 65,536")]
    public void Bad_input_fields_are_refused_by_key(string key, string value, string expected)
    {
        Edit(j =>
            j["input"]![key] =
                key is "std" or "mean" && !value.StartsWith('[')
                    ? new JsonArray(JsonNode.Parse(value))
                    : JsonNode.Parse(value)
        );
        var e = Assert.Throws<WtnException>(() => ModelExport.Load(manifest));
        Assert.StartsWith($"export manifest {manifest}", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Twenty_million_classes_are_refused_before_the_network_is_built()
    {
        Edit(j => j["model"]!["classes"] = 20_000_000);
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<WtnException>(() => ModelExport.Load(manifest));
        Assert.Equal(
            $"export manifest {manifest}: key 'model.classes' must be between 1 and 100,000, got 20000000",
            e.Message
        );
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");

        Edit(j => j["model"]!["classes"] = 3);
        Edit(j =>
            j["input"]!["classes"] = new JsonArray(
                Enumerable.Range(0, 100_001).Select(i => (JsonNode)$"c{i}").ToArray()
            )
        );
        e = Assert.Throws<WtnException>(() => ModelExport.Load(manifest));
        Assert.Contains("key 'input.classes' lists 100,001 classes, more than the 100,000", e.Message);
    }

    [Fact]
    public void Sizes_within_bounds_that_do_not_fit_the_weights_are_refused_before_the_network_is_built()
    {
        Edit(j => j["model"]!["width"] = 60_000);
        long count;
        using (
            var meta = ModelFactory.Create(
                new ModelConfig
                {
                    Name = "mlp",
                    InputDim = 4,
                    Width = 60_000,
                    Depth = 2,
                    Classes = 3,
                },
                TorchSharp.torch.META
            )
        )
            count = meta.parameters().Sum(p => p.numel());
        var e = Assert.Throws<WtnException>(() => ModelExport.Load(manifest));
        Assert.Contains($"its model has {count:N0} parameters but parameters says 139", e.Message);

        Edit(j => j["parameters"] = count);
        var clock = Stopwatch.StartNew();
        e = Assert.Throws<WtnException>(() => ModelExport.Load(manifest));
        Assert.Contains($"its model's parameters take {4 * count:N0} bytes but", e.Message);
        Assert.Contains($"holds at most {stateBytes:N0};", e.Message);
        Assert.Contains("the manifest does not belong to these weights", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Theory]
    [InlineData("../elsewhere.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("/dev/zero")]
    public void Weights_outside_the_manifests_folder_are_refused_unless_allowed(string weights)
    {
        File.Copy(Path.Combine(dir, "net", "net.safetensors"), Path.Combine(dir, "elsewhere.safetensors"));
        Edit(j => j["weights"] = weights);
        var e = Assert.Throws<WtnException>(() => ModelExport.Verify(manifest));
        Assert.Contains("outside the manifest's folder", e.Message);
        Assert.Contains("--allow-outside", e.Message);
        if (weights == "../elsewhere.safetensors")
        {
            using var model = ModelExport.Load(manifest, allowOutside: true);
        }
        else if (weights == "/dev/zero")
            Assert.Contains(
                "/dev/zero (named by",
                Assert.Throws<WtnException>(() => ModelExport.Verify(manifest, allowOutside: true)).Message
            );
    }

    [Fact]
    public void A_link_inside_the_folder_to_a_file_outside_is_outside()
    {
        var outside = Path.Combine(dir, "real.safetensors");
        File.Move(Path.Combine(dir, "net", "net.safetensors"), outside);
        File.CreateSymbolicLink(Path.Combine(dir, "net", "net.safetensors"), outside);
        var e = Assert.Throws<WtnException>(() => ModelExport.Verify(manifest));
        Assert.Contains($"resolves to {outside}, outside the manifest's folder", e.Message);
        using var model = ModelExport.Load(manifest, allowOutside: true);
    }

    [Fact]
    public async Task A_fifo_a_device_or_a_folder_is_refused_without_being_opened()
    {
        var fifo = Path.Combine(dir, "net", "pipe.safetensors");
        using (var mk = Process.Start("mkfifo", [fifo]))
            mk.WaitForExit();
        Edit(j => j["weights"] = "pipe.safetensors");
        // Opening a FIFO blocks until a writer comes: the check must not open it.
        var refused = Task.Run(() => Assert.Throws<WtnException>(() => ModelExport.Verify(manifest)));
        Assert.Same(refused, await Task.WhenAny(refused, Task.Delay(TimeSpan.FromSeconds(10))));
        Assert.Contains("is a FIFO (named pipe), not a regular file", (await refused).Message);

        Directory.CreateDirectory(Path.Combine(dir, "net", "folder.safetensors"));
        Edit(j => j["weights"] = "folder.safetensors");
        Assert.Contains(
            "is a folder, not a file",
            Assert.Throws<WtnException>(() => ModelExport.Verify(manifest)).Message
        );

        Assert.Equal(
            "export manifest /dev/zero is a character device, not a regular file; give a file",
            Assert.Throws<WtnException>(() => ExportManifest.Read("/dev/zero")).Message
        );
    }

    [Fact]
    public void Wtn_eval_refuses_outside_weights_and_takes_allow_outside()
    {
        Edit(j => j["weights"] = "/dev/zero");
        var (code, _, stderr) = WtnProcess.Run($"eval \"{manifest}\" --threads 1");
        Assert.Equal(2, code);
        Assert.Contains("outside the manifest's folder", stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        (code, _, stderr) = WtnProcess.Run($"eval \"{manifest}\" --allow-outside --threads 1");
        Assert.Equal(2, code);
        Assert.Contains("/dev/zero", stderr);
        Assert.Contains("is a character device, not a regular file", stderr);
    }
}
