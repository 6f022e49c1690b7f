using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

public class ResNetTests
{
    internal static long CountParameters(nn.Module m) => m.parameters().Sum(p => p.numel());

    [Theory]
    [InlineData("resnet18", "none", 11_689_512)]
    [InlineData("resnet34", "none", 21_797_672)]
    [InlineData("resnet50", "none", 25_557_032)]
    [InlineData("resnet101", "none", 44_549_160)]
    [InlineData("resnet152", "none", 60_192_808)]
    [InlineData("resnet50", "inner=2", 68_883_240)]
    public void ImageNet_parameter_counts_match_torchvision(string name, string widen, long expected)
    {
        using var model = ModelFactory.Create(
            new ModelConfig
            {
                Name = name,
                Classes = 1000,
                Widen = Widening.Parse(widen),
            },
            META
        );
        Assert.Equal(expected, CountParameters(model));
    }

    [Theory]
    [InlineData("cifar-resnet20", false, 269_722)]
    [InlineData("cifar-resnet56", false, 853_018)]
    [InlineData("cifar-resnet20", true, 272_474)]
    public void Cifar_parameter_counts_match_he_et_al(string name, bool projection, long expected)
    {
        using var model = ModelFactory.Create(new ModelConfig { Name = name, ProjectionShortcuts = projection });
        Assert.Equal(expected, CountParameters(model));
    }

    /// <summary>
    /// He et al.'s CIFAR ResNet at base width w (stages w, 2w, 4w), counted by hand: 3x3 stem, per stage n basic blocks
    /// (conv k*p x in x 3x3, BN, conv p x k*p x 3x3, BN, with k the inner widening), option-A shortcuts, fc.
    /// </summary>
    static long CifarParameters(int depth, int w, int inner, int inputChannels, int classes)
    {
        int n = (depth - 2) / 6;
        long total = 9L * inputChannels * w + 2 * w;
        int inplanes = w;
        foreach (int p in new[] { w, 2 * w, 4 * w })
            for (int b = 0; b < n; b++)
            {
                total += 9L * inplanes * inner * p + 2L * inner * p + 9L * inner * p * p + 2L * p;
                inplanes = p;
            }
        return total + (long)inplanes * classes + classes;
    }

    [Theory]
    [InlineData(4, "none")]
    [InlineData(8, "none")]
    [InlineData(16, "none")]
    [InlineData(4, "inner=4")]
    [InlineData(8, "inner=4")]
    [InlineData(16, "inner=4")]
    public void Cifar_base_width_scales_the_stages(int baseWidth, string widen)
    {
        using var model = ModelFactory.Create(
            new ModelConfig
            {
                Name = "cifar-resnet20",
                BaseWidth = baseWidth,
                Widen = Widening.Parse(widen),
            },
            META
        );
        Assert.Equal(CifarParameters(20, baseWidth, Widening.Parse(widen).Inner, 3, 10), CountParameters(model));
        Assert.Equal(
            [4L * baseWidth, 8, 8],
            ((IMacCounting)model).OutputShape(model.BlockCount - 1, [4L * baseWidth, 8, 8])
        );
    }

    [Fact]
    public void Base_width_16_is_he_et_al_and_imagenet_layouts_refuse_another()
    {
        Assert.Equal(269_722, CifarParameters(20, 16, 1, 3, 10));
        var e = Assert.Throws<WtnException>(() =>
            ModelFactory.Create(new ModelConfig { Name = "resnet18", BaseWidth = 8 }, META)
        );
        Assert.Contains("base_width", e.Message);
    }
}
