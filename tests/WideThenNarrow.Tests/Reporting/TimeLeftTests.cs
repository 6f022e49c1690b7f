using WideThenNarrow.Reporting;
using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Reporting;

public class TimeLeftTests
{
    static StageStatus Started(string stage, string run, long step, long total, double eta) =>
        new(0, stage, StageState.Started, run, new RunProgressFile(stage, 1, 10, step, total, 100, 0, eta, null, DateTime.UtcNow), null, null);

    static StageStatus Other(string stage, StageState state) => new(0, stage, state, null, null, state == StageState.Done ? 0.9 : null, state == StageState.Done ? 3600 : null);

    [Fact]
    public void Started_stages_count_their_own_time_left_and_the_rest_is_their_median_pace_times_the_work()
    {
        var work = new List<StageWork>
        {
            new(0, "wide", 40, 40), new(0, "kd", 20, 20), new(0, "deeper", 30, 30), new(0, "standard", 10, 10),
            new(0, "fitnets", 24, 20), new(0, "imitation", 3, null), new(0, "standard_long", 20, 20),
        };
        var status = new List<StageStatus>
        {
            Other("wide", StageState.Done),
            Started("kd", "train", 500, 1000, 1000),       // 2 s a step, 1000 steps for 20 units: 100 s per unit
            Started("deeper", "train", 900, 1000, 600),    // 6 s a step: 200 s per unit
            Started("standard", "train", 0, 1000, 0),      // no speed recorded yet: estimated like a pending stage
            Started("fitnets", "hint", 10, 100, 50),       // an earlier run: its time left plus the train run's estimate
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
        Assert.EndsWith("at the started stages' median pace. Processes running stages side by side (--jobs, --join) share it.", left.Describe());

        // Nothing has recorded a speed: no estimate. Everything done: nothing left to estimate.
        Assert.Null(ExperimentStatus.TimeLeft([Other("wide", StageState.Done), Other("kd", StageState.Pending)], work));
        Assert.Null(ExperimentStatus.TimeLeft([Other("wide", StageState.Done)], work));
    }

    [Fact]
    public void A_stage_not_started_takes_the_pace_of_started_stages_training_the_same_networks()
    {
        var work = new List<StageWork>
        {
            new(0, "kd", 20, 20, "thin+wide"), new(0, "deeper", 30, 30, "deeper"), new(0, "standard", 10, 10, "thin"),
            new(0, "fitnets", 24, 20, "thin+wide"), new(0, "finetune", 15, 15, "thin+wide"), new(0, "standard_long", 20, 20, "thin"),
            new(0, "imitation", 3, null, "imitation"),
        };
        var status = new List<StageStatus>
        {
            Started("kd", "train", 500, 1000, 1000),       // 100 s per unit
            Started("deeper", "train", 900, 1000, 600),    // 200 s per unit
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
        Assert.Contains("at the pace of started stages training the same networks (3) or else the started stages' median pace", left.Describe());
    }
}
