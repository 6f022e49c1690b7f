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
        using var model = ModelFactory.Create(new ModelConfig { Name = name, Classes = 1000, Widen = Widening.Parse(widen) }, META);
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
}
