namespace WideThenNarrow.Cli;

/// <summary>Writes each progress line as it comes (Progress&lt;T&gt; would post them to the thread pool, out of order).</summary>
public sealed class LineProgress(TextWriter writer) : IProgress<string>
{
    public void Report(string value) => writer.WriteLine(value);
}
