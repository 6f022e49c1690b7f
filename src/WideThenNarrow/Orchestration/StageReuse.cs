using System.Runtime.InteropServices;
using System.Security.Cryptography;
using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Training;

namespace WideThenNarrow.Orchestration;

/// <summary>
/// <c>wtn run --reuse-from RUN_FOLDER</c>: a stage not done in this run that another run (RUN_FOLDER/seed-S/STAGE)
/// finished under the same settings (its recorded fingerprint is this run's, or its settings differ only in keys that
/// change nothing, as <see cref="StageScheduler.Verify"/> accepts) is brought into this run instead of trained again:
/// its files hard-linked where the file system allows, else copied, into a hidden folder beside the stage's that is
/// renamed into place at the end, so an interrupted copy never leaves a stage that looks finished. The stage folder
/// then holds <see cref="FileName"/>, naming where it came from, for the report.
/// </summary>
internal static class StageReuse
{
    /// <summary>STAGE/reused-from.txt: the full path of the stage folder a reused stage was brought from.</summary>
    public const string FileName = "reused-from.txt";

    /// <summary>Files of a stage folder that belong to the process using it, not to the stage.</summary>
    static readonly HashSet<string> NotCopied = [".lock", ".lock.owner", FileName];

    /// <summary>The full path of a run folder given to --reuse-from, checked: it exists and a wtn run wrote it.</summary>
    public static string CheckFolder(string folder, string experimentDir)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        if (!Directory.Exists(full))
            throw new WtnException(
                $"--reuse-from: {folder} does not exist; give the folder of an earlier run (RUNS_DIR/NAME, holding its seed-S folders)"
            );
        if (!File.Exists(Path.Combine(full, ExperimentRunner.RunConfigFile)))
            throw new WtnException(
                $"--reuse-from: {folder} is not a run folder of wtn run (it has no {ExperimentRunner.RunConfigFile}); give RUNS_DIR/NAME of an earlier run"
            );
        if (
            string.Equals(
                full,
                Path.TrimEndingDirectorySeparator(Path.GetFullPath(experimentDir)),
                StringComparison.Ordinal
            )
        )
            throw new WtnException($"--reuse-from: {folder} is this run's own folder; give the folder of another run");
        return full;
    }

    /// <summary>
    /// Brings every stage of <paramref name="plan"/> not done here from the first of <paramref name="from"/> (checked
    /// run folders) that finished it under the same settings; logs one line per stage reused or found under other
    /// settings. Returns the stages reused, with the folders they came from.
    /// </summary>
    public static IReadOnlyList<(PlannedStage Stage, string From)> Apply(
        IEnumerable<PlannedStage> plan,
        IReadOnlyList<string> from,
        IProgress<string>? log
    )
    {
        var reused = new List<(PlannedStage, string)>();
        foreach (var s in plan.Where(s => !s.Done))
        {
            bool seen = false;
            int before = reused.Count;
            foreach (var run in from)
            {
                var src = Path.Combine(StageCatalogue.SeedDir(run, s.Ctx.Seed), s.Name);
                if (!Directory.Exists(src))
                    continue;
                seen = true;
                if (Same(s, src, log) && Bring(s, src, log))
                {
                    reused.Add((s, src));
                    break;
                }
            }
            // Said once, after every folder was tried: a later one may still have had it.
            if (seen && reused.Count == before)
                log?.Report($"{s}: no --reuse-from run has it finished under this run's settings; training it here");
        }
        return reused;
    }

    /// <summary>Whether <paramref name="src"/> is <paramref name="s"/> finished under the same settings, its weights intact; says why not.</summary>
    static bool Same(PlannedStage s, string src, IProgress<string>? log)
    {
        StageSummary? done;
        try
        {
            done = StageSummary.TryLoad(src);
        }
        catch (WtnException e)
        {
            log?.Report($"{s} not reused from {src}: {e.Message}");
            return false;
        }
        if (done is null)
        {
            log?.Report($"{s} not reused from {src}: it is not finished there");
            return false;
        }
        if (done.Fingerprint != s.Fingerprint)
        {
            var changes = done.Settings is null
                ? null
                : ConfigLoader.Changes(done.Settings, s.Settings, ConfigLoader.DefaultOf<ExperimentConfig>);
            if (changes is not { Count: 0 })
            {
                log?.Report(
                    $"{s} not reused from {src}: it was trained under other settings ({(changes is null ? "it records none" : ConfigLoader.Describe(changes))})"
                );
                return false;
            }
        }
        var weights = Path.Combine(src, done.Weights);
        if (done.WeightsSha256 is null || !File.Exists(weights) || Sha256Of(weights) != done.WeightsSha256)
        {
            log?.Report($"{s} not reused from {src}: its weights {weights} are missing, damaged or unchecked");
            return false;
        }
        return true;
    }

    /// <summary>Links or copies <paramref name="src"/> into the stage's folder through a temporary folder renamed into place.</summary>
    static bool Bring(PlannedStage s, string src, IProgress<string>? log)
    {
        var dest = s.Dir;
        var seedDir = Path.GetDirectoryName(dest)!;
        if (Directory.Exists(dest))
        {
            // A folder with nothing but a lock left behind is no start; anything else is this run's own work, kept.
            if (RunLock.Holder(dest) is { } holder)
            {
                log?.Report($"{s} not reused from {src}: {holder} holds {dest}");
                return false;
            }
            if (Directory.EnumerateFileSystemEntries(dest).Any(e => !NotCopied.Contains(Path.GetFileName(e))))
            {
                log?.Report(
                    $"{s} not reused from {src}: this run has started it in {dest} (it resumes there); delete that folder to reuse the finished one"
                );
                return false;
            }
            Directory.Delete(dest, recursive: true);
        }
        Directory.CreateDirectory(seedDir);
        // Left by an interrupted reuse: its process is gone (a wtn run --only beside this one may be copying its own).
        foreach (var stale in Directory.GetDirectories(seedDir, $".{s.Name}.reuse-*"))
            if (!Alive(Path.GetFileName(stale)[$".{s.Name}.reuse-".Length..]))
                TryDelete(stale);
        var tmp = Path.Combine(seedDir, $".{s.Name}.reuse-{Environment.ProcessId}");
        bool linkedAll = true;
        try
        {
            linkedAll = CopyTree(src, tmp);
            File.WriteAllText(Path.Combine(tmp, FileName), src + "\n");
            Directory.Move(tmp, dest); // one rename: the stage appears finished, with all its files, or not at all
        }
        catch (IOException) when (StageSummary.IsDone(dest))
        {
            TryDelete(tmp);
            log?.Report($"{s} done by another process");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            throw new WtnException(
                $"--reuse-from: bringing {src} to {dest} failed ({e.Message}); free space or fix the permissions and run the same command again",
                e
            );
        }
        log?.Report($"{s} reused from {src} (same settings; files {(linkedAll ? "hard-linked" : "copied")})");
        return true;
    }

    /// <summary>Recreates <paramref name="src"/>'s tree at <paramref name="dest"/>; returns whether every file could be hard-linked.</summary>
    static bool CopyTree(string src, string dest)
    {
        bool linkedAll = true;
        Directory.CreateDirectory(dest);
        foreach (var file in Directory.GetFiles(src))
        {
            var name = Path.GetFileName(file);
            if (NotCopied.Contains(name))
                continue;
            var target = Path.Combine(dest, name);
            if (!HardLink(file, target))
            {
                linkedAll = false;
                File.Copy(file, target);
            }
        }
        foreach (var dir in Directory.GetDirectories(src))
            linkedAll &= CopyTree(dir, Path.Combine(dest, Path.GetFileName(dir)));
        return linkedAll;
    }

    /// <summary>
    /// A second name for the file (no bytes copied). Safe here: wtn replaces a stage's files by renaming new ones into
    /// place, never by writing into them, and a finished stage's files are not written again.
    /// </summary>
    static bool HardLink(string existing, string link)
    {
        if (OperatingSystem.IsWindows())
            return false;
        try
        {
            return Link(existing, link) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Whether the process a temporary folder's name ends with is alive (not this one: its own is a leftover).</summary>
    static bool Alive(string pid)
    {
        if (
            !int.TryParse(
                pid,
                System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture,
                out var id
            )
            || id == Environment.ProcessId
        )
            return false;
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(id);
            return !p.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
        catch (IOException) { } // left for the next reuse to clear
    }

    static string Sha256Of(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    static extern int Link(
        [MarshalAs(UnmanagedType.LPUTF8Str)] string existing,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string link
    );
}
