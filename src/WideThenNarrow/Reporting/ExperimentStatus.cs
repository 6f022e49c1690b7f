using System.Globalization;
using System.Text.Json.Serialization;
using WideThenNarrow.Method;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Training;

namespace WideThenNarrow.Reporting;

[JsonConverter(typeof(JsonStringEnumConverter<StageState>))]
public enum StageState
{
    /// <summary>stage.json written: the stage's weights and summary are final.</summary>
    Done,

    /// <summary>The stage folder exists without stage.json: running now, or interrupted (a rerun resumes it).</summary>
    Started,

    /// <summary>Not begun.</summary>
    Pending,
}

/// <summary>
/// Where one stage of one seed stands. For a started stage, <see cref="Run"/> names the training run in progress
/// inside the stage folder (train, hint, block-03, ...) and <see cref="Progress"/> is its progress.json. <see cref="Holder"/> is the process
/// holding the stage's lock ("process 123 on host, since ..."), or null when no live process does: the stage was
/// stopped and resumes when the run starts again.
/// </summary>
public sealed record StageStatus(
    long Seed,
    string Stage,
    StageState State,
    string? Run,
    RunProgressFile? Progress,
    double? Top1,
    double? WallSeconds
)
{
    public string? Holder { get; init; }

    /// <summary>A started stage's validation top-1 after each epoch so far of its newest run (index = epoch - 1; null when not evaluated).</summary>
    public IReadOnlyList<double?>? Curve { get; init; }

    /// <summary>A done stage brought from another run by <c>wtn run --reuse-from</c>: the stage folder it came from.</summary>
    public string? ReusedFrom { get; init; }

    /// <summary>The Slurm job of a stage <c>wtn submit</c> submitted: "Slurm job 12 RUNNING", or why it failed.</summary>
    public string? Job { get; init; }

    /// <summary>One line: "top-1 91.20 %, 1.2 h" (done) or "train: epoch 3/30, step 1,100/14,070 (8 %), 120 samples/s, about 3.9 h left", then its Slurm job.</summary>
    public string Describe() =>
        Job is null ? Where()
        : Where() is { Length: > 0 } p ? $"{p}; {Job}"
        : Job;

    string Where()
    {
        var inv = CultureInfo.InvariantCulture;
        switch (State)
        {
            case StageState.Done:
                return string.Join(
                    ", ",
                    new[]
                    {
                        Top1 is { } t ? string.Create(inv, $"test top-1 {100 * t:F2} %") : null,
                        WallSeconds is { } w ? Duration(w) : null,
                        ReusedFrom is { } from ? $"reused from {from}" : null,
                    }.OfType<string>()
                );
            case StageState.Started when Progress is { } p:
                var parts = new List<string>
                {
                    p.Epochs > 0
                        ? string.Create(inv, $"epoch {p.Epoch}/{p.Epochs}")
                        : string.Create(inv, $"epoch {p.Epoch}"),
                    p.TotalSteps > 0
                        ? string.Create(
                            inv,
                            $"step {p.Step:N0}/{p.TotalSteps:N0} ({100.0 * p.Step / p.TotalSteps:F0} %)"
                        )
                        : string.Create(inv, $"step {p.Step:N0}"),
                };
                if (p.SamplesPerSecond > 0)
                    parts.Add(string.Create(inv, $"{p.SamplesPerSecond:F0} samples/s"));
                if (p.LastEvalTop1 is { } e)
                    parts.Add(string.Create(inv, $"last validation top-1 {100 * e:F2} %"));
                if (p.EtaSeconds is { } eta && eta > 0)
                    parts.Add(
                        $"about {Duration(eta)} left in this run{(Holder is not null ? $" (until about {Clock(p.UpdatedUtc.AddSeconds(eta))})" : "")}"
                    );
                parts.Add(string.Create(inv, $"updated {p.UpdatedUtc:yyyy-MM-dd HH:mm} UTC"));
                return $"{Run}: {string.Join(", ", parts)}{Held()}";
            case StageState.Started:
                return (Run is null ? "folder created, no training run yet" : $"{Run}: no progress recorded yet")
                    + Held();
            default:
                return "";
        }
    }

    /// <summary>Who runs it; with a Slurm job, the job's state says whether it is stopped.</summary>
    string Held() =>
        Holder is { } h ? $"; running in {h.Split(',')[0]}"
        : Job is null ? "; stopped (resumes when the run starts again)"
        : "";

    /// <summary>"14:05 UTC", or "2026-12-01 14:05 UTC" when not today (UTC).</summary>
    public static string Clock(DateTime utc) =>
        utc.Date == DateTime.UtcNow.Date
            ? string.Create(CultureInfo.InvariantCulture, $"{utc:HH:mm} UTC")
            : string.Create(CultureInfo.InvariantCulture, $"{utc:yyyy-MM-dd HH:mm} UTC");

    public static string Duration(double seconds) =>
        seconds >= 5400 ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:F1} h")
        : seconds >= 600 ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:F0} min")
        : string.Create(CultureInfo.InvariantCulture, $"{seconds:F0} s");
}

