using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Tests.Method;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Orchestration;

/// <summary>
/// Stage 2 with teacher input as separate units (a Slurm job array's tasks, here <c>RunOnly</c> calls in any order)
/// then assembled gives the one-process stage bit for bit.
/// </summary>
/// <remarks>In the torch-rng collection: the stages seed torch's global generator, which a test beside it would draw from.</remarks>
[Collection("torch-rng")]
public class ImitationUnitsTests
{
    static ExperimentRunner Runner(WideThenNarrow.Method.ExperimentConfig c, string runs) =>
        new(c, runs, Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!, CPU);

    [Fact]
    public void Units_trained_alone_in_any_order_then_assembled_equal_the_stage_run_in_one_process()
    {
        var dir = TestData.NewTempFolder("units");
        try
        {
            var c = ExperimentRunnerTests.Tiny("units", baselines: false) with { Standard = null };
            // The stages one after another, stage 2 whole (its units in sequence, in memory).
            var whole = Runner(c, Path.Combine(dir, "one"));
            foreach (var stage in new[] { "wide", "imitation", "finetune" })
                Assert.Equal($"seed 0: {stage} done", whole.RunOnly($"seed-0/{stage}"));

            var apart = Runner(c, Path.Combine(dir, "apart"));
            apart.RunOnly("seed-0/wide");
            var planned = apart.Graph(1, 1).Single(s => s.Stage == "imitation").Units;
            Assert.True(planned >= 3, $"{planned} units");
            // Last unit first: no unit depends on another's weights.
            for (int k = planned - 1; k >= 0; k--)
                Assert.EndsWith($"unit {k} done", apart.RunOnly("seed-0/imitation", k));
            Assert.False(StageSummary.IsDone(Path.Combine(dir, "apart", "units", "seed-0", "imitation")));
            Assert.Equal("seed 0: imitation done", apart.RunOnly("seed-0/imitation"));
            Assert.Equal("seed 0: finetune done", apart.RunOnly("seed-0/finetune"));

            foreach (var stage in new[] { "wide", "imitation", "finetune" })
            {
                var one = StageSummary.TryLoad(Path.Combine(dir, "one", "units", "seed-0", stage))!;
                var two = StageSummary.TryLoad(Path.Combine(dir, "apart", "units", "seed-0", stage))!;
                Assert.Equal(one.WeightsSha256, two.WeightsSha256);
                Assert.Equal(one.TestTop1, two.TestTop1);
                Assert.Equal(one.ValTop1, two.ValTop1);
            }
            // A unit alone is refused in student mode, where each unit starts from the ones before it.
            var student = c with
            {
                Name = "student",
                Imitation = c.Imitation! with { Input = ImitationInput.Student },
            };
            var e = Assert.Throws<WtnException>(() =>
                Runner(student, Path.Combine(dir, "apart")).RunOnly("seed-0/imitation", 0)
            );
            Assert.Contains("it starts from wide", e.Message);
            var s = Runner(student, Path.Combine(dir, "apart"));
            s.RunOnly("seed-0/wide");
            e = Assert.Throws<WtnException>(() => s.RunOnly("seed-0/imitation", 0));
            Assert.Contains("--unit: seed 0: imitation does not train in separate units", e.Message);
            Assert.Contains("is not seed-S/STAGE", Assert.Throws<WtnException>(() => s.RunOnly("0/wide")).Message);
            Assert.Contains(
                "'kd' is not a stage of experiment student",
                Assert.Throws<WtnException>(() => s.RunOnly("seed-0/kd")).Message
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
