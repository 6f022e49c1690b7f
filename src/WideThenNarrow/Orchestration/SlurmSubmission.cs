using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using WideThenNarrow.Reporting;

namespace WideThenNarrow.Orchestration;

/// <summary>
/// One stage of one seed as <c>wtn submit</c> sees it: the stages of its seed it starts from, the units that can run
/// as a job array (stage 2 with teacher input; 0 otherwise), and the resources it asks for.
/// </summary>
public sealed record StageJobSpec(long Seed, string Stage, IReadOnlyList<string> Needs, int Units, bool Done)
{
    /// <summary>Estimated seconds of the whole stage (its units included) on the threads asked for: <see cref="Time"/> without the margin.</summary>
    public double Seconds { get; init; }

    /// <summary>The --time limit: the estimate with its margin (<see cref="SlurmSubmission.TimeLimit"/>).</summary>
    public required TimeSpan Time { get; init; }

    /// <summary>Time limit of one unit's task when <see cref="Units"/> &gt; 0.</summary>
    public TimeSpan UnitTime { get; init; }
    public required long MemoryMb { get; init; }

    /// <summary>Whether the time came from a pace measured in the run folder (else from multiply-accumulates at a default pace).</summary>
    public bool Measured { get; init; }

    /// <summary>Units already done (their block.json written), not submitted again.</summary>
    public IReadOnlySet<int> UnitsDone { get; init; } = new HashSet<int>();
    public string Id => $"seed-{Seed}/{Stage}";
}

/// <summary>What <c>wtn submit</c> needs besides the experiment: how to call wtn, where, and the Slurm options.</summary>
public sealed record SlurmSettings
{
    /// <summary>The command that runs wtn on the compute nodes (an apphost path, or dotnet and the dll).</summary>
    public required IReadOnlyList<string> Wtn { get; init; }
    public required int Threads { get; init; }
    public required string DataDir { get; init; }
    public string Device { get; init; } = "cpu";
    public string? Partition { get; init; }
    public string? Account { get; init; }
}

/// <summary>A job submitted for a stage: the stage job, or (<see cref="Part"/> "units") the job array of its units.</summary>
public sealed record SlurmRecord(
    long Seed,
    string Stage,
    string Part,
    string JobId,
    IReadOnlyList<string> After,
    string Log,
    DateTime SubmittedUtc
);

/// <summary>A job's state as Slurm tells it (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ...), with its reason and exit code.</summary>
public sealed record SlurmJobState(string State, string? Reason, string? ExitCode);

/// <summary>The Slurm commands: submit a script, tell jobs' states. <see cref="SlurmCli"/> calls sbatch and scontrol.</summary>
public interface ISlurm
{
    /// <summary>Submits <paramref name="script"/> (sbatch) and returns the job id.</summary>
    string Submit(string script);

    /// <summary>The state of job <paramref name="jobId"/> (an array: the state of its tasks together), or null when Slurm no longer knows it.</summary>
    SlurmJobState? State(string jobId);
}

/// <summary>
/// <c>wtn submit</c>: an experiment's stage graph as Slurm jobs. One job per stage and seed runs
/// <c>wtn run --only seed-S/STAGE</c> against the shared run folder, after the jobs of the stages it starts from
/// (<c>--dependency=afterok:</c>, <c>--kill-on-invalid-dep=yes</c>: a failed stage cancels its dependents). Stage 2 with
/// teacher input is a job array, one task per unit (<c>--unit $SLURM_ARRAY_TASK_ID</c>), then the stage job, which
/// assembles the units, copies the head and recalibrates batch norm. A last job runs plain <c>wtn run</c> once every
/// stage is done: it skips them all and writes the final report. Jobs are requeueable and get SIGTERM 120 s before
/// their time limit: wtn checkpoints, the script puts the job back in the queue, and it resumes exactly. Finished stages
/// and stages whose job is still queued or running are not submitted again (a new job waits for the running one).
/// </summary>
public sealed class SlurmSubmission(string experimentDir, string experimentName, int seeds, SlurmSettings settings)
{
    /// <summary>runs/EXPERIMENT/slurm: the resolved experiment file the jobs read, their logs, and jobs.json.</summary>
    public string Dir => Path.Combine(experimentDir, "slurm");
    public string ConfigPath => Path.Combine(Dir, "experiment.yaml");

    public static string RecordsPath(string experimentDir) => Path.Combine(experimentDir, "slurm", "jobs.json");

