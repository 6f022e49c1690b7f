using WideThenNarrow.Reporting;
using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Reporting;

public class TimeLeftTests
{
    static StageStatus Started(string stage, string run, long step, long total, double eta) =>
        new(
            0,
            stage,
            StageState.Started,
            run,
            new RunProgressFile(stage, 1, 10, step, total, 100, 0, eta, null, DateTime.UtcNow),
            null,
            null
        );

    static StageStatus Other(string stage, StageState state) =>
        new(0, stage, state, null, null, state == StageState.Done ? 0.9 : null, state == StageState.Done ? 3600 : null);

    [Fact]
    public void Started_stages_count_their_own_time_left_and_the_rest_is_their_median_pace_times_the_work()
    {
        var work = new List<StageWork>
        {
            new(0, "wide", 40, 40),
            new(0, "kd", 20, 20),
            new(0, "deeper", 30, 30),
            new(0, "standard", 10, 10),
            new(0, "fitnets", 24, 20),
            new(0, "imitation", 3, null),
            new(0, "standard_long", 20, 20),
        };
        var status = new List<StageStatus>
        {
            Other("wide", StageState.Done),
            Started("kd", "train", 500, 1000, 1000), // 2 s a step, 1000 steps for 20 units: 100 s per unit
            Started("deeper", "train", 900, 1000, 600), // 6 s a step: 200 s per unit
            Started("standard", "train", 0, 1000, 0), // no speed recorded yet: estimated like a pending stage
            Started("fitnets", "hint", 10, 100, 50), // an earlier run: its time left plus the train run's estimate
            Other("imitation", StageState.Pending),
            Other("standard_long", StageState.Pending),
        };
        var left = ExperimentStatus.TimeLeft(status, work)!;
        Assert.Equal(150, left.SecondsPerWork); // the median of 100 and 200
        Assert.Equal(1000 + 600 + 50, left.Measured);
        Assert.Equal(["kd", "deeper", "fitnets hint"], left.MeasuredStages);
        Assert.Equal(150 * (10 + 20 + 3 + 20), left.Estimated); // standard, fitnets' train run, imitation, standard_long
        Assert.Equal(4, left.EstimatedStages);
        Assert.StartsWith("about 2.7 h of training on one process: 28 min measured", left.Describe());

        Assert.Equal(0, left.SameKindStages); // no kinds given: every estimate at the median
        Assert.EndsWith(
            "at the started stages' median pace. Processes running stages side by side (--jobs, Slurm jobs) share it.",
            left.Describe()
        );

        // Nothing has recorded a speed: no estimate. Everything done: nothing left to estimate.
        Assert.Null(ExperimentStatus.TimeLeft([Other("wide", StageState.Done), Other("kd", StageState.Pending)], work));
        Assert.Null(ExperimentStatus.TimeLeft([Other("wide", StageState.Done)], work));
    }

