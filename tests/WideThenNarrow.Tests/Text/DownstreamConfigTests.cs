using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;

namespace WideThenNarrow.Tests.Text;

/// <summary>
/// downstream.seeds and downstream.lrs: checked at load, and invisible to every stage fingerprint at their defaults. The
/// BERT study is resumed by newer binaries: its finished stages are recognised only while their fingerprints stay what
/// the binary that trained them recorded.
/// </summary>
public class DownstreamConfigTests
{
    /// <summary>
    /// experiments/bert-study.yaml's fingerprints (seed 0) as main computed them on 2026-12-05 (commit 0f8696d: the wide
    /// stage checkpointing every 200 steps), before the downstream keys seeds and lrs existed.
    /// </summary>
    static readonly Dictionary<string, string> BertStudy = new()
    {
        ["wide"] = "f4f7cc9cc934d40a547e6e47df71aea3db71398824459246df7412aafefc52b6",
        ["imitation"] = "efb3168422de9fb6efc833815e8fabc55a36a6b293240316f72e15b0b7774cca",
        ["finetune"] = "eedb7c0feb8b9e0904eb1708975ca045eebc580593509b651ebc4ca20e16d4d9",
        ["standard_matched"] = "6b5bdd9384656b02239d1680521d1d5818601e55179b9e28d531259c5c87526e",
        ["deeper"] = "fdc13692b11aeca927ca3b662f4161954a812699cf33e9cf5c34fc912e9af600",
        ["downstream_finetune"] = "732c94fc73b07f92030c6deef8a4ec387411c6e9d270f3e137e67da15f0f91e9",
        ["downstream_standard_matched"] = "883cbdeddb60f358650c400b46be5e2f2012dd6e96269033160f68c0da9b7ec5",
        ["downstream_deeper"] = "3e754b0273d01fb4f173d589f6f0b3b6a21f1127f9027031110dc3be0f4b792d",
    };

    /// <summary>
    /// The SHA-256 of the settings.yaml that the study's run in /var/tmp/wtn-runs/bert-study (an older binary) recorded
    /// when its wide stage started, 2026-12-05 21:26 UTC, the file then checkpointing every 500 steps.
    /// </summary>
    const string RecordedWide = "ca055c34ca53566fead5e76f602fdf130c94ba9abeba929dd6266292ebf272b7";

    /// <summary>The stages' fingerprints, keys added since the old pins were taken left out where they are at their default.</summary>
    static Dictionary<string, string> Fingerprints(IEnumerable<string>? overrides = null) =>
        Fingerprints(overrides, kv => !(AddedSince.Contains(kv.Key) && kv.Value == "null"));

    /// <summary>
    /// The stages' fingerprints as the scheduler records them today (every key), keys added since the run with the
    /// locality prior started left out where they are at their default.
    /// </summary>
    static Dictionary<string, string> Recorded(IEnumerable<string>? overrides = null) =>
        Fingerprints(overrides, kv => !(AddedSincePrior.Contains(kv.Key) && kv.Value == "null"));

    static Dictionary<string, string> Fingerprints(
        IEnumerable<string>? overrides,
        Func<KeyValuePair<string, string>, bool> keep
    )
    {
        var config = ConfigLoader.Load<ExperimentConfig>(
            Path.Combine(TestData.RepoRoot, "experiments", "bert-study.yaml"),
            overrides
        );
        var runner = new ExperimentRunner(config, Path.GetTempPath(), TestData.DataDir, TorchSharp.torch.CPU);
        return runner
            .StageFingerprints()
            .ToDictionary(
                s => s.Stage,
                s => StageFingerprint.Hash(s.Settings.Where(keep).ToDictionary(kv => kv.Key, kv => kv.Value))
            );
    }

    /// <summary>
    /// Keys added to wtn since the study's run with the locality prior started (2026-12-06 11:27 UTC). Declared before
    /// <see cref="AddedSince"/>, which its initialiser reads.
    /// </summary>
    static readonly HashSet<string> AddedSincePrior =
    [
        "models.thin.locality_gain",
        "models.wide.locality_gain",
        "models.deeper.locality_gain",
    ];

    /// <summary>
    /// Keys added to wtn since the fingerprints above were recorded. At their defaults (null) they are no change: the
    /// scheduler compares a finished or started stage's recorded settings with the new ones key by key, defaults apart
    /// (<c>StageScheduler.Verify</c>; ExperimentRunnerTests checks it with models.thin.base_width), so the running study's stages still count.
    /// </summary>
    static readonly HashSet<string> AddedSince =
    [
        "models.thin.dropout",
        "models.wide.dropout",
        "models.deeper.dropout",
        "models.thin.locality_prior",
        "models.wide.locality_prior",
        "models.deeper.locality_prior",
        .. AddedSincePrior,
    ];

    static readonly string[] Pretraining = ["wide", "imitation", "finetune", "standard_matched", "deeper"];

