using System.Globalization;

namespace WideThenNarrow.Config;

/// <summary>
/// A config record that checks its own values: <see cref="ConfigLoader"/> calls <see cref="Validate"/> on every
/// record it binds, with the record's key path, so an error names the full dotted key (train.checkpoint.every_steps).
/// Ranges live here, beside the keys they bound, instead of in each place that reads them.
/// </summary>
public interface IValidatedConfig
{
    /// <summary>Throws a <see cref="WtnException"/> naming the first bad key (spelled through <paramref name="at"/>).</summary>
    void Validate(ConfigKeys at);
}

/// <summary>Where a record sits (the file or manifest, and its key path) and the range checks records share.</summary>
public readonly record struct ConfigKeys(string Source, string Path)
{
    /// <summary>The full dotted key of the record's property <paramref name="propertyName"/> (pass nameof).</summary>
    public string this[string propertyName] => Join(ConfigLoader.KeyOf(propertyName));

    /// <summary>The keys of a nested record.</summary>
    public ConfigKeys Nested(string propertyName) => this with { Path = this[propertyName] };

    public WtnException Error(string propertyName, string problem) =>
        new($"{Source}: key '{this[propertyName]}' {problem}");

    public void InRange(string propertyName, long value, long min, long max, string? meaning = null)
    {
        if (value < min || value > max)
            throw Error(propertyName, $"must be {Range(min, max)}{Meaning(meaning)}, got {value}");
    }

    /// <summary>Null passes (the key's "not set"); a value must be in [min, max].</summary>
    public void InRangeIfSet(string propertyName, int? value, long min, long max, string? meaning = null)
    {
        if (value is { } v)
            InRange(propertyName, v, min, max, meaning);
    }

    /// <summary>A finite number in [min, max], or below max only when <paramref name="maxExclusive"/>.</summary>
    public void InRange(
        string propertyName,
        double value,
        double min,
        double max,
        bool maxExclusive = false,
        string? meaning = null
    )
    {
        bool ok = double.IsFinite(value) && value >= min && (maxExclusive ? value < max : value <= max);
        if (!ok)
        {
            var range = double.IsPositiveInfinity(max)
                ? $"{Number(min)} or more"
                : $"in [{Number(min)}, {Number(max)}{(maxExclusive ? ")" : "]")}";
            throw Error(propertyName, $"must be {range}{Meaning(meaning)}, got {Number(value)}");
        }
    }

    /// <summary>A finite number above zero.</summary>
    public void Positive(string propertyName, double value)
    {
        if (!(double.IsFinite(value) && value > 0))
            throw Error(propertyName, $"must be positive, got {Number(value)}");
    }

    string Join(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    /// <summary>A bound at the type's limit is no bound a user needs to read.</summary>
    static string Range(long min, long max) =>
        max >= int.MaxValue
            ? (min == 0 ? "0 or more" : $"at least {min}")
            : $"between {min} and {max.ToString("N0", CultureInfo.InvariantCulture)}";

    static string Meaning(string? meaning) => meaning is null ? "" : $" ({meaning})";

    static string Number(double x) => x.ToString("R", CultureInfo.InvariantCulture);
}
