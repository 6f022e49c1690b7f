using System.Globalization;

namespace WideThenNarrow.Training;

/// <summary>
/// Exclusive use of a run folder by one process: a second <c>wtn run</c> (or <c>wtn train</c>) on the same folder
/// would train the same stage twice and overwrite its checkpoints. The lock is an advisory file lock on
/// <c>FOLDER/.lock</c> (taken through <see cref="FileShare.None"/>, which .NET maps to <c>flock</c> on Unix), so the
/// kernel drops it when the process ends, however it ends: a killed run never leaves a stale lock behind.
/// <c>FOLDER/.lock.owner</c> says who holds it, for the error message.
/// </summary>
public sealed class RunLock : IDisposable
{
    readonly FileStream stream;
    readonly string ownerFile;

    RunLock(FileStream stream, string ownerFile)
    {
        this.stream = stream;
        this.ownerFile = ownerFile;
    }

    /// <summary>Takes the lock, or throws a one-line error naming the process that holds it.</summary>
    public static RunLock Acquire(string folder)
    {
        if (TryAcquire(folder) is { } held)
            return held;
        string who = Note(folder) ?? "";
        throw new WtnException(
            $"{folder} is in use by another wtn process{(who.Length > 0 ? $" ({who})" : "")}; wait for it to finish or stop it, then run the same command again to resume"
        );
    }

    /// <summary>Takes the lock, or returns null when another process (or another handle of this one) holds it.</summary>
    public static RunLock? TryAcquire(string folder)
    {
        Directory.CreateDirectory(folder);
        var owner = OwnerFile(folder);
        FileStream fs;
        try
        {
            fs = new FileStream(
                Path.Combine(folder, ".lock"),
                FileMode.OpenOrCreate,
                FileAccess.ReadWrite,
                FileShare.None
            );
        }
        catch (IOException)
        {
            return null;
        }
        try
        {
            File.WriteAllText(
                owner,
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"process {Environment.ProcessId} on {Environment.MachineName}, since {DateTime.UtcNow.ToString(NoteTime, CultureInfo.InvariantCulture)} UTC"
                )
            );
        }
        catch (IOException) { } // the owner note is informative only
        return new RunLock(fs, owner);
    }

    /// <summary>
    /// Who holds <paramref name="folder"/>'s lock, without touching it: the owner note ("process 123 on host, since
    /// ...") if the process it names is alive on this machine (or the note names another machine), else null. A killed
    /// process leaves its note behind; its lock is gone with it.
    /// </summary>
    public static string? Holder(string folder) => Owner(folder) is { } o && (o.Pid is null || o.Alive) ? o.Note : null;

    /// <summary>The live process on this machine that holds <paramref name="folder"/>'s lock (by its owner note), or null.</summary>
    public static int? HolderProcess(string folder) => Owner(folder) is { Pid: { } pid, Alive: true } ? pid : null;

    /// <summary>
    /// The owner note, the process it names if that is on this machine (else null), and whether it is alive: a process
    /// with that id that started after the note was written is another one that reuses the id.
    /// </summary>
    static (string Note, int? Pid, bool Alive)? Owner(string folder)
    {
        if (Note(folder) is not { } note)
            return null;
        var m = System.Text.RegularExpressions.Regex.Match(note, @"^process (\d+) on (.+?), since (.+?) UTC");
        if (
            !m.Success
            || !DateTime.TryParseExact(
                m.Groups[3].Value,
                NoteTime,
                CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal,
                out var since
            )
        )
            return null;
        if (m.Groups[2].Value != Environment.MachineName)
            return (note, null, false);
        int pid = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            // The holder started before it took the lock. Slack: the note's time is truncated to the second, and the
            // start time is derived from the boot time, which the runtime estimates.
            return (note, pid, !p.HasExited && p.StartTime.ToUniversalTime() < since.AddSeconds(5));
        }
        catch (ArgumentException)
        {
            return (note, pid, false);
        } // no such process
        catch (InvalidOperationException)
        {
            return (note, pid, false);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return (note, pid, false);
        } // its start time cannot be read
    }

    /// <summary>How the owner note writes the time it took the lock (UTC), and how <see cref="Owner"/> reads it back.</summary>
    const string NoteTime = "yyyy-MM-dd HH:mm:ss";

    static string OwnerFile(string folder) => Path.Combine(folder, ".lock.owner");

    /// <summary>The owner note, or null if there is none (or it cannot be read: it is informative only).</summary>
    static string? Note(string folder)
    {
        try
        {
            return File.ReadAllText(OwnerFile(folder)).Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        try
        {
            File.Delete(ownerFile);
        }
        catch (IOException) { }
        stream.Dispose();
    }
}
