namespace WideThenNarrow.Tests.Cli;

/// <summary>
/// experiments/width-chain.sh, which drives one base width of the width sweep for hours: the order of its steps, the
/// wide network exported under its final name, the grid's reuse, the rate chosen per arm on seed 0's validation (ties to
/// the smaller rate), and a second start that redoes nothing it finished. A fake wtn records every call and writes the
/// files the real one would.
/// </summary>
public sealed class WidthChainScriptTests : IDisposable
{
    readonly string _dir = TestData.NewTempFolder("width-chain");

    public void Dispose() => TestData.DeleteFolder(_dir);

    const string FakeWtn = """
        #!/usr/bin/env bash
        echo "$*" >> "$FAKE_LOG"
        args=("$@"); cmd=""; runs=""; name=""; out=""
        for ((i = 0; i < ${#args[@]}; i++)); do
          case "${args[i]}" in
            run|export) [ -z "$cmd" ] && cmd=${args[i]} ;;
            --runs-dir) runs=${args[i+1]} ;;
            -o) out=${args[i+1]} ;;
            name=*) name=${args[i]#name=} ;;
          esac
        done
        if [ "$cmd" = export ]; then
          mkdir -p "$(dirname "$out")" && echo weights > "$out"
          echo "{\"weights\": \"$(basename "$out")\"}" > "${out%.safetensors}.json"
        elif [ "$cmd" = run ] && [ -f "$FAKE_SCORES/$name.json" ]; then
          mkdir -p "$runs/$name" && cp "$FAKE_SCORES/$name.json" "$runs/$name/results.json"
        fi
        """;

    /// <summary>A grid run's results.json: seed 0's validation top-1 of the three stage-3 arms.</summary>
    void Scores(string name, double method, double noKd, double kdRecipe)
    {
        static string Arm(double v) => FormattableString.Invariant($"{{\"val_top1\": {v}, \"test_top1\": {v - 0.01}}}");
        File.WriteAllText(
            Path.Combine(_dir, "scores", name + ".json"),
            $"{{\"per_seed\": [{{\"finetune\": {Arm(method)}, \"finetune_no_kd\": {Arm(noKd)}, \"kd_finetune_recipe\": {Arm(kdRecipe)}}}]}}"
        );
    }

    (int Code, string Output, string[] Calls) Chain(string runs)
    {
        var log = Path.Combine(_dir, "calls.log");
        File.WriteAllText(log, "");
        var (code, output) = TestData.RunScript(
            Path.Combine("experiments", "width-chain.sh"),
            ["8", "0.05 0.1 0.02"],
            new Dictionary<string, string>
            {
                ["WTN_RUNS"] = runs,
                ["WTN_BIN"] = Path.Combine(_dir, "bin", "wtn"),
                ["FAKE_LOG"] = log,
                ["FAKE_SCORES"] = Path.Combine(_dir, "scores"),
            }
        );
        return (code, output, File.ReadAllLines(log));
    }

    [Fact]
    public void The_chain_trains_exports_runs_the_grid_with_reuse_chooses_on_validation_and_resumes_without_redoing()
    {
        var bin = Directory.CreateDirectory(Path.Combine(_dir, "bin")).FullName;
        File.WriteAllText(Path.Combine(bin, "wtn"), FakeWtn.Replace("\r\n", "\n") + "\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(
                Path.Combine(bin, "wtn"),
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            );
        Directory.CreateDirectory(Path.Combine(_dir, "scores"));
        // The method peaks at 0.05; finetune_no_kd at 0.1; kd_finetune_recipe ties at 0.02 and 0.05 (the smaller wins).
        Scores("width-sweep-w8-ftlr05", 0.930, 0.920, 0.925);
        Scores("width-sweep-w8-ftlr10", 0.925, 0.935, 0.915);
        Scores("width-sweep-w8-ftlr02", 0.920, 0.910, 0.925);
        var runs = Path.Combine(_dir, "runs");
        var wide = Path.Combine(runs, "width-sweep-w8-wide.safetensors");

        var (code, output, calls) = Chain(runs);
        Assert.True(code == 0, output);
        Assert.Equal(6, calls.Length);
        Assert.All(calls, c => Assert.StartsWith("--threads 1 ", c));
        Assert.Contains("run experiments/width-sweep.yaml", calls[0]);
        Assert.EndsWith("--only seed-0/wide", calls[0]);
        // Exported under its final name: the manifest written last names that very file.
        Assert.EndsWith($"--stage wide --seed 0 -o {wide}", calls[1]);
        Assert.Equal(
            "{\"weights\": \"width-sweep-w8-wide.safetensors\"}",
            File.ReadAllText(Path.Combine(runs, "width-sweep-w8-wide.json")).Trim()
        );
        string Reuse(string tag) => $"--reuse-from {runs}/width-sweep-w8-{tag}";
        var grid = calls[2..5];
        string[] tags = ["ftlr05", "ftlr10", "ftlr02"];
        string[] rates = ["0.05", "0.1", "0.02"];
        for (int i = 0; i < 3; i++)
        {
            Assert.Contains($"name=width-sweep-w8-{tags[i]} ", grid[i]);
            Assert.Contains(
                $"--seeds 1 --set wide.import={wide} --set finetune.train.optimizer.lr={rates[i]} ",
                grid[i]
            );
            Assert.Contains("--set models.thin.base_width=8 --set models.wide.base_width=8", grid[i]);
            // Each grid run reuses every earlier one (stage 2 trained once), and none reuses itself.
            for (int j = 0; j < 3; j++)
                Assert.Equal(j < i, grid[i].Contains(Reuse(tags[j]), StringComparison.Ordinal));
        }
        // The chosen run: every grid run reused, each arm at its rate.
        var chosen = File.ReadAllText(Path.Combine(runs, "width-sweep-w8-chosen.txt"));
        Assert.Contains("chosen finetune.train.optimizer.lr 0.05\n", chosen);
        Assert.Contains("chosen finetune_no_kd.lr 0.1\n", chosen);
        Assert.Contains("chosen kd_finetune_recipe.lr 0.02\n", chosen);
        Assert.Contains(
            "finetune: lr 0.02 val 92.00 test 91.00, lr 0.05 val 93.00 test 92.00, lr 0.1 val 92.50",
            chosen
        );

        void IsTheChosenRun(string call)
        {
            Assert.Contains("name=width-sweep-w8-chosen ", call);
            Assert.DoesNotContain("--seeds", call);
            Assert.Contains(
                $"--set wide.import={wide} --set deeper=null --set finetune.train.optimizer.lr=0.05 --set finetune_no_kd.lr=0.1 --set kd_finetune_recipe.lr=0.02",
                call
            );
            Assert.All(tags, t => Assert.Contains(Reuse(t), call));
        }
        IsTheChosenRun(calls[5]);

        // A second start on the same folder retrains and re-exports nothing (the manifest is there): the grid runs
        // (which the real wtn finds done) and the chosen run again.
        (code, output, calls) = Chain(runs);
        Assert.True(code == 0, output);
        Assert.Equal(4, calls.Length);
        Assert.DoesNotContain(calls, c => c.Contains("--only seed-0/wide") || c.Contains(" export "));
        IsTheChosenRun(calls[3]);
    }
}