    /// <summary>
    /// Stages the file declared after the pins were taken: standard_long (2026-12-06, the thin encoder at the wide
    /// stage's compute) and its fine-tuning. A stage of its own, it must change no other stage's fingerprint.
    /// </summary>
    static readonly string[] AddedStages = ["downstream_standard_long", "standard_long"];

    /// <summary>The file before it set the locality prior on its three networks (2026-12-06), as the pins above were taken.</summary>
    static readonly string[] NoPrior =
    [
        "models.thin.locality_prior=null",
        "models.wide.locality_prior=null",
        "models.deeper.locality_prior=null",
    ];

    /// <summary>
    /// The fingerprint (<see cref="StageFingerprint.Hash"/> of every key) of the settings.yaml that the study's run with the
    /// locality prior (/var/tmp/wtn-runs/bert-study-local, started 2026-12-06 11:27 UTC with the prior given by --set on
    /// all three networks) recorded for its wide stage.
    /// </summary>
    const string RecordedWideWithPrior = "6352c2d9aa64846152115904e6870ba90dfa19df748861f5ffc9e5bfb38d27c4";

    [Fact]
    public void The_file_with_the_locality_prior_is_the_run_that_trains_with_it_and_no_stage_of_the_old_study()
    {
        var study = Recorded();
        // The wide stage the prior's run is training: the file now gives what that run was given by --set.
        Assert.Equal(RecordedWideWithPrior, study["wide"]);
        Assert.Equal(
            RecordedWideWithPrior,
            Recorded([
                "models.thin.locality_prior=true",
                "models.wide.locality_prior=true",
                "models.deeper.locality_prior=true",
            ])["wide"]
        );
        Assert.NotEqual(RecordedWideWithPrior, Recorded(NoPrior)["wide"]);
        // Every stage starts from networks initialised otherwise: none may reuse the old study's.
        Assert.All(BertStudy.Keys, s => Assert.NotEqual(BertStudy[s], study[s]));
        // Each network's prior reaches the stages that build that network, and not the wide stage.
        var thinOff = Recorded(["models.thin.locality_prior=null"]);
        Assert.Equal(study["wide"], thinOff["wide"]);
        Assert.NotEqual(study["standard_matched"], thinOff["standard_matched"]);
        Assert.NotEqual(study["imitation"], thinOff["imitation"]);
        var deeperOff = Recorded(["models.deeper.locality_prior=null"]);
        Assert.Equal(study["wide"], deeperOff["wide"]);
        Assert.Equal(study["standard_matched"], deeperOff["standard_matched"]);
        Assert.NotEqual(study["deeper"], deeperOff["deeper"]);
    }

    [Fact]
    public void The_downstream_keys_change_no_pretraining_fingerprint_and_at_their_defaults_none_at_all()
    {
        // The file as committed (its prior set back to the default, as the pins were taken): three fine-tuning seeds
        // and the grid, the way the running study resumed.
        var file = ConfigLoader.Load<ExperimentConfig>(
            Path.Combine(TestData.RepoRoot, "experiments", "bert-study.yaml")
        );
        Assert.Equal(3, file.Downstream!.Seeds);
        Assert.Equal([1e-4, 2e-4, 5e-4], file.Downstream.Lrs);
        var study = Fingerprints(NoPrior);
        var before = Fingerprints([.. NoPrior, "downstream.seeds=1", "downstream.lrs=[]"]);
        // The keys at their defaults (as before they existed): every stage, downstream ones included, as main recorded
        // it; the stages declared since are the only new ones.
        Assert.Equal(AddedStages, before.Keys.Except(BertStudy.Keys).Order());
        Assert.Equal(BertStudy, before.Where(kv => !AddedStages.Contains(kv.Key)).ToDictionary());
        // Three fine-tuning seeds and the grid: the pretraining stages are the ones the running study finishes; only
        // the downstream stages, which the keys change, are new.
        Assert.Equal(BertStudy.Keys.Concat(AddedStages).Order(), study.Keys.Order());
        Assert.All(Pretraining, s => Assert.Equal(BertStudy[s], study[s]));
        Assert.All(study.Keys.Except(Pretraining).Except(AddedStages), s => Assert.NotEqual(BertStudy[s], study[s]));
        // The file as the running study started it (checkpoints every 500 steps): with the keys or without, its wide
        // stage is the one that study recorded.
        Assert.Equal(
            RecordedWide,
            Fingerprints([
                .. NoPrior,
                "wide.train.checkpoint.every_steps=500",
                "downstream.seeds=3",
                "downstream.lrs=[1.0e-4, 2.0e-4, 5.0e-4]",
            ])["wide"]
        );
        Assert.Equal(
            RecordedWide,
            Fingerprints([
                .. NoPrior,
                "wide.train.checkpoint.every_steps=500",
                "downstream.seeds=1",
                "downstream.lrs=[]",
            ])["wide"]
        );
        // Either key alone is a change of its own.
        Assert.NotEqual(
            study["downstream_finetune"],
            Fingerprints([.. NoPrior, "downstream.seeds=3", "downstream.lrs=[]"])["downstream_finetune"]
        );
        Assert.NotEqual(
            study["downstream_finetune"],
            Fingerprints([.. NoPrior, "downstream.seeds=1", "downstream.lrs=[1.0e-4, 2.0e-4, 5.0e-4]"])[
                "downstream_finetune"
            ]
        );
    }

