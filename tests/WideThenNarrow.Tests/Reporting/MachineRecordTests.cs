using System.Text.Json;
using WideThenNarrow.Method;
using WideThenNarrow.Reporting;
using WideThenNarrow.Runtime;
using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Reporting;

/// <summary>Where each stage trained: sessions.jsonl per trainer run, stage.json's machines, the report's line.</summary>
public sealed class MachineRecordTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("machines");

    public void Dispose() => TestData.DeleteFolder(_dir);

    static readonly Machine Here = Machine.Current();
    static readonly Machine Other = Here with { Cpu = "Other CPU", Isa = "AVX2" };

    static StageSummary Stage(string name, params MachineUse[]? uses) =>
        new()
        {
            Stage = name,
            Model = "thin",
            Machines = uses is null ? null : [.. uses],
        };

    [Fact]
    public void This_machine_is_described_by_what_changes_the_numbers()
    {
        Assert.False(string.IsNullOrWhiteSpace(Here.Cpu));
        Assert.False(string.IsNullOrWhiteSpace(Here.Isa));
        Assert.Equal(TorchSharp.torch.get_num_threads(), Here.Threads);
        Assert.Equal(Environment.ProcessorCount, Here.Cores);
        Assert.Equal(TorchRuntime.LibTorchVersion, Here.LibTorch);
        Assert.Contains($"{Here.Threads} of {Here.Cores} threads", Here.Describe());
        // Another thread count is another machine as far as the digits go.
        Assert.NotEqual(Here, Here with { Threads = Here.Threads + 1 });
    }

    [Fact]
    public void Sessions_under_a_stage_folder_are_read_back_oldest_first_and_a_half_written_line_is_skipped()
    {
        var block1 = Directory.CreateDirectory(Path.Combine(_dir, "stage", "block-1")).FullName;
        var block2 = Directory.CreateDirectory(Path.Combine(_dir, "stage", "block-2")).FullName;
        SessionLog.Append(block1, 0, resumed: false);
        SessionLog.Append(block1, 40, resumed: true);
        SessionLog.Append(block2, 0, resumed: false);
        File.AppendAllText(Path.Combine(block2, SessionLog.FileName), "{\"started\":\"2026-12-06T1"); // killed mid-write

        var sessions = SessionLog.ReadAll(Path.Combine(_dir, "stage"));
        Assert.Equal(3, sessions.Count);
        Assert.Equal([0L, 40L, 0L], sessions.Select(s => s.Step));
        Assert.Equal([false, true, false], sessions.Select(s => s.Resumed));
        Assert.All(sessions, s => Assert.Equal(Here, s.Machine));
        Assert.Equal([new MachineUse(Here, 3)], MachineUse.Of(Path.Combine(_dir, "stage")));
        // A stage that trained nothing here (its network imported) names the machine that finished it, with no session.
        Assert.Equal([new MachineUse(Here, 0)], MachineUse.Of(Path.Combine(_dir, "nothing")));
    }

    [Fact]
    public void A_session_that_cannot_be_written_is_one_line_naming_the_file()
    {
        var missing = Path.Combine(_dir, "gone");
        var e = Assert.Throws<WtnException>(() => SessionLog.Append(missing, 0, resumed: false));
        Assert.StartsWith($"cannot write {Path.Combine(missing, SessionLog.FileName)}: ", e.Message);
        Assert.EndsWith("; free space on that disk and run the same command again", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Stage_json_keeps_its_machines_through_a_round_trip()
    {
        var s = Stage("wide", new MachineUse(Here, 2), new MachineUse(Other, 1));
        var back = JsonSerializer.Deserialize<StageSummary>(
            JsonSerializer.Serialize(s, StageContext.Json),
            StageContext.Json
        )!;
        Assert.Equal(s.Machines, back.Machines);
        // Written before machines were recorded: null, not an empty list.
        var old = JsonSerializer.Deserialize<StageSummary>(
            "{\"stage\":\"wide\",\"model\":\"wide\"}",
            StageContext.Json
        )!;
        Assert.Null(old.Machines);
    }

    [Fact]
    public void The_report_names_one_machine_or_every_machine_and_the_stages_without_a_record()
    {
        IReadOnlyDictionary<string, StageSummary> seed0 = new Dictionary<string, StageSummary>
        {
            ["wide"] = Stage("wide", new MachineUse(Here, 2)),
            ["finetune"] = Stage("finetune", new MachineUse(Here, 1)),
        };
        var one = new ExperimentResult("x", "fashion-mnist", 10, 10, 10, 1, [], [seed0]);
        Assert.Equal([new MachineStages(Here, 2, 3)], one.Machines);
        Assert.Equal(
            $"Trained on one machine: {Here.Describe()} (2 stages, 3 training sessions).",
            ExperimentReport.MachinesLine(one)
        );

        // Resumed on another machine: the stage counts for both; a stage from an older wtn has no record.
        IReadOnlyDictionary<string, StageSummary> seed1 = new Dictionary<string, StageSummary>
        {
            ["wide"] = Stage("wide", new MachineUse(Here, 1), new MachineUse(Other, 1)),
            ["finetune"] = Stage("finetune", null),
        };
        var two = new ExperimentResult("x", "fashion-mnist", 10, 10, 10, 2, [], [seed0, seed1]);
        Assert.Equal([new MachineStages(Here, 3, 4), new MachineStages(Other, 1, 1)], two.Machines);
        Assert.Equal(1, two.StagesWithoutMachines);
        var line = ExperimentReport.MachinesLine(two)!;
        Assert.StartsWith("Trained on 2 machines or thread counts", line);
        Assert.Contains(
            $"{Here.Describe()} (3 stages, 4 training sessions); {Other.Describe()} (1 stage, 1 training session).",
            line
        );
        Assert.EndsWith("1 stage finished before wtn recorded machines (no record).", line);
        Assert.Contains(line, ExperimentReport.Markdown(two, imitationPlot: false));
    }
}
