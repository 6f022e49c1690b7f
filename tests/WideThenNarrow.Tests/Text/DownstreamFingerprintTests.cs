using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;

namespace WideThenNarrow.Tests.Text;

/// <summary>
/// The BERT study is resumed by newer binaries: its finished stages are recognised only while their fingerprints stay
/// what the binary that trained them recorded.
/// </summary>
public class DownstreamFingerprintTests
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

    static Dictionary<string, string> Fingerprints(IEnumerable<string>? overrides = null)
    {
        var config = ConfigLoader.Load<ExperimentConfig>(Path.Combine(TestData.RepoRoot, "experiments", "bert-study.yaml"), overrides);
        var runner = new ExperimentRunner(config, Path.GetTempPath(), TestData.DataDir, TorchSharp.torch.CPU);
        return runner.StageFingerprints().ToDictionary(s => s.Stage, s => s.Fingerprint);
    }

    [Fact]
    public void The_bert_study_keeps_the_fingerprints_its_finished_stages_recorded()
    {
        Assert.Equal(BertStudy, Fingerprints());
        // The same code on the file as the running study started it: the settings that study recorded.
        Assert.Equal(RecordedWide, Fingerprints(["wide.train.checkpoint.every_steps=500"])["wide"]);
    }
}
