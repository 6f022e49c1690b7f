using System.Text.Json;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

public class SafetensorsMetadataTests
{
    static JsonElement Header(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long length = BitConverter.ToInt64(bytes, 0);
        Assert.Equal(0, (8 + length) % 8); // the data stays 8-byte aligned
        return JsonDocument.Parse(bytes.AsMemory(8, (int)length)).RootElement.Clone();
    }

    [Fact]
    public void Safetensors_files_say_format_pt_and_load_back_unchanged()
    {
        var dir = TestData.NewTempFolder("safetensors-metadata");
        try
        {
            using var model = ModelFactory.Create(
                new ModelConfig
                {
                    Name = "mlp",
                    Width = 16,
                    Depth = 3,
                    Residual = true,
                }
            );
            var path = Path.Combine(dir, "w.safetensors");
            Weights.Save(model, path);
            Assert.Equal("pt", Header(path).GetProperty("__metadata__").GetProperty("format").GetString());
            using var back = ModelFactory.Create(
                new ModelConfig
                {
                    Name = "mlp",
                    Width = 16,
                    Depth = 3,
                    Residual = true,
                }
            );
            Weights.Load(back, path);
            foreach (var (key, t) in model.state_dict())
                Assert.True(t.equal(back.state_dict()[key]).all().item<bool>(), key);

            // An export carries the manifest's architecture too, for tools that see the file alone.
            var exported = Path.Combine(dir, "e.safetensors");
            var m = ModelExport.Write(
                model,
                new ModelConfig
                {
                    Name = "mlp",
                    Width = 16,
                    Depth = 3,
                    Residual = true,
                },
                exported,
                new ExportInput { Kind = "image", Shape = [1, 28, 28] },
                source: "a test"
            );
            var metadata = Header(exported).GetProperty("__metadata__");
            Assert.Equal("pt", metadata.GetProperty("format").GetString());
            Assert.Equal("mlp", metadata.GetProperty("wtn_family").GetString());
            Assert.Equal("a test", metadata.GetProperty("wtn_source").GetString());
            Assert.Equal(
                16,
                JsonDocument
                    .Parse(metadata.GetProperty("wtn_model").GetString()!)
                    .RootElement.GetProperty("width")
                    .GetInt32()
            );
            using var loaded = ModelExport.Load(ModelExport.ManifestPath(exported));
            using var x = randn(2, 784);
            using (no_grad())
            {
                model.eval();
                Assert.True(model.call(new ModelInput(x)).equal(loaded.call(new ModelInput(x))).all().item<bool>());
            }
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
