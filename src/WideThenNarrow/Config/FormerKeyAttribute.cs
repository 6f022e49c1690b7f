namespace WideThenNarrow.Config;

/// <summary>
/// A key the record no longer reads. <see cref="ConfigLoader"/> refuses it in one line naming what to write instead,
/// the new key (<see cref="RenamedTo"/>, a property name) or <see cref="Advice"/>, rather than as an unknown key.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
public sealed class FormerKeyAttribute(string key) : Attribute
{
    public string Key { get; } = key;
    public string? RenamedTo { get; init; }
    public string? Advice { get; init; }
}