/// <summary>
/// A stage's estimated work, as the scheduler counts it (training steps x multiply-accumulates): the whole stage's, and
/// that of its run named "train" (the last, for a stage with a hint run before it; null for stage 2, which has one run
/// per block). <see cref="Kind"/> names the networks its train run runs ("thin", "thin+wide" for a student with its
/// teacher, ...): stages of one kind train at the same pace per unit of work, which multiply-accumulates alone do not
/// give (on a CPU a narrow network does fewer of them per second than a wide one).
/// </summary>
public sealed record StageWork(long Seed, string Stage, double Cost, double? TrainCost, string? Kind = null)
{
    /// <summary>The stages of the same seed it waits for (none by default).</summary>
    public IReadOnlyList<string> Needs { get; init; } = [];
}

/// <summary>
/// Training time left, in process-seconds (stages side by side in several processes share it): <see cref="Measured"/>
/// from the started stages' own step times; <see cref="Estimated"/> for the <see cref="EstimatedStages"/> stages (or
/// later runs of a started one) not started, from their estimated work at the pace of a started stage of the same
/// kind, else of a finished one (<see cref="SameKindStages"/> of them), else at <see cref="SecondsPerWork"/>, the median pace of the started stages (else of the finished kinds: <see cref="MedianOfFinished"/>).
/// </summary>
public sealed record TimeLeft(
    double Measured,
    double Estimated,
    int EstimatedStages,
    IReadOnlyList<string> MeasuredStages,
    double SecondsPerWork
)
{
    /// <summary>How many of the estimated stages or runs took the pace of started (else finished) stages of their own kind.</summary>
    public int SameKindStages { get; init; }

    /// <summary>Whether <see cref="SecondsPerWork"/> is the finished kinds' median pace (no started stage had recorded a speed).</summary>
    public bool MedianOfFinished { get; init; }

    /// <summary>
    /// Wall time left if the <see cref="Processes"/> processes training now go on, each taking the next free stage as the
    /// scheduler does (the most estimated work ahead first, once the stages it needs are done), at the times above;
    /// null when no live process holds a stage (the run is stopped).
    /// </summary>
    public double? Wall { get; init; }
    public int Processes { get; init; }

    /// <summary>When the estimate was made: with it, the wall time left is also given as a time of day (UTC).</summary>
    public DateTime? AsOf { get; init; }

    public double Total => Measured + Estimated;

    public string Describe()
    {
        var parts = new List<string>();
        if (MeasuredStages.Count > 0)
            parts.Add(
                $"{StageStatus.Duration(Measured)} measured by the started stages at their last recorded speed ({string.Join(", ", MeasuredStages)})"
            );
        if (EstimatedStages > 0)
        {
            string median = MedianOfFinished ? "the finished stages' median pace" : "the started stages' median pace";
            string pace =
                SameKindStages == 0 ? median
                : SameKindStages == EstimatedStages
                    ? "the pace of started (else finished) stages training the same networks"
                : $"the pace of started (else finished) stages training the same networks ({SameKindStages}) or else {median}";
            parts.Add(
                $"{StageStatus.Duration(Estimated)} estimated for {(EstimatedStages == 1 ? "one stage or run" : $"{EstimatedStages} stages or runs")} not started, from their multiply-accumulates at {pace}"
            );
        }
        var wall = Wall is { } w
            ? $" With the {(Processes == 1 ? "one process" : $"{Processes} processes")} training now, about {StageStatus.Duration(w)} of wall time{(AsOf is { } t ? $" (until about {StageStatus.Clock(t.AddSeconds(w))})" : "")}, taking the stages in the order wtn run --jobs takes them."
            : "";
        return $"about {StageStatus.Duration(Total)} of training on one process: {string.Join("; ", parts)}. Processes running stages side by side (--jobs, Slurm jobs) share it.{wall}";
    }
}

