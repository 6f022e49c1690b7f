using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Cli;

/// <summary>
/// experiments/carry.sh, which carries an unfinished run folder between machines through git: what it packs, that a
/// restore gives the same files back, and what it refuses.
/// </summary>
public sealed class CarryScriptTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("carry");

    public void Dispose() => TestData.DeleteFolder(_dir);

    (int Code, string Output) Carry(string args, string runs) =>
        TestData.RunScript(
            Path.Combine("experiments", "carry.sh"),
            args.Split(' '),
            new Dictionary<string, string> { ["WTN_RUNS"] = runs, ["WTN_CARRY"] = Path.Combine(_dir, "packs") }
        );

    static void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    [Fact]
    public void Save_packs_the_newest_checkpoint_of_each_unfinished_stage_none_of_finished_ones_without_locks_and_restore_gives_it_back()
    {
        var runs = Path.Combine(_dir, "runs");
        var exp = Path.Combine(runs, "exp");
        Write(Path.Combine(exp, "run-config.yaml"), "seeds: 1\n");
        Write(Path.Combine(exp, "seed-0", "wide", "stage.json"), "{}");
        // A finished stage: its checkpoints stay behind (the run skips it), best.ckpt too; its final weights go.
        Write(Path.Combine(exp, "seed-0", "wide", "final.model"), "weights");
        Write(Path.Combine(exp, "seed-0", "wide", "train", "checkpoints", "step-000014070.ckpt"), "last");
        Write(Path.Combine(exp, "seed-0", "wide", "train", "checkpoints", "best.ckpt"), "best");
        Write(Path.Combine(exp, "seed-0", "deeper", "train", "checkpoints", "step-000000100.ckpt"), "old");
        Write(Path.Combine(exp, "seed-0", "deeper", "train", "checkpoints", "step-000000200.ckpt"), "new");
        Write(Path.Combine(exp, "seed-0", "deeper", "train", "checkpoints", "best.ckpt"), "best");
        Write(Path.Combine(exp, "seed-0", "deeper", "train", "progress.json"), "{\"step\": 200}");
        Write(Path.Combine(exp, "seed-0", "imitation", "block-03", "checkpoints", "step-000000007.ckpt"), "block");
        Write(Path.Combine(exp, "seed-0", "deeper", ".lock.owner"), "process 1 on vm");
        Write(Path.Combine(exp, "seed-0", "deeper", ".lock"), "");

        // A live wtn holds the stage's lock: nothing is packed.
        using (RunLock.Acquire(Path.Combine(exp, "seed-0", "deeper")))
        {
            var (held, said) = Carry("save exp", runs);
            Assert.Equal(1, held);
            Assert.Contains("is held by a running wtn", said);
            Assert.False(File.Exists(Path.Combine(_dir, "packs", "exp.tar.gz")));
        }
        var (code, output) = Carry("save exp", runs);
        Assert.True(code == 0, output);

        var back = Path.Combine(_dir, "back");
        (code, output) = Carry("restore exp", back);
        Assert.True(code == 0, output);
        string[] Files(string root) =>
            [
                .. Directory
                    .GetFiles(root, "*", SearchOption.AllDirectories)
                    .Select(f => Path.GetRelativePath(root, f))
                    .Order(StringComparer.Ordinal),
            ];
        Assert.Equal(
            [
                .. Files(exp)
                    .Where(f =>
                        !f.EndsWith(".lock", StringComparison.Ordinal)
                        && !f.EndsWith(".lock.owner", StringComparison.Ordinal)
                        && !f.EndsWith("step-000000100.ckpt", StringComparison.Ordinal)
                        && !f.EndsWith("best.ckpt", StringComparison.Ordinal)
                        && !f.StartsWith(
                            Path.Combine("seed-0", "wide", "train", "checkpoints"),
                            StringComparison.Ordinal
                        )
                    ),
            ],
            Files(Path.Combine(back, "exp"))
        );
        Assert.Equal(
            "new",
            File.ReadAllText(
                Path.Combine(back, "exp", "seed-0", "deeper", "train", "checkpoints", "step-000000200.ckpt")
            )
        );
        Assert.False(
            File.Exists(Path.Combine(back, "exp", "seed-0", "deeper", "train", "checkpoints", "best.ckpt")),
            "an unfinished stage's best.ckpt stays behind (nothing reads it back on resume)"
        );
        Assert.False(
            File.Exists(Path.Combine(back, "exp", "seed-0", "wide", "train", "checkpoints", "best.ckpt")),
            "a finished stage's best.ckpt stays behind"
        );
        Assert.Equal("weights", File.ReadAllText(Path.Combine(back, "exp", "seed-0", "wide", "final.model")));

        // A folder already there is not overwritten.
        (code, output) = Carry("restore exp", back);
        Assert.Equal(1, code);
        Assert.Contains("already exists", output);
        // Nothing to pack, or no pack to restore: one line each.
        Assert.Contains("no run folder", Carry("save nope", runs).Output);
        Assert.Contains("no pack", Carry("restore nope", back).Output);
    }

    [Fact]
    public void Save_all_packs_every_run_and_the_loose_files_unchanged_runs_into_the_same_bytes_and_restore_all_brings_them_back()
    {
        var runs = Path.Combine(_dir, "runs");
        Write(Path.Combine(runs, "a", "seed-0", "wide", "train", "checkpoints", "step-000000010.ckpt"), "a");
        Write(Path.Combine(runs, "b", "seed-0", "finetune", "stage.json"), "{}");
        Write(Path.Combine(runs, "wide.safetensors"), "exported");
        var (code, output) = Carry("save-all", runs);
        Assert.True(code == 0, output);
        var packs = Path.Combine(_dir, "packs");
        var first = File.ReadAllBytes(Path.Combine(packs, "a.tar.gz"));
        // Touching a file's time only: the pack is rebuilt and compared, and left as it was.
        File.SetLastWriteTimeUtc(Path.Combine(runs, "b", "seed-0", "finetune", "stage.json"), DateTime.UtcNow);
        (code, output) = Carry("save-all", runs);
        Assert.True(code == 0, output);
        Assert.Contains("a.tar.gz unchanged", output);
        Assert.Equal(first, File.ReadAllBytes(Path.Combine(packs, "a.tar.gz")));

        var back = Path.Combine(_dir, "back");
        (code, output) = Carry("restore-all", back);
        Assert.True(code == 0, output);
        Assert.Equal(
            "a",
            File.ReadAllText(Path.Combine(back, "a", "seed-0", "wide", "train", "checkpoints", "step-000000010.ckpt"))
        );
        Assert.True(File.Exists(Path.Combine(back, "b", "seed-0", "finetune", "stage.json")));
        Assert.Equal("exported", File.ReadAllText(Path.Combine(back, "wide.safetensors")));
        // Again: the run folders exist and stay as they are.
        (code, output) = Carry("restore-all", back);
        Assert.True(code == 0, output);
        Assert.Contains("left packed", output);
    }
}
