namespace WideThenNarrow.Models;

/// <summary>Which part of a network a widening multiplies (see METHOD.md, "Widening").</summary>
public enum WideningKind
{
    /// <summary>Only what lives inside a block; the residual stream keeps its width, so points keep their shapes.</summary>
    Inner,

    /// <summary>Everything, residual stream included; points get wider.</summary>
    Full,
}

/// <summary>
/// What inner widening multiplies in a transformer's attention: each head's size (the head count is kept, so thin and
/// wide attention maps correspond head by head and attention transfers per head; METHOD.md's definition) or the
/// number of heads (each head keeps its size; attention can then only be compared head-averaged).
/// </summary>
public enum HeadWidening
{
    Size,
    Count,
}

/// <summary>How the wide network B is derived from the thin one S: "inner=K" or "full=K" (K = 1 is the thin network).</summary>
public sealed record Widening(WideningKind Kind, int Factor)
{
    public static readonly Widening None = new(WideningKind.Inner, 1);

    public bool IsIdentity => Factor == 1;

    /// <summary>The factor applied inside blocks (feed-forward, bottleneck, first conv of a basic block).</summary>
    public int Inner => Kind == WideningKind.Inner ? Factor : 1;

    /// <summary>The factor applied to the residual stream / stage widths.</summary>
    public int Full => Kind == WideningKind.Full ? Factor : 1;

    /// <summary>Parses "inner=4", "full=2" or "none"; <paramref name="option"/> names the option or key in errors.</summary>
    public static Widening Parse(string text, string option = "--widen")
    {
        var t = (text ?? "").Trim().ToLowerInvariant();
        if (t is "" or "none")
            return None;
        var parts = t.Split('=');
        if (parts.Length == 2 && int.TryParse(parts[1], out int k) && k >= 1)
        {
            switch (parts[0].Trim())
            {
                case "inner":
                    return new Widening(WideningKind.Inner, k);
                case "full":
                    return new Widening(WideningKind.Full, k);
            }
        }
        throw new WtnException(
            $"{option}: cannot read widening '{text}', expected inner=K or full=K with an integer K >= 1 (e.g. inner=4)"
        );
    }

    public override string ToString() =>
        IsIdentity ? "none" : $"{(Kind == WideningKind.Inner ? "inner" : "full")}={Factor}";
}
