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

        // Nothing has recorded a speed: no estimate. Everything done: nothing left to estimate.
        Assert.Null(ExperimentStatus.TimeLeft([Other("wide", StageState.Done), Other("kd", StageState.Pending)], work));
        Assert.Null(ExperimentStatus.TimeLeft([Other("wide", StageState.Done)], work));
    }
}