    [Fact]
    public void The_wall_time_plays_the_schedule_forward_on_the_processes_training_now()
    {
        static StageStatus Held(StageStatus s, int pid) =>
            s with
            {
                Holder = $"process {pid} on vm, since 2026-11-29 20:00:00 UTC",
            };
        var work = new List<StageWork>
        {
            new(0, "wide", 40, 40, "wide"),
            new(0, "deeper", 30, 30, "deeper"),
            new(0, "kd", 20, 20, "thin+wide") { Needs = ["wide"] },
            new(0, "fitnets", 24, 20, "thin+wide") { Needs = ["wide"] },
            new(0, "standard", 10, 10, "thin"),
            new(0, "standard_long", 20, 20, "thin"),
            new(0, "imitation", 3, null, "imitation") { Needs = ["wide"] },
            new(0, "finetune", 15, 15, "thin+wide") { Needs = ["imitation"] },
        };
        // Every pace 300 s per unit: kd and fitnets 6 s a step, standard 3 s, 1000 steps each; the finished stages too.
        static StageStatus Done(string stage, double units) =>
            Other(stage, StageState.Done) with
            {
                WallSeconds = 300 * units,
            };
        var status = new List<StageStatus>
        {
            Done("wide", 40),
            Other("imitation", StageState.Pending),
            Other("finetune", StageState.Pending),
            Started("standard", "train", 100, 1000, 2700), // stopped: no live process holds it
            Other("standard_long", StageState.Pending),
            Held(Started("kd", "train", 900, 1000, 600), 11),
            Held(Started("fitnets", "train", 400, 1000, 3600), 12),
            Done("deeper", 30),
        };
        var left = ExperimentStatus.TimeLeft(status, work)!;
        Assert.Equal(600 + 3600 + 2700 + 300 * (20 + 3 + 15), left.Total);
        // Process 11 is free at 600: standard_long (20 units ahead) before imitation (3 + finetune's 15) and standard (10),
        // until 6600. Process 12 at 3600: imitation, until 4500, then finetune, until 9000. Process 11 at 6600: standard,
        // until 9300.
        Assert.Equal(9300, left.Wall);
        Assert.Equal(2, left.Processes);
        Assert.EndsWith(
            "With the 2 processes training now, about 2.6 h of wall time, taking the stages in the order wtn run --jobs takes them.",
            left.Describe()
        );
        // Given when it was made, the estimate also says until when (a time of day, UTC).
        var at = new DateTime(2020, 1, 1, 3, 0, 0, DateTimeKind.Utc); // not today: the date is given too
        Assert.Contains(
            "about 2.6 h of wall time (until about 2020-01-01 05:35 UTC), taking",
            ExperimentStatus.TimeLeft(status, work, at)!.Describe()
        );

        // finetune waits for imitation: alone, process 11 runs standard_long, imitation, finetune, standard after kd.
        var one = ExperimentStatus.TimeLeft([.. status.Where(s => s.Stage != "fitnets"), Done("fitnets", 24)], work)!;
        Assert.Equal((1, 600 + 6000 + 900 + 4500 + 2700.0), (one.Processes, one.Wall));
        // kd just finished and its process, still holding it while it writes the report, is about to take the next stage.
        var between = ExperimentStatus.TimeLeft(
            [.. status.Where(s => s.Stage != "kd"), Held(Done("kd", 20), 11)],
            work
        )!;
        Assert.Equal((2, 9000.0), (between.Processes, between.Wall)); // standard_long then standard by 8700; finetune ends at 9000
        // Stopped: no process to play it on.
        var stopped = ExperimentStatus.TimeLeft([.. status.Select(s => s with { Holder = null })], work)!;
        Assert.Null(stopped.Wall);
        Assert.DoesNotContain("wall time", stopped.Describe());
    }

    [Fact]
    public void The_schedule_prices_each_stage_at_the_pace_measured_for_its_kind()
    {
        static StageStatus Held(StageStatus s, int pid) =>
            s with
            {
                Holder = $"process {pid} on vm, since 2026-11-30 03:00:00 UTC",
            };
        var work = new List<StageWork>
        {
            new(0, "deeper-1", 10, 10, "deeper"),
            new(0, "deeper-2", 10, 10, "deeper"),
            new(0, "thin-done", 1, 1, "thin"),
            new(0, "thin", 10, 10, "thin"),
            new(0, "deeper-3", 12, 12, "deeper"),
            new(0, "deeper-4", 11, 11, "deeper"),
            new(0, "deeper-5", 10.5, 10.5, "deeper"),
        };
        // Two processes finish a deeper stage each in 100 s (100 s per unit); a finished thin stage took 300 s per unit.
        var status = new List<StageStatus>
        {
            Held(Started("deeper-1", "train", 900, 1000, 100), 11),
            Held(Started("deeper-2", "train", 900, 1000, 100), 12),
            Other("thin-done", StageState.Done) with
            {
                WallSeconds = 300,
            },
            Other("thin", StageState.Pending),
            Other("deeper-3", StageState.Pending),
            Other("deeper-4", StageState.Pending),
            Other("deeper-5", StageState.Pending),
        };
        var paces = Paces.Of(status, work);
        Assert.Equal(
            (100.0, 300.0, 100.0),
            (paces.OfKind("deeper")!.Value, paces.OfKind("thin")!.Value, paces.Started!.Value)
        );
        Assert.Equal(3000, paces.Priced(work[3]), 9);
        // Priced, the thin stage (3000 s) goes first, on process 11 until 3100, while process 12 runs the three deeper
        // ones (1200, 1100, 1050 s) until 3450. By multiply-accumulates alone the thin stage (10) would go last, after
        // 12, 11 and 10.5: process 11 deeper-3 until 1300, process 12 deeper-4 until 1200 and deeper-5 until 2250,
        // process 11 the thin one from 1300 until 4300.
        var left = ExperimentStatus.TimeLeft(status, work)!;
        Assert.Equal(3450, left.Wall!.Value, 9);
    }

