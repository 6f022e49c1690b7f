using System.Security.Cryptography;
using System.Text;

namespace WideThenNarrow.Method;

/// <summary>
/// What determines a stage's result, as flat "key -> value" settings, and their SHA-256: the stage's own config
/// section, the data section, the specs of the networks it builds, the step cap and the seed, plus the settings of
/// every stage it starts from (an imported wide network by its file's SHA-256). A finished stage records both in its
/// stage.json; <c>wtn run</c> refuses to reuse a stage whose settings differ from the config's, naming the keys.
/// Names, seed counts and report settings are not part of it: they do not change what a stage trains.
/// </summary>
public static class StageFingerprint
{
    public static string Hash(IReadOnlyDictionary<string, string> settings)
    {
        var text = new StringBuilder();
        foreach (var (k, v) in settings.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            text.Append(k).Append('=').Append(v).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>SHA-256 of a file's bytes (an imported network), read in one streaming pass.</summary>
    public static string FileHash(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }
}
