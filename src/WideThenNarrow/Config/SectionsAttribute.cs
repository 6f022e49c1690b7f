namespace WideThenNarrow.Config;

/// <summary>
/// On a record's <c>IReadOnlyDictionary&lt;string, object&gt;</c> property: its entries are sections of the record
/// itself, each its own key beside the record's properties, and the property is no key. The keys and the record type
/// each is read as come from the static property <paramref name="member"/> of <paramref name="source"/> (an
/// <c>IReadOnlyList&lt;(string Key, Type Type)&gt;</c>, in the order the sections are written). <see cref="ConfigLoader"/>
/// reads, overrides, writes, flattens and validates such a section exactly as it would a property of that type: a key
/// left out or set to null has no entry. So a section can be added to the record without a property of its own
/// (<see cref="Method.ExperimentConfig.Baselines"/>: the baselines' sections, which their stages declare).
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SectionsAttribute(Type source, string member) : Attribute
{
    public Type Source { get; } = source;
    public string Member { get; } = member;

    /// <summary>The sections' keys and record types, in order.</summary>
    public IReadOnlyList<(string Key, Type Type)> Sections() =>
        Source
            .GetProperty(Member, System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            ?.GetValue(null) as IReadOnlyList<(string Key, Type Type)>
        ?? throw new InvalidOperationException(
            $"[Sections]: {Source.Name}.{Member} is no public static IReadOnlyList<(string Key, Type Type)>"
        );
}
