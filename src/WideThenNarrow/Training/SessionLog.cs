using System.Text.Json;
using WideThenNarrow.Runtime;

namespace WideThenNarrow.Training;

/// <summary>One process's turn at a training run: when it started, at which step, and on what.</summary>
public sealed record Session(DateTime Started, long Step, bool Resumed, Machine Machine);

/// <summary>
/// RUN_DIR/sessions.jsonl: one line per process that trained the run (the first and every resume). Unlike
/// metrics.jsonl it is history, not state: a resume keeps every line, so a run stopped and resumed across machines
/// says so.
/// </summary>
public static class SessionLog
{
    public const string FileName = "sessions.jsonl";

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Appends this process's session (one write of one line).</summary>
    public static void Append(string runDir, long step, bool resumed)
    {
        var session = new Session(DateTime.UtcNow, step, resumed, Machine.Current());
        WriteFailure.Append(Path.Combine(runDir, FileName), JsonSerializer.Serialize(session, Json) + "\n");
    }

    /// <summary>
    /// Every session of every run under <paramref name="dir"/> (its own sessions.jsonl and those of the folders in it),
    /// oldest first; a line that does not parse (half-written by a killed process) is skipped.
    /// </summary>
    public static IReadOnlyList<Session> ReadAll(string dir)
    {
        if (!Directory.Exists(dir))
            return [];
        var sessions = new List<Session>();
        foreach (var file in Directory.EnumerateFiles(dir, FileName, SearchOption.AllDirectories))
        foreach (var line in File.ReadLines(file))
        {
            try
            {
                if (JsonSerializer.Deserialize<Session>(line, Json) is { Machine: not null } s)
                    sessions.Add(s);
            }
            catch (JsonException) { }
        }
        return [.. sessions.OrderBy(s => s.Started)];
    }
}
