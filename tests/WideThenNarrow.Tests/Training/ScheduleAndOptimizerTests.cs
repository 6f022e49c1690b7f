using WideThenNarrow.Config;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Training;

public class ScheduleAndOptimizerTests
{
    [Fact]
    public void Warmup_rises_linearly_then_cosine_reaches_the_floor()
    {
        var s = new LrSchedule(
            new ScheduleConfig
            {
                Name = ScheduleKind.Cosine,
                WarmupSteps = 10,
                WarmupStartFactor = 0,
                MinLr = 0.01,
            },
            0.1,
            110,
            10
        );
        Assert.Equal(0.0, s.At(0), 12);
        Assert.Equal(0.05, s.At(5), 12);
        Assert.Equal(0.1, s.At(10), 12);
        Assert.Equal(0.055, s.At(60), 12);
        Assert.InRange(s.At(109), 0.01, 0.0101);
        for (long i = 11; i < 110; i++)
            Assert.True(s.At(i) < s.At(i - 1));
    }

    [Fact]
    public void Multi_step_and_step_decay_at_epoch_boundaries()
    {
        var ms = new LrSchedule(
            new ScheduleConfig
            {
                Name = ScheduleKind.MultiStep,
                Milestones = [2, 3],
                Gamma = 0.1,
            },
            1.0,
            50,
            10
        );
        Assert.Equal(1.0, ms.At(19));
        Assert.Equal(0.1, ms.At(20), 12);
        Assert.Equal(0.01, ms.At(30), 12);
        var st = new LrSchedule(
            new ScheduleConfig
            {
                Name = ScheduleKind.Step,
                StepEpochs = 2,
                Gamma = 0.5,
            },
            1.0,
            100,
            10
        );
        Assert.Equal(1.0, st.At(19));
        Assert.Equal(0.5, st.At(20), 12);
        Assert.Equal(0.25, st.At(45), 12);
        var lin = new LrSchedule(new ScheduleConfig { Name = ScheduleKind.Linear }, 1.0, 100, 10);
        Assert.Equal(0.5, lin.At(50), 12);
    }

    [Fact]
    public void Groups_get_their_factor_and_norms_and_biases_can_be_exempt_from_decay()
    {
        var lin = nn.Linear(3, 2);
        var bn = nn.BatchNorm1d(2);
        var groups = new[]
        {
            ParameterGroup.Of("a", lin),
            new ParameterGroup("b", bn.parameters().ToList(), LrFactor: 0.1),
        };
        using var set = OptimizerSet.Create(
            new OptimizerConfig
            {
                Lr = 0.5,
                WeightDecay = 1e-4,
                DecayNormsAndBiases = false,
            },
            groups
        );
        set.SetLearningRate(0.2);
        var pg = set.Optimizer.ParamGroups.Cast<TorchSharp.Modules.SGD.ParamGroup>().ToList();
        // a: weight (decays), bias (no decay); b: only 1-d params (no decay).
        Assert.Equal(3, pg.Count);
        Assert.Equal([0.2, 0.2, 0.02], pg.Select(g => Math.Round(g.LearningRate, 12)));
        Assert.Equal([1e-4, 0.0, 0.0], pg.Select(g => g.Options.weight_decay!.Value));
        Assert.Equal([1, 1, 2], pg.Select(g => g.Parameters.Count()));
    }

    [Fact]
    public void Bad_settings_are_user_errors()
    {
        Assert.Throws<WtnException>(() => new LrSchedule(new ScheduleConfig { WarmupSteps = 100 }, 0.1, 50, 10));
        Assert.Throws<WtnException>(() =>
            OptimizerSet.Create(new OptimizerConfig { Lr = -1 }, [ParameterGroup.Of("a", nn.Linear(2, 2))])
        );
    }
}
