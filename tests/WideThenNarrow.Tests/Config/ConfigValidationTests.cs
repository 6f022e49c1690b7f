using WideThenNarrow.Config;
using WideThenNarrow.Method;

namespace WideThenNarrow.Tests.Config;

/// <summary>Values out of their record's range are refused at load, naming the file and the full dotted key.</summary>
public class ConfigValidationTests
{
    [Theory]
    [InlineData(
        "checkpoint:\n  every_steps: -5\n",
        "key 'checkpoint.every_steps' must be 0 or more (0 = at epoch ends only), got -5"
    )]
    [InlineData("eval:\n  every_epochs: -1\n", "key 'eval.every_epochs' must be 0 or more")]
    [InlineData("logging:\n  every_steps: -2\n", "key 'logging.every_steps' must be 0 or more")]
    [InlineData(
        "optimizer:\n  clip_grad_norm: -1\n",
        "key 'optimizer.clip_grad_norm' must be 0 or more (0 = no clipping), got -1"
    )]
    [InlineData("optimizer:\n  momentum: 5\n", "key 'optimizer.momentum' must be in [0, 1)")]
    [InlineData(
        "model:\n  name: cifar-resnet20\n  input_channels: -1\n",
        "key 'model.input_channels' must be between 0 and 4,096 (0 = the dataset's), got -1"
    )]
    [InlineData("model:\n  name: mlp\n  width: 0\n", "key 'model.width' must be between 1")]
    [InlineData("model:\n  name: mlp\n  classes: 20000000\n", "key 'model.classes' must be between 0 and 100,000")]
    [InlineData("model:\n  name: mlp\n  widen: full=1000\n", "key 'model.widen' must be between 1 and 64")]
    [InlineData("data:\n  batch_size: 0\n", "key 'data.batch_size' must be at least 1, got 0")]
    [InlineData("data:\n  train_per_class: -1\n", "key 'data.train_per_class' must be 0 or more (0 = all), got -1")]
    [InlineData(
        "data:\n  text: {}\n",
        "key 'data.text' is for experiments (wtn run); wtn train reads an image dataset"
    )]
    [InlineData("epochs: -3\n", "key 'epochs' must be 0 or more, got -3")]
    [InlineData("label_smoothing: 1.5\n", "key 'label_smoothing' must be in [0, 1)")]
    [InlineData("schedule:\n  warmup_steps: -10\n", "key 'schedule.warmup_steps' must be 0 or more")]
    public void Train_config_values_out_of_range_name_the_key(string yaml, string expected)
    {
        var e = Assert.Throws<WtnException>(() => ConfigLoader.Parse<TrainConfig>(yaml, "bad.yaml"));
        Assert.StartsWith("bad.yaml: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData(
        "wide:\n  train:\n    checkpoint:\n      every_steps: -1\n",
        "key 'wide.train.checkpoint.every_steps' must be 0 or more"
    )]
    [InlineData(
        "finetune:\n  train:\n    optimizer:\n      clip_grad_norm: -0.5\n",
        "key 'finetune.train.optimizer.clip_grad_norm' must be 0 or more"
    )]
    [InlineData("kd:\n  temperature: 0\n", "key 'kd.temperature' must be positive, got 0")]
    [InlineData(
        "models:\n  thin:\n    classes: -1\n",
        "key 'models.thin.classes' must be between 0 and 100,000 (0 = the dataset's), got -1"
    )]
    [InlineData("models:\n  wide:\n    width: 0\n", "key 'models.wide.width' must be between 1")]
    [InlineData("data:\n  train_per_class: -4\n", "key 'data.train_per_class' must be 0 or more")]
    [InlineData("max_steps: -1\n", "key 'max_steps' must be 0 or more")]
    public void Experiment_values_out_of_range_name_the_full_dotted_key(string yaml, string expected)
    {
        var e = Assert.Throws<WtnException>(() => ConfigLoader.Parse<ExperimentConfig>(yaml, "exp.yaml"));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_model_that_cannot_read_the_data_is_refused_naming_the_model_key_and_the_dataset()
    {
        var e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<TrainConfig>("model:\n  name: bert-tiny\n", "t.yaml")
        );
        Assert.Equal(
            "t.yaml: key 'model.name' is 'bert-tiny', a text model, but data.dataset fashion-mnist holds images; use mlp, a cifar-resnet (20, 32, 56, ...) or resnet18..152",
            e.Message
        );

        e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<ExperimentConfig>("models:\n  deeper:\n    name: bert-mini\n", "e.yaml")
        );
        Assert.StartsWith(
            "e.yaml: key 'models.deeper.name' is 'bert-mini', a text model, but data.dataset fashion-mnist holds images",
            e.Message
        );

        e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<ExperimentConfig>(
                "data:\n  text: {}\nmodels:\n  thin:\n    name: bert-tiny\n  wide:\n    name: mlp\n",
                "e.yaml"
            )
        );
        Assert.StartsWith(
            "e.yaml: key 'models.wide.name' is 'mlp', an image model, but data.text (masked-LM text) is text",
            e.Message
        );
    }

    [Fact]
    public void An_override_out_of_range_is_refused_too()
    {
        var e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<TrainConfig>("epochs: 1\n", "x.yaml", ["checkpoint.every_steps=-1"])
        );
        Assert.Contains("'checkpoint.every_steps' must be 0 or more", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("# only a comment\n\n")]
    [InlineData("---\n")]
    public void An_empty_file_is_refused_as_empty(string yaml)
    {
        var dir = TestData.NewTempFolder("cfg");
        try
        {
            var path = Path.Combine(dir, "empty.yaml");
            File.WriteAllText(path, yaml);
            var e = Assert.Throws<WtnException>(() => ConfigLoader.Load<TrainConfig>(path));
            Assert.Equal(
                $"{path}: the file is empty; write the keys to set (see experiments/ for examples)",
                e.Message
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void A_device_or_a_folder_is_not_read_as_a_config()
    {
        Assert.Equal(
            "config /dev/zero is a character device, not a regular file; give a file",
            Assert.Throws<WtnException>(() => ConfigLoader.Load<TrainConfig>("/dev/zero")).Message
        );
        var dir = TestData.NewTempFolder("cfg");
        try
        {
            Assert.Equal(
                $"config {dir} is a folder, not a file",
                Assert.Throws<WtnException>(() => ConfigLoader.Load<TrainConfig>(dir)).Message
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void The_defaults_and_the_shipped_configs_pass()
    {
        ConfigLoader.Parse<TrainConfig>("epochs: 1\n", "x.yaml");
        ConfigLoader.Parse<ExperimentConfig>("name: x\n", "x.yaml");
        foreach (var file in Directory.GetFiles(Path.Combine(TestData.RepoRoot, "experiments"), "*.yaml"))
        {
            var text = File.ReadAllText(file);
            if (text.Contains("\nmodels:") || text.StartsWith("models:"))
                ConfigLoader.Load<ExperimentConfig>(file);
            else
                ConfigLoader.Load<TrainConfig>(file);
        }
    }
}
