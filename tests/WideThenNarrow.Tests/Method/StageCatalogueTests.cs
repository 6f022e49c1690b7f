using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Method.Stages;

namespace WideThenNarrow.Tests.Method;

public class StageCatalogueTests
{
    /// <summary>
    /// The run order the catalogue had when it listed its stages by hand: folders, plans and reports depend on it. A
    /// baseline added since may sit anywhere among them (its [StageOrder]), so adding one changes no test.
    /// </summary>
    [Fact]
    public void The_catalogue_finds_the_stages_in_their_run_order()
    {
        InOrder(
            [
                "wide",
                "imitation",
                "finetune",
                "finetune_no_kd",
                "standard",
                "standard_long",
                "standard_matched",
                "kd",
                "kd_finetune_recipe",
                "fitnets",
                "deeper",
                "downstream_finetune",
                "downstream_finetune_no_kd",
                "downstream_standard",
                "downstream_standard_matched",
                "downstream_standard_long",
                "downstream_kd",
                "downstream_kd_finetune_recipe",
                "downstream_fitnets",
                "downstream_deeper",
            ],
            StageCatalogue.All.Select(s => s.Name)
        );
    }

    /// <summary><paramref name="actual"/> holds every <paramref name="expected"/> item, in that order; others may come between.</summary>
    static void InOrder<T>(IReadOnlyList<T> expected, IEnumerable<T> actual) =>
        Assert.Equal(expected, actual.Where(expected.Contains).ToList());

