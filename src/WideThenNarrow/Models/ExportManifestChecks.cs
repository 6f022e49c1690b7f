using System.Globalization;
using WideThenNarrow.Config;
using WideThenNarrow.Runtime;
using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>
/// A manifest read from disk is untrusted input: its sizes decide what is allocated and its paths what is opened. These
/// checks run before either, so a hostile or damaged manifest is refused by key instead of taking gigabytes, reading
/// /dev/zero or a file outside its folder.
/// </summary>
static class ExportManifestChecks
{
    /// <summary>Far above any manifest wtn writes (a class name list of 100,000 entries included).</summary>
    public const long MaxManifestBytes = 64L << 20;

    /// <summary>The manifest file itself: a regular file of bounded size.</summary>
    public static void RequireManifestFile(string path) =>
        InputFiles.RequireRegular(path, $"export manifest {path}", MaxManifestBytes);

    /// <summary>The fields that are not the architecture: paths present, the input's sizes and statistics sane.</summary>
    public static void Validate(ExportManifest m, string path)
    {
        var source = $"export manifest {path}";
        var at = new ConfigKeys(source, "");
        if (string.IsNullOrWhiteSpace(m.Weights))
            throw at.Error(nameof(m.Weights), "is empty; it names the weights file beside the manifest");
        if (m.Sha256.Length != 64 || !m.Sha256.All(Uri.IsHexDigit))
            throw at.Error(nameof(m.Sha256), "is not a SHA-256 (64 hex digits)");
        at.InRange(nameof(m.Parameters), m.Parameters, 0, long.MaxValue);
        bool image = m.Input.Kind == "image";
        if (!image && m.Input.Kind != "tokens")
            throw at.Nested(nameof(m.Input))
                .Error(nameof(ExportInput.Kind), $"is '{m.Input.Kind}', expected image or tokens");
        if (ModelData.ReadsText(m.Family) == image)
            throw at.Error(nameof(m.Family), $"is '{m.Family}', which does not take input of kind '{m.Input.Kind}'");
        Validate(m.Input, at.Nested(nameof(m.Input)));
    }

    static void Validate(ExportInput input, ConfigKeys at)
    {
        if (input.Shape is { } shape)
        {
            if (shape.Length != 3)
                throw at.Error(nameof(input.Shape), $"must be [channels, height, width], got {shape.Length} numbers");
            if (
                shape[0] < 1
                || shape[0] > ModelConfig.MaxChannels
                || shape[1..].Any(d => d < 1 || d > ModelConfig.MaxImageSize)
            )
                throw at.Error(
                    nameof(input.Shape),
                    $"must hold 1..{ModelConfig.MaxChannels} channels and sides of 1..{ModelConfig.MaxImageSize} pixels, got [{string.Join(", ", shape)}]"
                );
        }
        int? channels = input.Shape?[0];
        Statistics(at, nameof(input.Mean), input.Mean, channels, positive: false);
        Statistics(at, nameof(input.Std), input.Std, channels, positive: true);
        if (input.Classes is { Count: > ModelConfig.MaxClasses } classes)
            throw at.Error(
                nameof(input.Classes),
                $"lists {classes.Count:N0} classes, more than the {ModelConfig.MaxClasses:N0} a network of wtn can have"
            );
        at.InRangeIfSet(nameof(input.MaxLength), input.MaxLength, 3, ModelConfig.MaxPositionsLimit);
        if (input.HeldOut is { } h)
        {
            var held = at.Nested(nameof(input.HeldOut));
            held.InRange(nameof(h.PretrainDocuments), h.PretrainDocuments, 0, int.MaxValue);
            held.InRange(nameof(h.Every), h.Every, 2, int.MaxValue);
            held.InRange(nameof(h.MaskProbability), h.MaskProbability, double.Epsilon, 1, maxExclusive: true);
        }
    }

    /// <summary>Per-channel mean or std: one finite number per channel (or one for all), std above zero (it divides).</summary>
    static void Statistics(ConfigKeys at, string key, float[]? values, int? channels, bool positive)
    {
        if (values is null)
            return;
        if (
            values.Length < 1
            || values.Length > ModelConfig.MaxChannels
            || (channels is { } c && values.Length != c && values.Length != 1)
        )
            throw at.Error(
                key,
                $"must hold one number per channel ({channels?.ToString(CultureInfo.InvariantCulture) ?? "1 or more"}) or one for all, got {values.Length}"
            );
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]) || (positive && values[i] <= 0))
                throw at.Error(
                    key,
                    $"must hold {(positive ? "positive " : "")}finite numbers, got {values[i].ToString(CultureInfo.InvariantCulture)} at [{i}]"
                );
    }

    /// <summary>
    /// The network the manifest describes, counted on the meta device (nothing allocated): its parameters must be the
    /// manifest's count and fit in what the weights file can hold (<see cref="Weights.StoredBytes"/>), so a manifest that
    /// does not belong to its weights is refused before the network is built.
    /// </summary>
    public static void CheckFitsWeights(ExportManifest m, ModelConfig config, string manifestPath, string weights)
    {
        long count,
            bytes;
        using (var meta = ModelFactory.Create(config, META))
        {
            count = meta.parameters().Sum(p => p.numel());
            bytes = meta.parameters().Sum(p => p.numel() * p.ElementSize);
        }
        if (count != m.Parameters)
            throw new WtnException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"export manifest {manifestPath}: its model has {count:N0} parameters but parameters says {m.Parameters:N0}; the manifest is damaged, export the network again"
                )
            );
        long length = Weights.StoredBytes(weights);
        if (bytes > length)
            throw new WtnException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"export manifest {manifestPath}: its model's parameters take {bytes:N0} bytes but {weights} holds at most {length:N0}; the manifest does not belong to these weights"
                )
            );
    }
}
