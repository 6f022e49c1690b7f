namespace WideThenNarrow.Config;

/// <summary>
/// A key added to a record after finished stages had recorded their settings, whose default changes nothing they
/// trained: <see cref="ConfigLoader.Flatten(object, string)"/> leaves it out of the flat settings while it holds its
/// default, so every stage fingerprint recorded before the key existed stays the same (not merely accepted as
/// unchanged, as for other keys added since: <see cref="ConfigLoader.Changes"/>). At any other value it is a setting
/// like the others. YAML written by <see cref="ConfigLoader.ToYaml{T}"/> (run-config.yaml) always has it.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class AddedKeyAttribute : Attribute;
