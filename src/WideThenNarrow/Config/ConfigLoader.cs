using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;
using YamlDotNet.RepresentationModel;

namespace WideThenNarrow.Config;

/// <summary>
/// Loads YAML onto typed records with defaults. Keys are the snake_case form of the records' settable
/// properties, and the keys a <see cref="SectionsAttribute"/> property lists (each a section of its own record, held in
/// that property's dictionary); an unknown key or a value of the wrong type is a <see cref="WtnException"/> naming the key path
/// (and the closest valid key), and so is a value outside the range its record accepts (<see cref="IValidatedConfig"/>).
/// <c>a.b=value</c> overrides are checked against the same schema.
/// Records need a parameterless constructor and settable (or init) properties with defaults.
/// </summary>
public static class ConfigLoader
{
    /// <summary>Far above any experiment file; a larger one is not a config (or is a YAML bomb in the making).</summary>
    const long MaxConfigBytes = 16L << 20;

    public static T Load<T>(string path, IEnumerable<string>? overrides = null)
        where T : class, new()
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new WtnException($"config file not found: {path}");
        Runtime.InputFiles.RequireRegular(path, $"config {path}", MaxConfigBytes);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (IOException e)
        {
            throw new WtnException($"cannot read config {path}: {e.Message}", e);
        }
        return Parse<T>(text, path, overrides);
    }

    /// <summary>Parses YAML text; <paramref name="source"/> names it in errors.</summary>
    public static T Parse<T>(string yaml, string source, IEnumerable<string>? overrides = null)
        where T : class, new()
    {
        var root = ReadRoot(yaml, source);
        foreach (var o in overrides ?? [])
            ApplyOverride(root, typeof(T), o);
        return (T)Bind(root, typeof(T), "", source)!;
    }

    /// <summary>The config as YAML, in the same key spelling the loader reads (round-trips through <see cref="Parse{T}"/>).</summary>
    public static string ToYaml<T>(T config)
        where T : class
    {
        var stream = new YamlStream(new YamlDocument(Emit(config, typeof(T), omitAddedDefaults: false)));
        var sb = new StringBuilder();
        using (var w = new StringWriter(sb, CultureInfo.InvariantCulture))
            stream.Save(w, assignAnchors: false);
        // YamlStream ends documents with "...": drop it so the file reads as plain YAML.
        var text = sb.ToString();
        var end = text.LastIndexOf("...", StringComparison.Ordinal);
        return end >= 0 && text[end..].Trim() == "..." ? text[..end] : text;
    }

    /// <summary>
    /// Every leaf of <paramref name="config"/> as "dotted.key" -> its YAML text (lists as "[a, b]"), under
    /// <paramref name="prefix"/>: the form in which two configs are compared key by key (and stage settings are
    /// fingerprinted). An <see cref="AddedKeyAttribute"/> key at its default is left out.
    /// </summary>
    public static SortedDictionary<string, string> Flatten(object config, string prefix = "") =>
        Flatten(Emit(config, config.GetType(), omitAddedDefaults: true), prefix);

    /// <summary><see cref="Flatten(object, string)"/> of YAML text (a saved config).</summary>
    public static SortedDictionary<string, string> FlattenYaml(string yaml, string source) =>
        Flatten(ReadRoot(yaml, source), "");

    /// <summary>Flat settings as YAML, one quoted "dotted.key: value" per line (<see cref="FlattenYaml"/> reads them back).</summary>
    public static string FlatToYaml(IReadOnlyDictionary<string, string> flat)
    {
        var map = new YamlMappingNode();
        foreach (var (k, v) in flat.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            map.Add(new YamlScalarNode(k), new YamlScalarNode(v) { Style = YamlDotNet.Core.ScalarStyle.DoubleQuoted });
        var sb = new StringBuilder();
        using (var w = new StringWriter(sb, CultureInfo.InvariantCulture))
            new YamlStream(new YamlDocument(map)).Save(w, assignAnchors: false);
        var text = sb.ToString();
        var end = text.LastIndexOf("...", StringComparison.Ordinal);
        return end >= 0 && text[end..].Trim() == "..." ? text[..end] : text;
    }

    /// <summary>
    /// The keys whose values differ, e.g. "optimizer.lr 0.02 -> 0.5". With <paramref name="defaultOf"/>, a key that
    /// <paramref name="was"/> lacks (a setting added to wtn since) is no change while its value is its default.
    /// </summary>
    public static List<string> Changes(
        IReadOnlyDictionary<string, string> was,
        IReadOnlyDictionary<string, string> now,
        Func<string, string?>? defaultOf = null
    ) =>
        [
            .. was
                .Keys.Union(now.Keys)
                .Order(StringComparer.Ordinal)
                .Where(k => was.GetValueOrDefault(k) != now.GetValueOrDefault(k) && !IsInert(k))
                .Where(k =>
                    !(
                        defaultOf is not null
                        && !was.ContainsKey(k)
                        && now.TryGetValue(k, out var v)
                        && defaultOf(k) == v
                    )
                )
                .Select(k =>
                    $"{k} {was.GetValueOrDefault(k) ?? "(absent)"} -> {now.GetValueOrDefault(k) ?? "(absent)"}"
                ),
        ];

    /// <summary>
    /// Keys that never change what a run trains, only what it leaves on disk along the way: how often it checkpoints
    /// and how many step checkpoints it keeps (a resume is exact from any of them), how often it logs and whether to
    /// TensorBoard. A stage or checkpoint that differs from the config only in these is the same run, so it is reused.
    /// </summary>
    public static bool IsInert(string key) =>
        key.EndsWith("checkpoint.every_steps", StringComparison.Ordinal)
        || key.EndsWith("checkpoint.keep_last", StringComparison.Ordinal)
        || key.EndsWith("logging.every_steps", StringComparison.Ordinal)
        || key.EndsWith("logging.tensorboard", StringComparison.Ordinal);

    /// <summary><see cref="Changes"/> in one line; at most <paramref name="shown"/> named.</summary>
    public static string Describe(IReadOnlyList<string> changes, int shown = 4) =>
        changes.Count == 0
            ? "no key differs"
            : string.Join(", ", changes.Take(shown))
                + (changes.Count > shown ? $" and {changes.Count - shown} more" : "");

    /// <summary>
    /// The default of a dotted key of <typeparamref name="T"/>, spelt as <see cref="Flatten(object, string)"/> spells
    /// it (a section left out counts as its record's defaults), or null when <typeparamref name="T"/> has no such key.
    /// </summary>
    public static string? DefaultOf<T>(string dottedKey)
        where T : class, new()
    {
        object node = new T();
        var parts = dottedKey.Split('.');
        foreach (var part in parts[..^1])
        {
            var member = Members(node.GetType()).FirstOrDefault(m => m.Key == part);
            var type = member is null ? null : Nullable.GetUnderlyingType(member.Type) ?? member.Type;
            if (member is null || !IsRecord(type!))
                return null;
            node = member.Get(node) ?? Activator.CreateInstance(type!)!;
        }
        return Flatten(Emit(node, node.GetType(), omitAddedDefaults: false), "").GetValueOrDefault(parts[^1]);
    }

    static SortedDictionary<string, string> Flatten(YamlNode root, string prefix)
    {
        var flat = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Walk(YamlNode node, string path)
        {
            switch (node)
            {
                case YamlMappingNode map:
                    foreach (var (k, v) in map.Children)
                        Walk(v, Join(path, ((YamlScalarNode)k).Value!));
                    break;
                case YamlSequenceNode seq:
                    flat[path] =
                        "["
                        + string.Join(", ", seq.Children.Select(c => c is YamlScalarNode sc ? sc.Value : c.ToString()))
                        + "]";
                    break;
                case YamlScalarNode scalar:
                    flat[path] = scalar.Value ?? "";
                    break;
            }
        }
        Walk(root, prefix);
        return flat;
    }

    /// <summary>The snake_case YAML key of a C# property name ("WarmupEpochs" -> "warmup_epochs").</summary>
    public static string KeyOf(string propertyName)
    {
        var sb = new StringBuilder(propertyName.Length + 4);
        for (int i = 0; i < propertyName.Length; i++)
        {
            char c = propertyName[i];
            bool boundary =
                i > 0
                && char.IsUpper(c)
                && (
                    char.IsLower(propertyName[i - 1])
                    || char.IsDigit(propertyName[i - 1])
                    || (
                        i + 1 < propertyName.Length
                        && char.IsLower(propertyName[i + 1])
                        && char.IsUpper(propertyName[i - 1])
                    )
                );
            if (boundary)
                sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    static YamlMappingNode ReadRoot(string yaml, string source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new WtnException(
                $"{source}: invalid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message.Split('\n')[0]}",
                e
            );
        }
        // An empty file (or one of comments only) is more likely a wrong or truncated file than a wish for all defaults.
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode s && IsNull(s))
            throw new WtnException(
                $"{source}: the file is empty; write the keys to set (see experiments/ for examples)"
            );
        return stream.Documents[0].RootNode as YamlMappingNode
            ?? throw new WtnException($"{source}: the top level must be a mapping of keys to values");
    }

    static IReadOnlyList<PropertyInfo> Settable(Type t) =>
        t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.SetMethod!.IsPublic)
            .ToList();

    /// <summary>
    /// One key of a record: a settable property, or one section of a <see cref="SectionsAttribute"/> dictionary
    /// property (<see cref="InSections"/>), whose entry under <see cref="Key"/> holds it.
    /// </summary>
    sealed record Member(string Key, Type Type, PropertyInfo Property, bool InSections)
    {
        public object? Get(object record) =>
            InSections
                ? ((IReadOnlyDictionary<string, object>?)Property.GetValue(record))?.GetValueOrDefault(Key)
                : Property.GetValue(record);
    }

    /// <summary>The keys of record type <paramref name="t"/> in the order they are written: its properties, a [Sections] property's sections in its place.</summary>
    static IReadOnlyList<Member> Members(Type t) =>
        [
            .. Settable(t)
                .SelectMany(p =>
                    p.GetCustomAttribute<SectionsAttribute>() is { } sections
                        ? sections.Sections().Select(x => new Member(x.Key, x.Type, p, InSections: true))
                        : [new Member(KeyOf(p.Name), p.PropertyType, p, InSections: false)]
                ),
        ];

    static bool IsRecord(Type t) =>
        t.IsClass
        && t != typeof(string)
        && !typeof(IEnumerable).IsAssignableFrom(t)
        && t.GetConstructor(Type.EmptyTypes) is not null;

    static Member Property(Type t, string key, string path, string source)
    {
        var members = Members(t);
        var hit = members.FirstOrDefault(m => m.Key == key);
        if (hit is not null)
            return hit;
        var full = Join(path, key);
        if (t.GetCustomAttributes<FormerKeyAttribute>().FirstOrDefault(a => a.Key == key) is { } former)
            throw new WtnException(
                $"{source}: key '{full}' is no longer read: "
                    + (
                        former.RenamedTo is { } renamed
                            ? $"write '{Join(path, KeyOf(renamed))}' instead"
                            : former.Advice
                    )
            );
        var keys = members.Select(m => Join(path, m.Key)).ToList();
        var closest = Closest(full, keys);
        throw new WtnException(
            $"{source}: unknown key '{full}'"
                + (closest is null ? "" : $" (did you mean '{closest}'?)")
                + (keys.Count > 0 ? "" : ": this section takes no keys")
        );
    }

    static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    /// <summary>The candidate with the smallest edit distance, if it is close enough to be a plausible typo.</summary>
    public static string? Closest(string key, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestD = int.MaxValue;
        foreach (var c in candidates)
        {
            int d = EditDistance(key, c);
            if (d < bestD)
                (best, bestD) = (c, d);
        }
        return best is not null && bestD <= Math.Max(3, key.Length / 2) ? best : null;
    }

    public static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
            prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }

    static void ApplyOverride(YamlMappingNode root, Type rootType, string assignment)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0)
            throw new WtnException($"--set {assignment}: expected KEY=VALUE, e.g. --set optimizer.lr=0.05");
        var key = assignment[..eq].Trim();
        var valueText = assignment[(eq + 1)..];
        var source = $"--set {assignment}";
        var parts = key.Split('.');
        // Walk the schema first so a typo is reported against the valid keys, not silently added.
        var type = rootType;
        var node = root;
        for (int i = 0; i < parts.Length; i++)
        {
            var path = string.Join('.', parts[..i]);
            if (!IsRecord(type))
                throw new WtnException($"{source}: '{path}' is a value, it has no key '{parts[i]}'");
            type = Property(type, parts[i], path, source).Type;
            if (i == parts.Length - 1)
                break;
            var k = new YamlScalarNode(parts[i]);
            if (!node.Children.TryGetValue(k, out var child) || child is not YamlMappingNode m)
            {
                m = new YamlMappingNode();
                node.Children[k] = m;
            }
            node = m;
        }
        var value = new YamlStream();
        try
        {
            value.Load(new StringReader(valueText));
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new WtnException($"{source}: the value is not valid YAML ({e.Message.Split('\n')[0]})", e);
        }
        node.Children[new YamlScalarNode(parts[^1])] =
            value.Documents.Count == 0 ? new YamlScalarNode("") : value.Documents[0].RootNode;
        // Type-check now so the error names the override, not the file.
        Bind(node.Children[new YamlScalarNode(parts[^1])], type, key, source);
    }

    static object? Bind(YamlNode node, Type type, string path, string source)
    {
        var under = Nullable.GetUnderlyingType(type);
        if (node is YamlScalarNode s && IsNull(s) && (under is not null || !type.IsValueType))
            return null;
        if (under is not null)
            type = under;

        if (IsRecord(type))
        {
            if (node is not YamlMappingNode map)
                throw new WtnException(
                    $"{source}: key '{path}' must be a mapping (a section of keys), got {Describe(node)}"
                );
            var obj = Activator.CreateInstance(type)!;
            var given = new HashSet<string>();
            // A [Sections] property's sections, each set (not null) one an entry.
            var sections = new Dictionary<PropertyInfo, Dictionary<string, object>>();
            foreach (var (k, v) in map.Children)
            {
                var key = (k as YamlScalarNode)?.Value
                    ?? throw new WtnException($"{source}: non-scalar key under '{path}'");
                var member = Property(type, key, path, source);
                var value = Bind(v, member.Type, Join(path, key), source);
                if (!member.InSections)
                    member.Property.SetValue(obj, value);
                else if (value is not null)
                {
                    if (!sections.TryGetValue(member.Property, out var entries))
                        sections[member.Property] = entries = [];
                    entries[key] = value;
                }
                given.Add(member.Property.Name);
            }
            foreach (var p in Settable(type).Where(p => p.IsDefined(typeof(SectionsAttribute))))
                p.SetValue(
                    obj,
                    new System.Collections.ObjectModel.ReadOnlyDictionary<string, object>(
                        sections.GetValueOrDefault(p) ?? []
                    )
                );
            foreach (var p in Settable(type))
                if (
                    !given.Contains(p.Name)
                    && p.CustomAttributes.Any(a =>
                        a.AttributeType.FullName == "System.Runtime.CompilerServices.RequiredMemberAttribute"
                    )
                )
                    throw new WtnException($"{source}: missing key '{Join(path, KeyOf(p.Name))}' (required)");
            if (obj is IValidatedConfig checkedRecord)
                checkedRecord.Validate(new ConfigKeys(source, path));
            return obj;
        }

        if (ElementType(type) is { } elem)
        {
            if (node is not YamlSequenceNode seq)
                throw new WtnException($"{source}: key '{path}' must be a list, e.g. [1, 2], got {Describe(node)}");
            var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(elem))!;
            int i = 0;
            foreach (var item in seq.Children)
                list.Add(Bind(item, elem, $"{path}[{i++}]", source));
            if (!type.IsArray)
                return list;
            var arr = Array.CreateInstance(elem, list.Count);
            list.CopyTo(arr, 0);
            return arr;
        }

        if (node is not YamlScalarNode scalar)
            throw new WtnException(
                $"{source}: key '{path}' must be a single value ({TypeName(type)}), got {Describe(node)}"
            );
        return Scalar(scalar.Value ?? "", type, path, source);
    }

    static Type? ElementType(Type t)
    {
        if (t.IsArray)
            return t.GetElementType();
        if (!t.IsGenericType)
            return null;
        var def = t.GetGenericTypeDefinition();
        return
            def == typeof(List<>)
            || def == typeof(IReadOnlyList<>)
            || def == typeof(IList<>)
            || def == typeof(IEnumerable<>)
            ? t.GetGenericArguments()[0]
            : null;
    }

    static bool IsNull(YamlScalarNode s) =>
        s.Style == YamlDotNet.Core.ScalarStyle.Plain && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    static object Scalar(string v, Type type, string path, string source)
    {
        var inv = CultureInfo.InvariantCulture;
        object? result = type switch
        {
            _ when type == typeof(string) => v,
            _ when type == typeof(int) => int.TryParse(v, NumberStyles.Integer, inv, out var i) ? i : null,
            _ when type == typeof(long) => long.TryParse(v, NumberStyles.Integer, inv, out var l) ? l : null,
            _ when type == typeof(double) => double.TryParse(v, NumberStyles.Float, inv, out var d)
            && double.IsFinite(d)
                ? d
                : null,
            _ when type == typeof(float) => float.TryParse(v, NumberStyles.Float, inv, out var f) && float.IsFinite(f)
                ? f
                : null,
            _ when type == typeof(bool) => v.ToLowerInvariant() switch
            {
                "true" or "yes" or "on" => true,
                "false" or "no" or "off" => false,
                _ => null,
            },
            _ when type.IsEnum => Enum.GetNames(type).FirstOrDefault(n => Normalize(n) == Normalize(v)) is { } name
                ? Enum.Parse(type, name)
                : null,
            // Value types of the library that read themselves from text, e.g. Widening.Parse("inner=4", option).
            _ when ParseMethod(type) is { } parse => Invoke(parse, v, $"{source}: key '{path}'"),
            _ => throw new InvalidOperationException(
                $"config type {type.Name} at '{path}' is not supported by ConfigLoader"
            ),
        };
        if (result is not null)
            return result;
        var what = type.IsEnum ? $"one of {string.Join(", ", Enum.GetNames(type).Select(EnumKey))}" : TypeName(type);
        var closest = type.IsEnum ? Closest(v, Enum.GetNames(type).Select(EnumKey)) : null;
        throw new WtnException(
            $"{source}: key '{path}' expects {what}, got '{v}'"
                + (closest is null ? "" : $" (did you mean '{closest}'?)")
        );
    }

    static MethodInfo? ParseMethod(Type t) =>
        t.GetMethod("Parse", BindingFlags.Public | BindingFlags.Static, [typeof(string), typeof(string)]) is { } m
        && m.ReturnType == t
            ? m
            : null;

    static object Invoke(MethodInfo parse, string text, string option)
    {
        try
        {
            return parse.Invoke(null, [text, option])!;
        }
        catch (TargetInvocationException e) when (e.InnerException is WtnException w)
        {
            throw w;
        }
    }

    static string Normalize(string s) => s.Replace("_", "").Replace("-", "").ToLowerInvariant();

    /// <summary>How an enum member is spelled in YAML ("MultiStep" -> "multi_step").</summary>
    public static string EnumKey(string name) => KeyOf(name);

    static string TypeName(Type t) =>
        t == typeof(int) || t == typeof(long) ? "an integer"
        : t == typeof(double) || t == typeof(float) ? "a number"
        : t == typeof(bool) ? "true or false"
        : t == typeof(string) ? "a string"
        : t.Name;

    static string Describe(YamlNode n) =>
        n switch
        {
            YamlMappingNode => "a mapping",
            YamlSequenceNode => "a list",
            YamlScalarNode s => $"'{s.Value}'",
            _ => n.NodeType.ToString(),
        };

    static YamlNode Emit(object? value, Type type, bool omitAddedDefaults)
    {
        if (value is null)
            return new YamlScalarNode("null");
        var under = Nullable.GetUnderlyingType(type) ?? type;
        if (IsRecord(value.GetType()))
        {
            var map = new YamlMappingNode();
            object? defaults = null;
            var members = Members(value.GetType());
            CheckSections(value, members);
            foreach (var m in members)
            {
                var node = Emit(m.Get(value), m.Type, omitAddedDefaults);
                if (
                    omitAddedDefaults
                    && !m.InSections
                    && m.Property.IsDefined(typeof(AddedKeyAttribute), inherit: true)
                )
                {
                    defaults ??= Activator.CreateInstance(value.GetType())!;
                    var byDefault = Emit(m.Get(defaults), m.Type, omitAddedDefaults);
                    if (Flatten(node, "").SequenceEqual(Flatten(byDefault, "")))
                        continue;
                }
                map.Add(m.Key, node);
            }
            return map;
        }
        if (ElementType(under) is { } elem)
        {
            var seq = new YamlSequenceNode { Style = YamlDotNet.Core.Events.SequenceStyle.Flow };
            foreach (var item in (IEnumerable)value)
                seq.Add(Emit(item, elem, omitAddedDefaults));
            return seq;
        }
        return value switch
        {
            string str => new YamlScalarNode(str)
            {
                Style = NeedsQuotes(str) ? YamlDotNet.Core.ScalarStyle.DoubleQuoted : YamlDotNet.Core.ScalarStyle.Any,
            },
            bool b => new YamlScalarNode(b ? "true" : "false"),
            double d => new YamlScalarNode(d.ToString("R", CultureInfo.InvariantCulture)),
            float f => new YamlScalarNode(f.ToString("R", CultureInfo.InvariantCulture)),
            Enum e => new YamlScalarNode(EnumKey(e.ToString())),
            IFormattable fmt => new YamlScalarNode(fmt.ToString(null, CultureInfo.InvariantCulture)),
            _ => new YamlScalarNode(value.ToString()),
        };
    }

    /// <summary>
    /// A [Sections] entry that is no section of the record (a config built in code), or of another type than its
    /// section's, would be lost or misread by the YAML: refused.
    /// </summary>
    static void CheckSections(object record, IReadOnlyList<Member> members)
    {
        foreach (var p in members.Where(m => m.InSections).Select(m => m.Property).Distinct())
        foreach (
            var (key, section) in (IReadOnlyDictionary<string, object>?)p.GetValue(record)
                ?? new Dictionary<string, object>()
        )
            if (members.FirstOrDefault(m => m.InSections && m.Property == p && m.Key == key) is not { } m)
                throw new InvalidOperationException(
                    $"{record.GetType().Name}.{p.Name} has an entry '{key}', which is none of its sections ({string.Join(", ", members.Where(m => m.Property == p).Select(m => m.Key))})"
                );
            else if (section is null || !m.Type.IsInstanceOfType(section))
                throw new InvalidOperationException(
                    $"{record.GetType().Name}.{p.Name}['{key}'] is a {section?.GetType().Name ?? "null"}, not the section's {m.Type.Name}"
                );
    }

    /// <summary>Strings that YAML would otherwise read as null, a number or a bool.</summary>
    static bool NeedsQuotes(string s) =>
        s.Length == 0
        || s is "~" or "null" or "true" or "false" or "yes" or "no" or "on" or "off"
        || double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
}