/// <summary>Reads how far an experiment's run folder has come, without loading any network or taking its lock.</summary>
public static class ExperimentStatus
{
    /// <summary>
    /// The scheduler's measure of each stage's work, in seconds where anything has been measured: its estimated work
    /// (multiply-accumulates) priced at its kind's pace (<see cref="Paces"/>). Multiply-accumulates track time only
    /// roughly (a wide ResNet-20 step took 2.0 times a thin one's time, not the 4.0 times its MACs say), so once stages
    /// have started or finished (an earlier seed, an earlier session, the processes training now) the order follows
    /// what they take. <see cref="TimeLeft"/> plays the schedule forward with the same prices.
    /// </summary>
    public static Func<StageWork, double> Priced(IReadOnlyList<StageStatus> status, IReadOnlyList<StageWork> work) =>
        Paces.Of(status, work).Priced;

    /// <summary>A started stage whose progress file gives a time left (it has trained in this or an earlier process).</summary>
    internal static bool Measuring(StageStatus s) =>
        s.State == StageState.Started && s.Progress is { EtaSeconds: > 0, TotalSteps: > 0 } p && p.Step < p.TotalSteps;

    internal static double Median(IEnumerable<double> xs)
    {
        var v = xs.Order().ToList();
        return v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }

    /// <summary>
    /// Training left in the stages not done. A stage training its "train" run (the last) counts its own time left (its
    /// step time x steps left); one in an earlier run (a FitNets hint) adds its "train" run's estimate; every other
    /// stage not done is estimated from its work. The pace for an estimate (seconds per unit of work, from the started
    /// stages in their "train" run at their last recorded speed: measured on this machine, in this run's conditions) is
    /// the median of the started stages of the same kind (the same networks: standard_long at standard's pace,
    /// fine-tuning with a teacher at kd's), else that of the finished stages of that kind (their wall time over their
    /// work), else the median of all started stages (of the finished kinds when no started stage has recorded a speed
    /// in its "train" run: between stages). Null when the run is done or nothing was measured (no started stage has
    /// recorded a speed and no stage of a known kind has finished).
    /// </summary>
    public static TimeLeft? TimeLeft(
        IReadOnlyList<StageStatus> status,
        IReadOnlyList<StageWork> work,
        DateTime? now = null
    )
    {
        var byStage = work.ToDictionary(w => (w.Seed, w.Stage));
        var paces = Paces.Of(status, work);
        if (paces.Median is not { } pace || status.All(s => s.State == StageState.Done))
            return null;
        int sameKind = 0;
        double PaceFor(StageWork w)
        {
            if (paces.OfKind(w.Kind) is not { } own)
                return pace;
            sameKind++;
            return own;
        }
        double measured = 0,
            estimated = 0;
        int estimatedStages = 0;
        var measuredStages = new List<string>();
        var left = new Dictionary<(long Seed, string Stage), double>();
        foreach (var s in status.Where(s => s.State != StageState.Done))
        {
            if (!byStage.TryGetValue((s.Seed, s.Stage), out var w))
                continue;
            string name = status.Select(x => x.Seed).Distinct().Count() > 1 ? $"seed {s.Seed} {s.Stage}" : s.Stage;
            if (Measuring(s) && s.Run == "train")
            {
                measured += left[(s.Seed, s.Stage)] = s.Progress!.EtaSeconds!.Value;
                measuredStages.Add(name);
            }
            else if (Measuring(s) && w.TrainCost is { } later)
            {
                double eta = s.Progress!.EtaSeconds!.Value,
                    rest = later * PaceFor(w);
                measured += eta;
                measuredStages.Add($"{name} {s.Run}");
                estimated += rest;
                estimatedStages++;
                left[(s.Seed, s.Stage)] = eta + rest;
            }
            else
            {
                estimated += left[(s.Seed, s.Stage)] = w.Cost * PaceFor(w);
                estimatedStages++;
            }
        }
        var wall = WallClock(status, byStage, left, paces.Priced);
        return new TimeLeft(measured, estimated, estimatedStages, measuredStages, pace)
        {
            SameKindStages = sameKind,
            MedianOfFinished = paces.Started is null,
            Wall = wall?.Seconds,
            Processes = wall?.Processes ?? 0,
            AsOf = now,
        };
    }

