using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>Builds any model of the zoo from a <see cref="ModelConfig"/>.</summary>
public static class ModelFactory
{
    /// <summary>The architecture names <see cref="Create"/> accepts (cifar-resnet also takes any depth 6n+2).</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "mlp",
        "cifar-resnet20",
        "cifar-resnet32",
        "cifar-resnet44",
        "cifar-resnet56",
        "cifar-resnet110",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "bert-tiny",
        "bert-mini",
        "bert-small",
        "bert-medium",
        "bert-base",
        "bert-large",
        "bert",
    ];

    /// <summary>The classes an architecture is usually published with: 1000 (resnet18..152), 2 (BERT), else 10.</summary>
    public static int DefaultClasses(string name)
    {
        var n = name.Trim().ToLowerInvariant();
        if (n.StartsWith("bert", StringComparison.Ordinal))
            return 2;
        return n.StartsWith("resnet", StringComparison.Ordinal) ? 1000 : 10;
    }

    /// <summary>Whether <paramref name="name"/> is a CIFAR-layout ResNet (cifar-resnetD), the layout base_width applies to.</summary>
    public static bool IsCifarResNet(string name) =>
        name.Trim().StartsWith("cifar-resnet", StringComparison.OrdinalIgnoreCase);

    /// <summary>Builds the model on <paramref name="device"/> (default CPU; the meta device builds shapes only).</summary>
    public static StagedModel Create(ModelConfig config, Device? device = null)
    {
        var name = config.Name.Trim().ToLowerInvariant();
        switch (name)
        {
            case "mlp":
                return new Mlp(config, device);
            case "resnet18":
                return new ResNet(name, ResNet.Layout.ImageNet, false, [2, 2, 2, 2], config, device);
            case "resnet34":
                return new ResNet(name, ResNet.Layout.ImageNet, false, [3, 4, 6, 3], config, device);
            case "resnet50":
                return new ResNet(name, ResNet.Layout.ImageNet, true, [3, 4, 6, 3], config, device);
            case "resnet101":
                return new ResNet(name, ResNet.Layout.ImageNet, true, [3, 4, 23, 3], config, device);
            case "resnet152":
                return new ResNet(name, ResNet.Layout.ImageNet, true, [3, 8, 36, 3], config, device);
        }
        if (name == "bert" || BertSizes.PresetNames.Contains(name))
            return new Bert(config, device);
        if (IsCifarResNet(name))
        {
            if (!int.TryParse(name["cifar-resnet".Length..], out int depth) || depth < 8 || (depth - 2) % 6 != 0)
                throw new WtnException(
                    $"model '{config.Name}': a CIFAR ResNet's depth must be 6n+2 with n >= 1 (cifar-resnet20, 32, 44, 56, 110, ...)"
                );
            int n = (depth - 2) / 6;
            return new ResNet(name, ResNet.Layout.Cifar, false, [n, n, n], config, device);
        }
        throw new WtnException($"model '{config.Name}' is unknown; known: {string.Join(", ", Names)}");
    }
}
