using System.Text.Json;
using WideThenNarrow.Tests.Cli;

namespace WideThenNarrow.Tests.Models;

public class ModelCommandTests
{
    [Fact]
    public void Summary_json_of_resnet50_reports_torchvision_parameters_and_macs()
    {
        var (code, stdout, stderr) = WtnProcess.Run("model summary resnet50 --json --threads 1");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal(25_557_032, root.GetProperty("parameters").GetInt64());
        Assert.InRange(root.GetProperty("macs").GetInt64(), 4.05e9, 4.15e9);
        Assert.Equal(17, root.GetProperty("blocks").GetArrayLength());
        Assert.Equal(
            "[2048,7,7]",
            root.GetProperty("blocks")[16].GetProperty("shape").GetRawText().Replace(" ", "").Replace("\n", "")
        );
    }

    [Fact]
    public void Summary_takes_input_shape_classes_and_widening()
    {
        var (code, stdout, stderr) = WtnProcess.Run(
            "model summary resnet18 --input 1x28x28 --classes 10 --widen full=2 --json"
        );
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var blocks = doc.RootElement.GetProperty("blocks");
        Assert.Equal(128, blocks[0].GetProperty("shape")[0].GetInt64());
        Assert.Equal(7, blocks[0].GetProperty("shape")[1].GetInt64());
        Assert.Equal("full=2", doc.RootElement.GetProperty("widening").GetString());
    }

    [Fact]
    public void Summary_takes_the_cifar_base_width()
    {
        var (code, stdout, stderr) = WtnProcess.Run(
            "model summary cifar-resnet20 --base-width 8 --widen inner=4 --json"
        );
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var blocks = doc.RootElement.GetProperty("blocks");
        Assert.Equal(8, blocks[0].GetProperty("shape")[0].GetInt64());
        Assert.Equal(32, blocks[blocks.GetArrayLength() - 1].GetProperty("shape")[0].GetInt64());
    }

    [Theory]
    [InlineData("model summary resnet50 --widen wide=2", "--widen")]
    [InlineData("model summary resnet50 --input 3x224", "--input")]
    [InlineData("model summary bert-tiny --seq 9999", "--seq")]
    [InlineData("model summary mlp --widen inner=2", "inner=2")]
    [InlineData("model summary resnet51", "resnet51")]
    public void Bad_options_are_one_line_errors_naming_them(string args, string named)
    {
        var (code, _, stderr) = WtnProcess.Run(args);
        Assert.Equal(2, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(named, lines[0]);
    }
}