    /// <summary>
    /// Plays the scheduler forward: every live process holding a stage finishes it first; then whichever process is free
    /// first takes, of the stages whose needs are done by then, the one with the most estimated work ahead (its own and
    /// the longest chain waiting for it, priced as the scheduler prices it: <see cref="Priced"/>), ties in run order. Null when no live process holds a
    /// stage, or when what is left can never start.
    /// </summary>
    static (double Seconds, int Processes)? WallClock(
        IReadOnlyList<StageStatus> status,
        Dictionary<(long Seed, string Stage), StageWork> byStage,
        Dictionary<(long Seed, string Stage), double> left,
        Func<StageWork, double> priced
    )
    {
        // A process holding only a finished stage (writing the report before it takes the next) is free now.
        var running = status
            .Where(s => s.Holder is not null && (s.State == StageState.Done || left.ContainsKey((s.Seed, s.Stage))))
            .GroupBy(s => s.Holder!.Split(',')[0])
            .ToList();
        if (running.Count == 0)
            return null;
        var finish = new Dictionary<(long Seed, string Stage), double>();
        var free = new List<double>();
        foreach (var process in running)
        {
            double t = 0;
            foreach (var s in process.Where(s => s.State != StageState.Done))
                finish[(s.Seed, s.Stage)] = t += left[(s.Seed, s.Stage)];
            free.Add(t);
        }
        var todo = status
            .Select(s => (s.Seed, s.Stage))
            .Where(k => left.ContainsKey(k) && !finish.ContainsKey(k))
            .ToList();
        var ahead = new Dictionary<(long Seed, string Stage), double>();
        double Ahead((long Seed, string Stage) k)
        {
            if (ahead.TryGetValue(k, out var a))
                return a;
            return ahead[k] =
                priced(byStage[k])
                + byStage
                    .Values.Where(d => d.Seed == k.Seed && d.Needs.Contains(k.Stage))
                    .Select(d => Ahead((d.Seed, d.Stage)))
                    .DefaultIfEmpty(0)
                    .Max();
        }
        // A need that is done, or not part of the plan, is met from the start.
        bool Met((long Seed, string Stage) k, double at) =>
            byStage[k]
                .Needs.All(n =>
                    !left.ContainsKey((k.Seed, n)) || finish.TryGetValue((k.Seed, n), out var f) && f <= at
                );
        while (todo.Count > 0)
        {
            int p = free.IndexOf(free.Min());
            double t = free[p];
            var ready = todo.Where(k => Met(k, t)).ToList();
            if (ready.Count == 0)
            {
                var later = finish.Values.Where(f => f > t).ToList();
                if (later.Count == 0)
                    return null;
                free[p] = later.Min();
                continue;
            }
            var next = ready.MaxBy(Ahead);
            free[p] = finish[next] = t + left[next];
            todo.Remove(next);
        }
        return (Math.Max(free.Max(), finish.Values.DefaultIfEmpty(0).Max()), running.Count);
    }