    [Fact]
    public void Every_stage_class_is_in_the_catalogue()
    {
        var classes = typeof(ExperimentStage)
            .Assembly.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract && typeof(ExperimentStage).IsAssignableFrom(t))
            .ToList();
        Assert.NotEmpty(classes);
        foreach (var t in classes)
            Assert.True(StageCatalogue.All.Any(s => s.GetType() == t), $"{t.Name} is not in the catalogue");
        Assert.Equal(StageCatalogue.All.Count, StageCatalogue.All.Select(s => s.Name).Distinct().Count());
    }

    /// <summary>
    /// The baselines' sections are no properties of ExperimentConfig: each stage declares its top-level key (its name)
    /// and record, and the loader reads them from the catalogue. A new baseline is then its stage file alone.
    /// </summary>
    [Fact]
    public void The_baselines_declare_their_sections_in_run_order()
    {
        InOrder<(string, Type)>(
            [
                ("finetune_no_kd", typeof(DerivedStageConfig)),
                ("standard_long", typeof(StandardStageConfig)),
                ("standard_matched", typeof(StandardStageConfig)),
                ("kd", typeof(DistillStageConfig)),
                ("kd_finetune_recipe", typeof(DerivedStageConfig)),
                ("fitnets", typeof(FitNetsStageConfig)),
                ("deeper", typeof(StandardStageConfig)),
            ],
            StageCatalogue.BaselineSections
        );
        Assert.All(StageCatalogue.BaselineSections, s =>
            Assert.Null(typeof(ExperimentConfig).GetProperty(s.Key.Replace("_", ""), IgnoreCase))
        );
    }

    const System.Reflection.BindingFlags IgnoreCase =
        System.Reflection.BindingFlags.Public
        | System.Reflection.BindingFlags.Instance
        | System.Reflection.BindingFlags.IgnoreCase;

    const string Yaml = """
        wide:
          train: { epochs: 1 }
        imitation: {}
        finetune:
          alpha: 0.3
        finetune_no_kd: {}
        kd:
          temperature: 2
          train: { epochs: 4 }
        standard_matched:
          train: { epochs: 1 }
        """;

    [Fact]
    public void A_baseline_section_reads_as_its_stages_record_and_left_out_or_null_is_not_declared()
    {
        var c = ConfigLoader.Parse<ExperimentConfig>(Yaml, "e.yaml");
        Assert.Equal(["finetune_no_kd", "kd", "standard_matched"], c.Baselines.Keys.Order());
        Assert.Equal(2, c.Baseline<DistillStageConfig>("kd")!.Temperature);
        Assert.Equal(4, c.Baseline<DistillStageConfig>("kd")!.Train.Epochs);
        Assert.Null(c.Baseline<FitNetsStageConfig>("fitnets"));
        Assert.Equal(
            ["wide", "imitation", "finetune", "finetune_no_kd", "standard_matched", "kd"],
            StageCatalogue.Declared(c).Select(s => s.Name)
        );

        // --set reaches a baseline's keys, sets a section left out, and null removes one.
        var set = ConfigLoader.Parse<ExperimentConfig>(
            Yaml,
            "e.yaml",
            ["finetune_no_kd=null", "standard_matched.train.epochs=3", "fitnets.alpha=0.25", "kd=~"]
        );
        Assert.Equal(["fitnets", "standard_matched"], set.Baselines.Keys.Order());
        Assert.Equal(3, set.Baseline<StandardStageConfig>("standard_matched")!.Train.Epochs);
        Assert.Equal(0.25, set.Baseline<FitNetsStageConfig>("fitnets")!.Alpha);
        Assert.Equal(
            ["wide", "imitation", "finetune", "standard_matched", "fitnets"],
            StageCatalogue.Declared(set).Select(s => s.Name)
        );
        Assert.Empty(ConfigLoader.Parse<ExperimentConfig>("kd: null\ndeeper: ~\n", "e.yaml").Baselines);
    }

    [Theory]
    [InlineData(
        "standard_matchd:\n  train: {}\n",
        "e.yaml: unknown key 'standard_matchd' (did you mean 'standard_matched'?)"
    )]
    [InlineData("kd:\n  temprature: 2\n", "e.yaml: unknown key 'kd.temprature' (did you mean 'kd.temperature'?)")]
    [InlineData("kd:\n  temperature: 0\n", "e.yaml: key 'kd.temperature' must be positive, got 0")]
    [InlineData("finetune_no_kd:\n  alpha: 0\n", "e.yaml: unknown key 'finetune_no_kd.alpha'")]
    [InlineData("kd_finetune_recipe:\n  lr: 0\n", "e.yaml: key 'kd_finetune_recipe.lr' must be positive, got 0")]
    [InlineData("fitnets: 3\n", "e.yaml: key 'fitnets' must be a mapping (a section of keys), got '3'")]
    [InlineData("baselines: {}\n", "e.yaml: unknown key 'baselines'")]
    public void A_baseline_key_is_checked_and_suggested_as_a_property_is(string yaml, string expected)
    {
        var e = Assert.Throws<WtnException>(() => ConfigLoader.Parse<ExperimentConfig>(yaml, "e.yaml"));
        Assert.StartsWith(expected, e.Message);
    }

    /// <summary>experiments/width-sweep.yaml's stage fingerprints (seed 0) under <paramref name="overrides"/>.</summary>
    static Dictionary<string, string> SweepFingerprints(params string[] overrides)
    {
        var config = ConfigLoader.Load<ExperimentConfig>(
            Path.Combine(TestData.RepoRoot, "experiments", "width-sweep.yaml"),
            overrides
        );
        var runner = new WideThenNarrow.Orchestration.ExperimentRunner(
            config,
            Path.GetTempPath(),
            TestData.DataDir,
            TorchSharp.torch.CPU
        );
        return runner.StageFingerprints().ToDictionary(s => s.Stage, s => s.Fingerprint);
    }

    [Fact]
    public void A_derived_arms_own_lr_makes_it_the_stage_a_run_with_that_recipe_rate_trains()
    {
        var file = SweepFingerprints();
        var own = SweepFingerprints("finetune_no_kd.lr=0.1", "kd_finetune_recipe.lr=0.1");
        var recipe = SweepFingerprints("finetune.train.optimizer.lr=0.1");

        // The arms with their own rate are the stages of a run whose stage-3 recipe has that rate (so --reuse-from
        // finds them there) ...
        Assert.Equal(recipe["finetune_no_kd"], own["finetune_no_kd"]);
        Assert.Equal(recipe["kd_finetune_recipe"], own["kd_finetune_recipe"]);
        Assert.NotEqual(file["finetune_no_kd"], own["finetune_no_kd"]);
        Assert.NotEqual(file["kd_finetune_recipe"], own["kd_finetune_recipe"]);
        // ... while the method itself, and every other stage, keeps the file's recipe.
        foreach (var stage in file.Keys.Except(["finetune_no_kd", "kd_finetune_recipe"]))
            Assert.Equal(file[stage], own[stage]);
        Assert.NotEqual(file["finetune"], recipe["finetune"]);

        // An lr equal to the recipe's own is the same stage as none.
        Assert.Equal(file["finetune_no_kd"], SweepFingerprints("finetune_no_kd.lr=0.02")["finetune_no_kd"]);
    }

    [Fact]
    public void An_override_of_a_baseline_key_is_checked_and_suggested()
    {
        var e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<ExperimentConfig>(Yaml, "e.yaml", ["standard_mached.train.epochs=3"])
        );
        Assert.Equal(
            "--set standard_mached.train.epochs=3: unknown key 'standard_mached' (did you mean 'standard_matched'?)",
            e.Message
        );
        e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<ExperimentConfig>(Yaml, "e.yaml", ["kd.train.epoch=3"])
        );
        Assert.Equal(
            "--set kd.train.epoch=3: unknown key 'kd.train.epoch' (did you mean 'kd.train.epochs'?)",
            e.Message
        );
        e = Assert.Throws<WtnException>(() => ConfigLoader.Parse<ExperimentConfig>(Yaml, "e.yaml", ["kd=5"]));
        Assert.StartsWith("--set kd=5: key 'kd' must be a mapping", e.Message);
    }

    [Fact]
    public void The_baselines_are_written_in_run_order_and_read_back_the_same()
    {
        var c = ConfigLoader.Parse<ExperimentConfig>(Yaml, "e.yaml", ["deeper.train.epochs=2"]);
        var yaml = ConfigLoader.ToYaml(c);
        var back = ConfigLoader.Parse<ExperimentConfig>(yaml, "run-config.yaml");
        Assert.Equal(yaml, ConfigLoader.ToYaml(back));
        Assert.Equal(ConfigLoader.Flatten(c), ConfigLoader.Flatten(back));
        Assert.Equal(c.Baselines.Keys.Order(), back.Baselines.Keys.Order());
        var topLevel = yaml.Split('\n')
            .Where(l => l.Length > 0 && char.IsLetter(l[0]))
            .Select(l => l[..l.IndexOf(':')])
            .ToList();
        InOrder(
            [
                "name",
                "seeds",
                "seed_base",
                "max_steps",
                "data",
                "models",
                "wide",
                "imitation",
                "finetune",
                "standard",
                "finetune_no_kd",
                "standard_long",
                "standard_matched",
                "kd",
                "kd_finetune_recipe",
                "fitnets",
                "deeper",
                "downstream",
                "report",
                "depth_study",
            ],
            topLevel
        );
        var baselineKeys = StageCatalogue.BaselineSections.Select(b => b.Key).ToList();
        Assert.Equal(baselineKeys, topLevel.Where(baselineKeys.Contains));
        // A section left out is written as null, as a property's is: the flattened config keeps its keys.
        Assert.Contains("standard_long: null", yaml);
        Assert.Equal("null", ConfigLoader.Flatten(c)["fitnets"]);
        Assert.Equal("4", ConfigLoader.Flatten(c)["kd.train.epochs"]);
    }

    [Fact]
    public void A_baseline_keys_default_is_its_records()
    {
        Assert.Equal("4", ConfigLoader.DefaultOf<ExperimentConfig>("kd.temperature"));
        Assert.Equal(
            ConfigLoader.DefaultOf<ExperimentConfig>("standard.train.optimizer.lr"),
            ConfigLoader.DefaultOf<ExperimentConfig>("standard_matched.train.optimizer.lr")
        );
        Assert.Equal("1", ConfigLoader.DefaultOf<ExperimentConfig>("fitnets.hint.epochs"));
        Assert.Null(ConfigLoader.DefaultOf<ExperimentConfig>("kd.no_such_key"));
    }

    [Fact]
    public void A_config_built_in_code_with_a_section_no_stage_reads_is_refused()
    {
        var c = new ExperimentConfig().WithBaseline("kd_typo", new DistillStageConfig());
        Assert.StartsWith(
            "no stage reads a section 'kd_typo'",
            Assert.Throws<WtnException>(() => StageCatalogue.Validate(c)).Message
        );
        Assert.Throws<InvalidOperationException>(() => ConfigLoader.ToYaml(c));
        var wrong = new ExperimentConfig().WithBaseline("kd", new StandardStageConfig());
        Assert.StartsWith(
            "baseline section kd is a StandardStageConfig",
            Assert.Throws<WtnException>(() => StageCatalogue.Validate(wrong)).Message
        );
        Assert.Throws<InvalidOperationException>(() => ConfigLoader.ToYaml(wrong));
        Assert.Throws<InvalidOperationException>(() => wrong.Baseline<DistillStageConfig>("kd"));
    }
}
