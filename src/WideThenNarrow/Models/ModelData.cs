namespace WideThenNarrow.Models;

/// <summary>
/// Which kind of data an architecture reads, checked when a config is loaded: a BERT fed images, or a ResNet or MLP fed
/// token ids, would otherwise start training and fail deep inside libtorch.
/// </summary>
public static class ModelData
{
    /// <summary>Whether the zoo model <paramref name="modelName"/> reads token ids (the BERTs) rather than images.</summary>
    public static bool ReadsText(string modelName) =>
        modelName.Trim().StartsWith("bert", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Null when <paramref name="modelName"/> reads the data described (text or images, <paramref name="data"/> naming
    /// it); else what is wrong and what to use instead, to follow the key's name in an error.
    /// </summary>
    public static string? Mismatch(string modelName, bool text, string data) =>
        ReadsText(modelName) == text ? null
        : text
            ? $"is '{modelName}', an image model, but {data} is text; use a BERT (bert-tiny, bert-mini, bert-small, ..., or bert)"
        : $"is '{modelName}', a text model, but {data} holds images; use mlp, a cifar-resnet (20, 32, 56, ...) or resnet18..152";
}
