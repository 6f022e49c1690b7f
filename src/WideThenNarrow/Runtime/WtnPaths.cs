namespace WideThenNarrow.Runtime;

/// <summary>Where data and runs live. Data stays outside git: <c>data/</c> or <c>$WTN_DATA</c>.</summary>
public static class WtnPaths
{
    public const string DataEnvironmentVariable = "WTN_DATA";

    /// <summary>The data folder: an explicit choice, else <c>$WTN_DATA</c>, else <c>./data</c>.</summary>
    public static string ResolveDataDir(string? explicitDir = null)
    {
        if (!string.IsNullOrWhiteSpace(explicitDir))
            return Path.GetFullPath(explicitDir);
        var env = Environment.GetEnvironmentVariable(DataEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
            return Path.GetFullPath(env);
        return Path.GetFullPath("data");
    }
}
