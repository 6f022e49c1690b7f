using WideThenNarrow.Config;
using WideThenNarrow.Method;

namespace WideThenNarrow.Tests.Config;

/// <summary>
/// One data record and one model record serve <c>wtn run</c> and <c>wtn train</c>. Finished stages are verified against
/// their flattened settings, so an experiment file must flatten exactly as it did before the two schemas were merged.
/// </summary>
public class SchemaTests
{
    /// <summary>experiments/width-sweep.yaml's data and model settings as the experiment schema flattened them before the merge.</summary>
    static readonly SortedDictionary<string, string> WidthSweepBefore = new(StringComparer.Ordinal)
    {
        ["data.batch_size"] = "128",
        ["data.crop_padding"] = "2",
        ["data.dataset"] = "fashion-mnist",
        ["data.eval_batch_size"] = "512",
        ["data.horizontal_flip"] = "true",
        ["data.resize"] = "0",
        ["data.test_per_class"] = "0",
        ["data.text"] = "null",
        ["data.train_per_class"] = "2000",
        ["data.val_fraction"] = "0.1",
        ["data.val_per_class"] = "300",
        ["data.val_seed"] = "0",
        ["models.thin.base_width"] = "16",
        ["models.thin.classes"] = "0",
        ["models.thin.depth"] = "8",
        ["models.thin.heads"] = "null",
        ["models.thin.hidden"] = "null",
        ["models.thin.input_channels"] = "0",
        ["models.thin.intermediate"] = "null",
        ["models.thin.layers"] = "null",
        ["models.thin.name"] = "cifar-resnet20",
        ["models.thin.projection_shortcuts"] = "false",
        ["models.thin.residual"] = "false",
        ["models.thin.widen"] = "none",
        ["models.thin.width"] = "256",
        ["models.wide.base_width"] = "16",
        ["models.wide.classes"] = "0",
        ["models.wide.depth"] = "8",
        ["models.wide.heads"] = "null",
        ["models.wide.hidden"] = "null",
        ["models.wide.input_channels"] = "0",
        ["models.wide.intermediate"] = "null",
        ["models.wide.layers"] = "null",
        ["models.wide.name"] = "cifar-resnet20",
        ["models.wide.projection_shortcuts"] = "false",
        ["models.wide.residual"] = "false",
        ["models.wide.widen"] = "inner=4",
        ["models.wide.width"] = "256",
        ["models.deeper.base_width"] = "16",
        ["models.deeper.classes"] = "0",
        ["models.deeper.depth"] = "8",
        ["models.deeper.heads"] = "null",
        ["models.deeper.hidden"] = "null",
        ["models.deeper.input_channels"] = "0",
        ["models.deeper.intermediate"] = "null",
        ["models.deeper.layers"] = "null",
        ["models.deeper.name"] = "cifar-resnet56",
        ["models.deeper.projection_shortcuts"] = "false",
        ["models.deeper.residual"] = "false",
        ["models.deeper.widen"] = "none",
        ["models.deeper.width"] = "256",
    };

    [Fact]
    public void An_experiment_file_flattens_to_the_settings_its_finished_stages_recorded()
    {
        var c = ConfigLoader.Load<ExperimentConfig>(Path.Combine(TestData.RepoRoot, "experiments", "width-sweep.yaml"));
        var now = new SortedDictionary<string, string>(ConfigLoader.Flatten(c.Data, "data"), StringComparer.Ordinal);
        foreach (var m in new[] { "thin", "wide", "deeper" })
        foreach (var (k, v) in ConfigLoader.Flatten(c.Models.Spec(m), $"models.{m}"))
            now[k] = v;
        // Every recorded setting is unchanged; keys added since (models.*.widen_heads, max_positions, type_vocab, dropout, locality_prior, locality_gain) sit at
        // their defaults, which the scheduler's rule accepts (StageScheduler), so the finished stages are reused.
        Assert.All(WidthSweepBefore, kv => Assert.Equal(kv.Value, now.GetValueOrDefault(kv.Key)));
        Assert.Equal(
            ["dropout", "locality_gain", "locality_prior", "max_positions", "type_vocab", "widen_heads"],
            now.Keys.Except(WidthSweepBefore.Keys).Select(k => k[(k.LastIndexOf('.') + 1)..]).Distinct().Order()
        );
        Assert.Empty(ConfigLoader.Changes(WidthSweepBefore, now, ConfigLoader.DefaultOf<ExperimentConfig>));
    }

    [Fact]
    public void Wtn_train_reads_the_experiment_records_with_their_defaults()
    {
        var train = ConfigLoader.Parse<TrainConfig>("epochs: 1\n", "t.yaml");
        var experiment = ConfigLoader.Parse<ExperimentConfig>("name: x\n", "e.yaml");
        Assert.Equal(ConfigLoader.Flatten(experiment.Data), ConfigLoader.Flatten(train.Data));
        Assert.Equal(ConfigLoader.Flatten(experiment.Models.Thin), ConfigLoader.Flatten(train.Model));
        // The same --set key reaches the same record in both.
        Assert.Equal(
            7,
            ConfigLoader.Parse<TrainConfig>("epochs: 1\n", "t.yaml", ["data.train_per_class=7"]).Data.TrainPerClass
        );
        Assert.Equal(
            7,
            ConfigLoader.Parse<ExperimentConfig>("name: x\n", "e.yaml", ["data.train_per_class=7"]).Data.TrainPerClass
        );
    }

    [Theory]
    [InlineData(
        "data:\n  per_class_limit: 8\n",
        "key 'data.per_class_limit' is no longer read: write 'data.train_per_class' instead"
    )]
    [InlineData(
        "data:\n  eval_per_class_limit: 8\n",
        "key 'data.eval_per_class_limit' is no longer read: write 'data.test_per_class' instead"
    )]
    [InlineData(
        "model:\n  name: mlp\n  input_dim: 784\n",
        "key 'model.input_dim' is no longer read: the dataset sets it (channels x height x width); remove the key"
    )]
    [InlineData(
        "model:\n  name: cifar-resnet20\n  image_size: 28\n",
        "key 'model.image_size' is no longer read: the dataset sets it"
    )]
    public void An_old_wtn_train_key_is_refused_in_one_line_naming_the_new_one(string yaml, string expected)
    {
        var e = Assert.Throws<WtnException>(() => ConfigLoader.Parse<TrainConfig>(yaml, "old.yaml"));
        Assert.StartsWith("old.yaml: " + expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void An_old_key_is_refused_in_an_override_and_in_an_experiment_file_too()
    {
        var e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<TrainConfig>("epochs: 1\n", "t.yaml", ["data.per_class_limit=3"])
        );
        Assert.Equal(
            "--set data.per_class_limit=3: key 'data.per_class_limit' is no longer read: write 'data.train_per_class' instead",
            e.Message
        );
        e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<ExperimentConfig>("models:\n  thin:\n    image_size: 28\n", "e.yaml")
        );
        Assert.StartsWith("e.yaml: key 'models.thin.image_size' is no longer read", e.Message);
    }
}