    /// <summary>Every declared stage of the first <paramref name="seeds"/> seeds, in run order.</summary>
    public static IReadOnlyList<StageStatus> Read(ExperimentConfig config, string experimentDir, int seeds)
    {
        var rows = new List<StageStatus>();
        foreach (var (seed, stage, dir) in StageCatalogue.StageDirs(config, experimentDir, seeds))
        {
            if (StageSummary.TryLoad(dir) is { } done)
                // Held still: the process that finished it is writing the report before it takes its next stage.
                rows.Add(
                    new StageStatus(seed, stage, StageState.Done, null, null, done.TestTop1, done.WallSeconds)
                    {
                        Holder = RunLock.Holder(dir),
                        ReusedFrom = ReusedFrom(dir),
                    }
                );
            else if (Directory.Exists(dir))
            {
                var (run, progress) = Newest(dir);
                rows.Add(
                    new StageStatus(seed, stage, StageState.Started, run, progress, null, null)
                    {
                        Holder = RunLock.Holder(dir),
                        Curve = run is null
                            ? null
                            : Curve(Directory.Exists(Path.Combine(dir, run)) ? Path.Combine(dir, run) : dir),
                    }
                );
            }
            else
                rows.Add(new StageStatus(seed, stage, StageState.Pending, null, null, null, null));
        }
        return rows;
    }

    /// <summary>The folder a stage was reused from (its reused-from.txt, written by <c>wtn run --reuse-from</c>), or null.</summary>
    static string? ReusedFrom(string stageDir)
    {
        var path = Path.Combine(stageDir, "reused-from.txt");
        try
        {
            return File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } from ? from : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The most recently updated training run in a stage folder (the folder itself or one level down).</summary>
    static (string? Run, RunProgressFile? Progress) Newest(string stageDir)
    {
        var candidates = new[] { stageDir }
            .Concat(Directory.GetDirectories(stageDir))
            .Select(d => (Dir: d, Metrics: Path.Combine(d, "metrics.jsonl")))
            .Where(c => File.Exists(c.Metrics) || File.Exists(Path.Combine(c.Dir, RunProgressFile.FileName)))
            .OrderByDescending(c => LastWrite(c.Dir))
            .ToList();
        if (candidates.Count == 0)
            return (null, null);
        var dir = candidates[0].Dir;
        var name = Path.GetRelativePath(stageDir, dir);
        return (name == "." ? Path.GetFileName(stageDir) : name, RunProgressFile.TryRead(dir));
    }

    /// <summary>Validation top-1 after each epoch so far of a training run (index = epoch - 1), from its metrics.jsonl; null when it has none.</summary>
    static IReadOnlyList<double?>? Curve(string runDir)
    {
        var path = Path.Combine(runDir, "metrics.jsonl");
        if (!File.Exists(path))
            return null;
        try
        {
            var byEpoch = new SortedDictionary<int, double?>();
            foreach (var m in MetricsLog.ReadAll(path))
                if (m.Kind == "epoch")
                    byEpoch[m.Epoch] = m.EvalTop1;
            if (!byEpoch.Values.Any(v => v.HasValue))
                return null;
            return [.. Enumerable.Range(0, byEpoch.Keys.Max() + 1).Select(e => byEpoch.GetValueOrDefault(e))];
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or IOException)
        {
            return null; // a half-written last line: no curve rather than a failed report
        }
    }

    static DateTime LastWrite(string runDir)
    {
        var p = Path.Combine(runDir, RunProgressFile.FileName);
        var m = Path.Combine(runDir, "metrics.jsonl");
        return new[] { p, m }
            .Where(File.Exists)
            .Select(File.GetLastWriteTimeUtc)
            .DefaultIfEmpty(DateTime.MinValue)
            .Max();
    }
}

/// <summary>
/// Seconds per unit of estimated work (<see cref="StageWork.Cost"/>), measured on this run's folder. By kind (the
/// networks a stage trains, <see cref="StageWork.Kind"/>): the median of the started stages of that kind in their "train"
/// run (time left over work left, at their last recorded speed), else of the finished ones (wall time over work). For a
/// kind neither has: the median of the started stages, else of the finished kinds; nothing when nothing was measured.
/// </summary>
public sealed class Paces
{
    readonly Dictionary<string, double> started,
        finished;