    [Fact]
    public void A_stage_not_started_takes_the_pace_of_started_stages_training_the_same_networks()
    {
        var work = new List<StageWork>
        {
            new(0, "kd", 20, 20, "thin+wide"),
            new(0, "deeper", 30, 30, "deeper"),
            new(0, "standard", 10, 10, "thin"),
            new(0, "fitnets", 24, 20, "thin+wide"),
            new(0, "finetune", 15, 15, "thin+wide"),
            new(0, "standard_long", 20, 20, "thin"),
            new(0, "imitation", 3, null, "imitation"),
        };
        var status = new List<StageStatus>
        {
            Started("kd", "train", 500, 1000, 1000), // 100 s per unit
            Started("deeper", "train", 900, 1000, 600), // 200 s per unit
            Started("standard", "train", 500, 1000, 5000), // 10 s a step, 1000 steps for 10 units: 1000 s per unit
            Started("fitnets", "hint", 10, 100, 50),
            Other("finetune", StageState.Pending),
            Other("standard_long", StageState.Pending),
            Other("imitation", StageState.Pending),
        };
        var left = ExperimentStatus.TimeLeft(status, work)!;
        Assert.Equal(200, left.SecondsPerWork); // the median of 100, 200 and 1000
        // fitnets' train run and finetune at kd's pace, standard_long at standard's, imitation (no started stage of its kind) at the median.
        Assert.Equal(100 * 20 + 100 * 15 + 1000 * 20 + 200 * 3, left.Estimated);
        Assert.Equal((4, 3), (left.EstimatedStages, left.SameKindStages));
        Assert.Contains(
            "at the pace of started (else finished) stages training the same networks (3) or else the started stages' median pace",
            left.Describe()
        );

        // kd finished (an hour for its 20 units: 180 s per unit) and nothing training teacher and student has started:
        // fitnets and finetune take kd's finished pace, not the started stages' median. A started stage of a kind comes
        // first: standard_long keeps standard's pace although another stage of that kind finished (at 360 s per unit).
        var kdDone = ExperimentStatus.TimeLeft(
            [
                .. status.Where(s => s.Stage is not ("kd" or "fitnets")),
                Other("kd", StageState.Done),
                Other("fitnets", StageState.Pending),
                Other("standard_old", StageState.Done),
            ],
            [.. work, new(0, "standard_old", 10, 10, "thin")]
        )!;
        Assert.Equal(600, kdDone.SecondsPerWork); // the median of deeper's 200 and standard's 1000
        Assert.Equal(180 * 24 + 180 * 15 + 1000 * 20 + 600 * 3, kdDone.Estimated);
        Assert.Equal((4, 3), (kdDone.EstimatedStages, kdDone.SameKindStages));
    }

    [Fact]
    public void Between_stages_the_finished_stages_price_what_is_left()
    {
        // The full run at 05:57 on 2026-11-30: kd had just finished, fitnets was in its hint run and stage 2 had not
        // recorded a speed; the interim report then said "not estimated", although four finished stages had paces.
        var work = new List<StageWork>
        {
            new(0, "wide", 40, 40, "wide"),
            new(0, "kd", 20, 20, "thin+wide"),
            new(0, "fitnets", 24, 20, "thin+wide"),
            new(0, "imitation", 3, null, "imitation"),
            new(0, "finetune", 15, 15, "thin+wide") { Needs = ["imitation"] },
            new(0, "standard", 10, 10, "thin"),
        };
        static StageStatus Done(string stage, double seconds) =>
            Other(stage, StageState.Done) with
            {
                WallSeconds = seconds,
            };
        var status = new List<StageStatus>
        {
            Done("wide", 300 * 40),
            Done("kd", 200 * 20),
            Started("fitnets", "hint", 10, 100, 50),
            Other("imitation", StageState.Pending),
            Other("finetune", StageState.Pending),
            Other("standard", StageState.Pending),
        };
        var left = ExperimentStatus.TimeLeft(status, work)!;
        Assert.True(left.MedianOfFinished);
        Assert.Equal(250, left.SecondsPerWork); // the median of the finished kinds: wide 300, thin+wide 200
        Assert.Equal(50, left.Measured);
        // fitnets' train run and finetune at kd's finished pace; imitation and standard (kinds not measured) at the median.
        Assert.Equal(200 * 20 + 200 * 15 + 250 * 3 + 250 * 10, left.Estimated);
        Assert.Equal((4, 2), (left.EstimatedStages, left.SameKindStages));
        Assert.Contains(
            "stages training the same networks (2) or else the finished stages' median pace.",
            left.Describe()
        );
    }
}