    /// <summary>Minimum --time of a job: loading data and the networks, writing the stage, with room to spare.</summary>
    public static readonly TimeSpan MinimumTime = TimeSpan.FromMinutes(10);

    /// <summary>The --time for an estimated <paramref name="seconds"/>: 3 x the estimate (2 x when measured), at least <see cref="MinimumTime"/>, whole minutes.</summary>
    public static TimeSpan TimeLimit(double seconds, bool measured) =>
        TimeSpan.FromMinutes(Math.Ceiling(Math.Max(MinimumTime.TotalMinutes, seconds * (measured ? 2 : 3) / 60)));

    /// <summary>Slurm's D-HH:MM:SS.</summary>
    public static string Format(TimeSpan t) =>
        string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalDays}-{t.Hours:D2}:{t.Minutes:D2}:{t.Seconds:D2}");

    /// <summary>A submission's jobs as written (in dependency order): their names, scripts with dependencies by name.</summary>
    public sealed record Job(
        string Name,
        long Seed,
        string Stage,
        string Part,
        IReadOnlyList<string> After,
        string Log,
        Func<IReadOnlyList<string>, string> Script
    );

    /// <summary>
    /// The jobs to submit for <paramref name="stages"/> (every declared stage of every seed, in order), given the jobs
    /// of earlier submissions still queued or running (<paramref name="live"/>, by stage id and part). A job's
    /// <see cref="Job.After"/> names the jobs it waits for: names in this plan or job ids of live ones.
    /// </summary>
    public List<Job> Plan(
        IReadOnlyList<StageJobSpec> stages,
        IReadOnlyDictionary<(string Id, string Part), string> live
    )
    {
        var jobs = new List<Job>();
        var jobOf = new Dictionary<string, string>(); // stage id -> job name or live job id to wait for
        foreach (var s in stages)
        {
            if (s.Done)
                continue;
            var after = s
                .Needs.Select(n => $"seed-{s.Seed}/{n}")
                .Where(jobOf.ContainsKey)
                .Select(n => jobOf[n])
                .ToList();
            if (live.TryGetValue((s.Id, "stage"), out var running))
            {
                jobOf[s.Id] = running;
                continue;
            }
            var name = $"wtn-{experimentName}-s{s.Seed}-{s.Stage}";
            if (s.Units > 0 && s.UnitsDone.Count < s.Units)
            {
                var unitsName = name + "-units";
                if (live.TryGetValue((s.Id, "units"), out var unitsJob))
                    after = [.. after, unitsJob];
                else
                {
                    var todo = Enumerable.Range(0, s.Units).Where(k => !s.UnitsDone.Contains(k)).ToList();
                    var log = Path.Combine(Dir, $"seed-{s.Seed}-{s.Stage}-units-%A_%a.out");
                    jobs.Add(
                        new Job(unitsName, s.Seed, s.Stage, "units", after, log, deps =>
                            Script(
                                unitsName,
                                log,
                                deps,
                                s.UnitTime,
                                s.Measured,
                                s.MemoryMb,
                                $"--array={string.Join(",", Compact(todo))}",
                                $"--only {s.Id} --unit \"$SLURM_ARRAY_TASK_ID\""
                            )
                        )
                    );
                    after = [.. after, unitsName];
                }
            }
            var stageLog = Path.Combine(Dir, $"seed-{s.Seed}-{s.Stage}-%j.out");
            var deps = after;
            jobs.Add(
                new Job(name, s.Seed, s.Stage, "stage", deps, stageLog, d =>
                    Script(name, stageLog, d, s.Time, s.Measured, s.MemoryMb, null, $"--only {s.Id}")
                )
            );
            jobOf[s.Id] = name;
        }
        // The report job, when this submission adds stage jobs (it waits for those of earlier submissions too).
        if (jobs.Count > 0)
        {
            var name = $"wtn-{experimentName}-report";
            var log = Path.Combine(Dir, "report-%j.out");
            var after = jobOf.Values.Distinct().ToList();
            long mem = stages.Select(s => s.MemoryMb).DefaultIfEmpty(2048).Max();
            jobs.Add(
                new Job(name, -1, "report", "report", after, log, d =>
                    Script(name, log, d, MinimumTime + MinimumTime, null, mem, null, "")
                )
            );
        }
        return jobs;
    }

    /// <summary>"0-3,5": runs of consecutive indices as ranges.</summary>
    static IEnumerable<string> Compact(List<int> xs)
    {
        for (int i = 0; i < xs.Count; )
        {
            int j = i;
            while (j + 1 < xs.Count && xs[j + 1] == xs[j] + 1)
                j++;
            yield return j == i ? $"{xs[i]}" : $"{xs[i]}-{xs[j]}";
            i = j + 1;
        }
    }

    static string Quote(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "/._-=:+,@".Contains(c))
            ? s
            : "'" + s.Replace("'", "'\\''") + "'";

    /// <summary>
    /// One job's script. wtn runs in the background so that the shell can pass SIGTERM on (Slurm's warning reaches the
    /// batch shell, <c>B:</c>); wtn then writes one checkpoint and exits with 130, and the job goes back to the queue.
    /// </summary>
    string Script(
        string name,
        string log,
        IReadOnlyList<string> after,
        TimeSpan time,
        bool? measured,
        long memoryMb,
        string? array,
        string only
    )
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("#!/bin/bash");
        sb.AppendLine(inv, $"#SBATCH --job-name={name}");
        sb.AppendLine(inv, $"#SBATCH --output={log}");
        sb.AppendLine("#SBATCH --open-mode=append");
        sb.AppendLine(inv, $"#SBATCH --cpus-per-task={settings.Threads}");
        sb.AppendLine(inv, $"#SBATCH --mem={memoryMb}M");
        sb.AppendLine(inv, $"#SBATCH --time={Format(time)}");
        sb.AppendLine("#SBATCH --requeue");
        sb.AppendLine("#SBATCH --signal=B:TERM@120");
        if (settings.Partition is { } p)
            sb.AppendLine(inv, $"#SBATCH --partition={p}");
        if (settings.Account is { } a)
            sb.AppendLine(inv, $"#SBATCH --account={a}");
        if (array is not null)
            sb.AppendLine(inv, $"#SBATCH {array}");
        if (measured is { } m)
            sb.AppendLine(
                m
                    ? "# --time: the stage's work at the pace measured in the run folder, x 2"
                    : $"# --time: the stage's multiply-accumulates at {ExperimentRunner.DefaultMacsPerSecondPerThread / 1e9:G3} G per second and thread (nothing measured yet), x 3"
            );
        if (after.Count > 0)
        {
            sb.AppendLine(inv, $"#SBATCH --dependency=afterok:{string.Join(":", after)}");
            sb.AppendLine("#SBATCH --kill-on-invalid-dep=yes");
        }
        var wtn = string.Join(" ", settings.Wtn.Select(Quote));
        sb.AppendLine("trap 'kill -TERM \"$pid\" 2>/dev/null' TERM");
        sb.AppendLine(
            inv,
            $"{wtn} --threads {settings.Threads} --device {Quote(settings.Device)} --data-dir {Quote(Path.GetFullPath(settings.DataDir))} \\"
        );
        sb.AppendLine(
            inv,
            $"  run {Quote(ConfigPath)} --runs-dir {Quote(Path.GetDirectoryName(experimentDir)!)} --seeds {seeds} {only} &"
        );
        sb.AppendLine("pid=$!");
        sb.AppendLine("while :; do wait \"$pid\"; rc=$?; kill -0 \"$pid\" 2>/dev/null || break; done");
        sb.AppendLine(
            "# 130: stopped by the warning before the time limit, after one checkpoint: back in the queue, to resume."
        );
        sb.AppendLine("if [ \"$rc\" = 130 ]; then scontrol requeue \"$SLURM_JOB_ID\"; fi");
        sb.AppendLine("exit \"$rc\"");
        return sb.ToString();
    }

    /// <summary>
    /// Submits <paramref name="jobs"/> in order (each after those it waits for), writes their records into jobs.json
    /// (beside the earlier submissions' records) and returns them.
    /// </summary>
    public IReadOnlyList<SlurmRecord> Submit(IReadOnlyList<Job> jobs, ISlurm slurm, string resolvedConfigYaml)
    {
        Directory.CreateDirectory(Dir);
        ExperimentRunner.WriteAtomically(ConfigPath, resolvedConfigYaml);
        var ids = new Dictionary<string, string>();
        var records = new List<SlurmRecord>();
        try
        {
            foreach (var j in jobs)
            {
                var after = j.After.Select(a => ids.GetValueOrDefault(a, a)).ToList();
                ids[j.Name] = slurm.Submit(j.Script(after));
                records.Add(new SlurmRecord(j.Seed, j.Stage, j.Part, ids[j.Name], after, j.Log, DateTime.UtcNow));
            }
        }
        finally
        {
            var all = ReadRecords(experimentDir).Concat(records).ToList();
            ExperimentRunner.WriteAtomically(RecordsPath(experimentDir), JsonSerializer.Serialize(all, Json));
        }
        return records;
    }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Every job wtn submit recorded for the experiment, oldest first (none when it was never submitted).</summary>
    public static IReadOnlyList<SlurmRecord> ReadRecords(string experimentDir)
    {
        var path = RecordsPath(experimentDir);
        if (!File.Exists(path))
            return [];
        try
        {
            return JsonSerializer.Deserialize<List<SlurmRecord>>(File.ReadAllText(path), Json) ?? [];
        }
        catch (JsonException e)
        {
            throw new WtnException(
                $"{path}: not a wtn submit record ({e.Message}); delete it to forget the submitted jobs"
            );
        }
    }

    /// <summary>Each stage's newest job per part with its state now (null: Slurm no longer knows the job).</summary>
    public static Dictionary<(string Id, string Part), (SlurmRecord Record, SlurmJobState? State)> Latest(
        string experimentDir,
        ISlurm slurm
    ) =>
        ReadRecords(experimentDir)
            .GroupBy(r => ($"seed-{r.Seed}/{r.Stage}", r.Part))
            .ToDictionary(g => g.Key, g => (g.Last(), slurm.State(g.Last().JobId)));

    /// <summary>
    /// <paramref name="status"/> with each submitted stage's job beside its progress (<see cref="StageStatus.Job"/>):
    /// its id and state, and for a failed job why, for a job cancelled after a failure which stage failed.
    /// </summary>
    public static IReadOnlyList<StageStatus> Annotate(
        IReadOnlyList<StageStatus> status,
        string experimentDir,
        ISlurm slurm
    )
    {
        if (ReadRecords(experimentDir).Count == 0)
            return status;
        Dictionary<(string Id, string Part), (SlurmRecord Record, SlurmJobState? State)> latest;
        try
        {
            latest = Latest(experimentDir, slurm);
        }
        catch (WtnException e)
        {
            return [.. status.Select(s => s with { Job = $"Slurm: {e.Message}" })];
        }
        // A failed job says why; a job cancelled for a dependency that failed (directly or down a chain) names it.
        var why = new Dictionary<string, string>();
        var root = new Dictionary<string, SlurmRecord>();
        var byId = latest.Values.ToDictionary(j => j.Record.JobId);
        foreach (var r in ReadRecords(experimentDir).Where(r => byId.ContainsKey(r.JobId)))
        {
            var st = byId[r.JobId].State;
            if (Failure(r, st) is { } w)
                (why[r.JobId], root[r.JobId]) = (w, r);
            else if (
                st?.State == "CANCELLED"
                && r.After.FirstOrDefault(root.ContainsKey) is { } dep
                && root[dep] is var x
            )
                (why[r.JobId], root[r.JobId]) = ($"not run, seed-{x.Seed}/{x.Stage} (job {x.JobId}) failed", x);
        }
        return
        [
            .. status.Select(s =>
            {
                var id = $"seed-{s.Seed}/{s.Stage}";
                var lines = new[] { "units", "stage" }
                    .Where(part => latest.ContainsKey((id, part)))
                    .Select(part => Describe(latest[(id, part)].Record, latest[(id, part)].State, why))
                    .ToList();
                return lines.Count == 0 ? s : s with { Job = string.Join("; ", lines) };
            }),
        ];
    }

    /// <summary>Whether a job in this state is still to run or running (a new job waits for it instead of replacing it).</summary>
    public static bool Live(SlurmJobState? s) =>
        s
            is {
                State: "PENDING"
                    or "RUNNING"
                    or "REQUEUED"
                    or "CONFIGURING"
                    or "COMPLETING"
                    or "SUSPENDED"
                    or "REQUEUE_HOLD"
                    or "REQUEUE_FED"
                    or "RESIZING"
            };

    /// <summary>
    /// One line for a stage's job beside its progress: "Slurm job 12 RUNNING", "Slurm job 12 FAILED (exit 1:0): LAST LOG
    /// LINE", "Slurm job 14 CANCELLED: not run, seed-0/wide (job 12) failed". <paramref name="why"/> tells, by job
    /// id, why a job failed or was not run.
    /// </summary>
    public static string Describe(SlurmRecord r, SlurmJobState? s, IReadOnlyDictionary<string, string> why)
    {
        var what = r.Part == "units" ? $"Slurm job array {r.JobId} (units)" : $"Slurm job {r.JobId}";
        if (s is null)
            return $"{what}: no longer known to Slurm";
        var line = $"{what} {s.State}";
        if (why.TryGetValue(r.JobId, out var w))
            return $"{line}: {w}";
        if (s.State == "PENDING" && s.Reason is { } reason && reason != "None")
            line += $" ({reason})";
        return line;
    }

    /// <summary>Why a job failed, or null when it did not: its state and exit code, and the last line its log has that says something.</summary>
    public static string? Failure(SlurmRecord r, SlurmJobState? s)
    {
        if (
            s is null
            || s.State is not ("FAILED" or "TIMEOUT" or "OUT_OF_MEMORY" or "NODE_FAIL" or "BOOT_FAIL" or "DEADLINE")
        )
            return null;
        var why = s.ExitCode is { } code && code != "0:0" ? $"exit {code}" : s.State.ToLowerInvariant();
        return LastLogLine(r) is { } line ? $"{why}; {line}" : why;
    }

    /// <summary>The last non-empty line of the job's log (array: of any task's log), where wtn writes its one-line error.</summary>
    static string? LastLogLine(SlurmRecord r)
    {
        var dir = Path.GetDirectoryName(r.Log)!;
        var pattern = Path.GetFileName(r.Log).Replace("%A_%a", $"{r.JobId}_*").Replace("%j", r.JobId);
        if (!Directory.Exists(dir))
            return null;
        foreach (var f in Directory.GetFiles(dir, pattern).OrderByDescending(File.GetLastWriteTimeUtc))
        {
            var last = File.ReadLines(f).Select(l => l.Trim()).LastOrDefault(l => l.Length > 0);
            if (last is not null)
                return last;
        }
        return null;
    }
}