    Paces(Dictionary<string, double> started, Dictionary<string, double> finished, double? startedMedian)
    {
        this.started = started;
        this.finished = finished;
        Started = startedMedian;
        Median = startedMedian ?? (finished.Count > 0 ? ExperimentStatus.Median(finished.Values) : null);
    }

    /// <summary>The median pace of the started stages (null when none has recorded a speed).</summary>
    public double? Started { get; }

    /// <summary>
    /// The pace for a stage whose kind was not measured: <see cref="Started"/>, else (between stages, when every
    /// stage started is in an earlier run such as a FitNets hint or in stage 2) the median of the finished kinds'
    /// paces; null when nothing was measured.
    /// </summary>
    public double? Median { get; }

    public static Paces Of(IReadOnlyList<StageStatus> status, IReadOnlyList<StageWork> work)
    {
        var byStage = work.ToDictionary(w => (w.Seed, w.Stage));
        var paced = status
            .Where(s =>
                ExperimentStatus.Measuring(s)
                && s.Run == "train"
                && byStage.TryGetValue((s.Seed, s.Stage), out var w)
                && w.TrainCost > 0
            )
            .Select(s =>
                (
                    byStage[(s.Seed, s.Stage)].Kind,
                    Pace: s.Progress!.EtaSeconds!.Value
                        / (s.Progress.TotalSteps - s.Progress.Step)
                        * s.Progress.TotalSteps
                        / byStage[(s.Seed, s.Stage)].TrainCost!.Value
                )
            )
            .ToList();
        var started = paced
            .Where(p => p.Kind is not null)
            .GroupBy(p => p.Kind!)
            .ToDictionary(g => g.Key, g => ExperimentStatus.Median(g.Select(p => p.Pace)));
        var finished = status
            .Where(s =>
                s.State == StageState.Done
                && s.WallSeconds > 0
                && byStage.TryGetValue((s.Seed, s.Stage), out var w)
                && w.Kind is not null
                && w.Cost > 0
            )
            .GroupBy(s => byStage[(s.Seed, s.Stage)].Kind!)
            .ToDictionary(
                g => g.Key,
                g => ExperimentStatus.Median(g.Select(s => s.WallSeconds!.Value / byStage[(s.Seed, s.Stage)].Cost))
            );
        return new Paces(
            started,
            finished,
            paced.Count > 0 ? ExperimentStatus.Median(paced.Select(p => p.Pace)) : null
        );
    }

    /// <summary>The pace of started, else finished, stages of this kind; null when none of the kind was measured.</summary>
    public double? OfKind(string? kind) =>
        kind is not null && (started.TryGetValue(kind, out var p) || finished.TryGetValue(kind, out p)) ? p : null;

    /// <summary>A stage's estimated work priced at its kind's pace, else at <see cref="Started"/>, else at the median of the finished kinds' paces; its plain work when nothing was measured.</summary>
    public double Priced(StageWork w) => w.Cost * (OfKind(w.Kind) ?? Median ?? 1);
}
