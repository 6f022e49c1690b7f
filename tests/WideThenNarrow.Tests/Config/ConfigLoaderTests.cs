using WideThenNarrow.Config;

namespace WideThenNarrow.Tests.Config;

public class ConfigLoaderTests
{
    const string Yaml = """
        model:
          name: cifar-resnet20
        data:
          dataset: fashion-mnist
          batch_size: 64
        optimizer:
          name: sgd
          lr: 0.05
          nesterov: true
        schedule:
          name: multi_step
          milestones: [10, 20]
        epochs: 30
        """;

    [Fact]
    public void Yaml_maps_onto_records_and_missing_keys_keep_their_defaults()
    {
        var c = ConfigLoader.Parse<TrainConfig>(Yaml, "x.yaml");
        Assert.Equal(64, c.Data.BatchSize);
        Assert.Equal(0.05, c.Optimizer.Lr);
        Assert.True(c.Optimizer.Nesterov);
        Assert.Equal(0.9, c.Optimizer.Momentum);
        Assert.Equal(ScheduleKind.MultiStep, c.Schedule.Name);
        Assert.Equal([10.0, 20.0], c.Schedule.Milestones);
        Assert.Equal(30, c.Epochs);
        Assert.Equal(new LoggingConfig(), c.Logging);
    }

    [Fact]
    public void Overrides_are_applied_and_type_checked()
    {
        var c = ConfigLoader.Parse<TrainConfig>(
            Yaml,
            "x.yaml",
            ["optimizer.lr=0.2", "schedule.milestones=[5]", "optimizer.name=adam_w", "eval.every_epochs=2"]
        );
        Assert.Equal(0.2, c.Optimizer.Lr);
        Assert.Equal([5.0], c.Schedule.Milestones);
        Assert.Equal(OptimizerKind.AdamW, c.Optimizer.Name);
        Assert.Equal(2, c.Eval.EveryEpochs);
        var e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<TrainConfig>(Yaml, "x.yaml", ["optimizer.lr=fast"])
        );
        Assert.Contains("--set optimizer.lr=fast", e.Message);
        Assert.Contains("'optimizer.lr' expects a number", e.Message);
    }

    [Theory]
    [InlineData("optimizer:\n  lrr: 0.1\n", "unknown key 'optimizer.lrr' (did you mean 'optimizer.lr'?)")]
    [InlineData("epocs: 3\n", "unknown key 'epocs' (did you mean 'epochs'?)")]
    [InlineData("epochs: three\n", "key 'epochs' expects an integer, got 'three'")]
    [InlineData("schedule:\n  name: cosin\n", "(did you mean 'cosine'?)")]
    [InlineData("optimizer: 3\n", "key 'optimizer' must be a mapping")]
    [InlineData("model:\n  name: mlp\n  widen: wide\n", "key 'model.widen': cannot read widening 'wide'")]
    public void Bad_keys_and_values_name_the_key_path(string yaml, string expected)
    {
        var e = Assert.Throws<WtnException>(() => ConfigLoader.Parse<TrainConfig>(yaml, "bad.yaml"));
        Assert.StartsWith("bad.yaml: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Unknown_override_key_suggests_the_closest()
    {
        var e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<TrainConfig>(Yaml, "x.yaml", ["data.batchsize=3"])
        );
        Assert.Contains(
            "--set data.batchsize=3: unknown key 'data.batchsize' (did you mean 'data.batch_size'?)",
            e.Message
        );
    }

    [Fact]
    public void The_shipped_experiment_loads()
    {
        var path = Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-resnet20.yaml");
        var c = ConfigLoader.Load<TrainConfig>(Path.GetFullPath(path));
        Assert.Equal("cifar-resnet20", c.Model.Name);
        Assert.Equal(0, c.Model.InputChannels); // the dataset's
        Assert.Equal(0, c.Data.CropPadding);
    }

    [Fact]
    public void The_resolved_config_round_trips_through_yaml()
    {
        var c = ConfigLoader.Parse<TrainConfig>(
            Yaml,
            "x.yaml",
            ["model.layers=null", "model.widen=inner=4", "data.dataset=123"]
        );
        var text = ConfigLoader.ToYaml(c);
        var back = ConfigLoader.Parse<TrainConfig>(text, "resolved.yaml");
        Assert.Equal(ConfigLoader.ToYaml(back), text);
        Assert.Equal("123", back.Data.Dataset);
        Assert.Equal("inner=4", back.Model.Widen);
        Assert.Contains("name: multi_step", text);
        Assert.Equal(c.Schedule.Milestones, back.Schedule.Milestones);
    }
}