/// <summary>Slurm through its commands: <c>sbatch --parsable</c>, <c>scontrol show job</c>, else <c>sacct</c>.</summary>
public sealed class SlurmCli : ISlurm
{
    public string Submit(string script)
    {
        var (code, stdout, stderr) = Run("sbatch", ["--parsable"], script);
        if (code != 0)
            throw new WtnException(
                $"sbatch refused a job ({(stderr + stdout).Trim()}); wtn submit --dry-run shows the scripts"
            );
        return stdout.Trim().Split(';')[0];
    }

    public SlurmJobState? State(string jobId)
    {
        var (code, stdout, _) = Run("scontrol", ["show", "job", "-o", jobId], null);
        var tasks = new List<SlurmJobState>();
        if (code == 0)
            foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                    .Select(f => f.Split('=', 2))
                    .Where(kv => kv.Length == 2)
                    .GroupBy(kv => kv[0])
                    .ToDictionary(g => g.Key, g => g.First()[1]);
                if (fields.TryGetValue("JobState", out var state))
                    tasks.Add(
                        new SlurmJobState(
                            state,
                            fields.GetValueOrDefault("Reason"),
                            fields.GetValueOrDefault("ExitCode")
                        )
                    );
            }
        else
        {
            // Gone from the controller's memory (MinJobAge): accounting, where there is any.
            var (acode, aout, _) = Run("sacct", ["-n", "-P", "-X", "-j", jobId, "-o", "State,ExitCode"], null);
            if (acode == 0)
                foreach (var line in aout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    if (line.Split('|') is [var st, var exit, ..])
                        tasks.Add(new SlurmJobState(st.Split(' ')[0], null, exit));
        }
        if (tasks.Count == 0)
            return null;
        // An array: the worst task's state names the whole.
        foreach (
            var worst in new[]
            {
                "FAILED",
                "OUT_OF_MEMORY",
                "TIMEOUT",
                "NODE_FAIL",
                "CANCELLED",
                "RUNNING",
                "REQUEUED",
                "PENDING",
            }
        )
            if (tasks.FirstOrDefault(t => t.State == worst) is { } t)
                return t;
        return tasks[0];
    }

    static (int Code, string Stdout, string Stderr) Run(string exe, IReadOnlyList<string> args, string? stdin)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            if (stdin is not null)
            {
                p.StandardInput.Write(stdin);
                p.StandardInput.Close();
            }
            var err = p.StandardError.ReadToEndAsync();
            var output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output, err.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new WtnException(
                $"{exe}: cannot run it ({e.Message}); wtn submit and the Slurm states in wtn report need Slurm's commands on the PATH"
            );
        }
    }
}
