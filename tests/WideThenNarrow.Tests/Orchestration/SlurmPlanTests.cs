using WideThenNarrow.Orchestration;

namespace WideThenNarrow.Tests.Orchestration;

/// <summary>What <c>wtn submit</c> plans from a stage graph, without Slurm: edges, arrays of the units left, jobs reused, limits.</summary>
public class SlurmPlanTests
{
    static StageJobSpec Spec(string stage, string[] needs, bool done = false, int units = 0, int[]? unitsDone = null) =>
        new(0, stage, needs, units, done)
        {
            Time = TimeSpan.FromMinutes(30),
            UnitTime = TimeSpan.FromMinutes(10),
            MemoryMb = 4096,
            UnitsDone = (unitsDone ?? []).ToHashSet(),
        };

    static readonly SlurmSettings Settings = new()
    {
        Wtn = ["/opt/wtn dir/wtn"],
        Threads = 2,
        DataDir = "/data",
    };

    [Fact]
    public void Done_stages_and_units_are_left_out_and_live_jobs_are_waited_for_instead_of_resubmitted()
    {
        var plan = new SlurmSubmission("/runs/x", "x", 1, Settings);
        var graph = new[]
        {
            Spec("wide", [], done: true),
            Spec("imitation", ["wide"], units: 5, unitsDone: [1, 4]),
            Spec("finetune", ["imitation"]),
            Spec("kd", ["wide"]),
            Spec("standard", []),
        };
        var jobs = plan.Plan(graph, new Dictionary<(string, string), string> { [("seed-0/standard", "stage")] = "77" });
        Assert.Equal(
            ["wtn-x-s0-imitation-units", "wtn-x-s0-imitation", "wtn-x-s0-finetune", "wtn-x-s0-kd", "wtn-x-report"],
            jobs.Select(j => j.Name)
        );
        Assert.Empty(jobs[0].After); // wide is done: nothing to wait for
        var units = jobs[0].Script([]);
        Assert.Contains("#SBATCH --array=0,2-3\n", units); // units 1 and 4 are done
        Assert.Contains("#SBATCH --time=0-00:10:00\n", units);
        Assert.Contains("'/opt/wtn dir/wtn' --threads 2 ", units); // quoted for the shell
        Assert.Equal(["wtn-x-s0-imitation-units"], jobs[1].After);
        Assert.Equal(["wtn-x-s0-imitation"], jobs[2].After);
        // The report job waits for the running standard job of an earlier submission too.
        Assert.Equal(["wtn-x-s0-imitation", "wtn-x-s0-finetune", "wtn-x-s0-kd", "77"], jobs[4].After);
        Assert.Contains("#SBATCH --dependency=afterok:11:12\n", jobs[1].Script(["11", "12"]));

        // Every stage done or live: nothing at all, not even a report job.
        Assert.Empty(
            plan.Plan(
                [Spec("wide", [], done: true), Spec("standard", [])],
                new Dictionary<(string, string), string> { [("seed-0/standard", "stage")] = "77" }
            )
        );
    }

    [Fact]
    public void Time_limits_have_a_margin_and_a_floor()
    {
        Assert.Equal(TimeSpan.FromMinutes(10), SlurmSubmission.TimeLimit(1, measured: false));
        Assert.Equal(TimeSpan.FromMinutes(300), SlurmSubmission.TimeLimit(6000, measured: false)); // 3 x 100 min
        Assert.Equal(TimeSpan.FromMinutes(200), SlurmSubmission.TimeLimit(6000, measured: true)); // 2 x when measured
        Assert.Equal("1-01:01:00", SlurmSubmission.Format(TimeSpan.FromMinutes(24 * 60 + 61)));
    }
}