    [Theory]
    [InlineData(
        "downstream:\n  seeds: 0\n",
        "key 'downstream.seeds' must be between 1 and 1,000 (fine-tunings of each pretrained encoder, each its own seed), got 0"
    )]
    [InlineData("downstream:\n  seeds: -2\n", "key 'downstream.seeds' must be between 1 and 1,000")]
    [InlineData("downstream:\n  seeds: three\n", "key 'downstream.seeds' expects an integer, got 'three'")]
    [InlineData(
        "downstream:\n  lrs: [-1]\n",
        "key 'downstream.lrs' must list positive learning rates (e.g. [1.0e-4, 2.0e-4, 5.0e-4]), got -1"
    )]
    [InlineData(
        "downstream:\n  lrs: [1.0e-4, 0]\n",
        "key 'downstream.lrs' must list positive learning rates (e.g. [1.0e-4, 2.0e-4, 5.0e-4]), got 0"
    )]
    [InlineData(
        "downstream:\n  lrs: [1.0e-4, 2.0e-4, 1.0e-4]\n",
        "key 'downstream.lrs' lists 0.0001 twice; give each learning rate once"
    )]
    [InlineData("downstream:\n  lrs: 1.0e-4\n", "key 'downstream.lrs' must be a list, e.g. [1, 2], got '1.0e-4'")]
    public void A_bad_downstream_key_is_one_line_naming_the_key(string yaml, string expected)
    {
        var e = Assert.Throws<WtnException>(() => ConfigLoader.Parse<ExperimentConfig>(yaml, "exp.yaml"));
        Assert.StartsWith("exp.yaml: " + expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_bad_downstream_override_is_refused_naming_the_key()
    {
        var e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<ExperimentConfig>("name: x\n", "exp.yaml", ["downstream.seeds=0"])
        );
        Assert.Contains("key 'downstream.seeds' must be between 1 and 1,000", e.Message);
        e = Assert.Throws<WtnException>(() =>
            ConfigLoader.Parse<ExperimentConfig>("name: x\n", "exp.yaml", ["downstream.lrs=[-1]"])
        );
        Assert.Contains("key 'downstream.lrs' must list positive learning rates", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void The_keys_are_left_out_of_flat_settings_at_their_defaults_only()
    {
        var plain = ConfigLoader.Parse<ExperimentConfig>("downstream: {}\n", "e.yaml").Downstream!;
        Assert.DoesNotContain(ConfigLoader.Flatten(plain, "downstream").Keys, k =>
            k is "downstream.seeds" or "downstream.lrs"
        );
        // Written at their defaults, the same settings.
        Assert.Equal(
            ConfigLoader.Flatten(plain),
            ConfigLoader.Flatten(
                ConfigLoader.Parse<ExperimentConfig>("downstream: {seeds: 1, lrs: []}\n", "e.yaml").Downstream!
            )
        );
        var study = ConfigLoader
            .Parse<ExperimentConfig>("downstream: {seeds: 3, lrs: [1.0e-4, 5.0e-4]}\n", "e.yaml")
            .Downstream!;
        var flat = ConfigLoader.Flatten(study, "downstream");
        Assert.Equal("3", flat["downstream.seeds"]);
        Assert.Equal("[0.0001, 0.0005]", flat["downstream.lrs"]);
        // run-config.yaml has them always, and reads back.
        var yaml = ConfigLoader.ToYaml(new ExperimentConfig { Downstream = plain });
        Assert.Contains("seeds: 1", yaml);
        Assert.Equal(
            ConfigLoader.Flatten(plain),
            ConfigLoader.Flatten(ConfigLoader.Parse<ExperimentConfig>(yaml, "run-config.yaml").Downstream!)
        );
        // A stage recorded with seeds 3 and now at the default is a change; one recorded before the key, under it, is none.
        Assert.Equal("1", ConfigLoader.DefaultOf<ExperimentConfig>("downstream.seeds"));
        Assert.Equal(
            ["downstream.seeds 3 -> (absent)"],
            ConfigLoader.Changes(
                new Dictionary<string, string> { ["downstream.seeds"] = "3" },
                new Dictionary<string, string>(),
                ConfigLoader.DefaultOf<ExperimentConfig>
            )
        );
    }
}
