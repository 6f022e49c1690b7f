using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Training;

[Collection("torch-rng")]
public sealed class TrainerTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "wtn-trainer-" + Guid.NewGuid().ToString("N")[..8]);
    readonly Tensor _x,
        _y,
        _ex,
        _ey;

    public TrainerTests()
    {
        (_x, _y) = TensorBatchSource.Synthetic(96, seed: 1);
        (_ex, _ey) = TensorBatchSource.Synthetic(48, seed: 2);
    }

    public void Dispose() => TestData.DeleteFolder(_root);

    static TrainerSettings Settings(OptimizerKind kind) =>
        new()
        {
            Optimizer =
                kind == OptimizerKind.Sgd
                    ? new OptimizerConfig
                    {
                        Name = kind,
                        Lr = 0.1,
                        Momentum = 0.9,
                        Nesterov = true,
                        WeightDecay = 5e-4,
                        DecayNormsAndBiases = false,
                        ClipGradNorm = 5,
                    }
                    : new OptimizerConfig
                    {
                        Name = kind,
                        Lr = 0.01,
                        WeightDecay = 0.01,
                    },
            Schedule = new ScheduleConfig { Name = ScheduleKind.Cosine, WarmupSteps = 3 },
            Epochs = 3,
            Seed = 7,
            Checkpoint = new CheckpointConfig { EverySteps = 5, KeepLast = 3 },
            Logging = new LoggingConfig { EverySteps = 4, Tensorboard = false },
        };

    /// <summary>A fresh model (initialised from <paramref name="initSeed"/>) and a job over it.</summary>
    (TinyNet Model, TrainingJob Job) Job(
        string dir,
        TrainerSettings s,
        bool resume = false,
        long initSeed = 7,
        IProgress<TrainingProgress>? progress = null,
        ITrainingObjective? objective = null
    )
    {
        manual_seed(initSeed);
        var model = new TinyNet();
        var job = new TrainingJob
        {
            Stage = "train",
            Modules = new Dictionary<string, nn.Module> { ["model"] = model },
            ParameterGroups =
            [
                new ParameterGroup("body", model.BodyParameters().ToList(), LrFactor: 0.5),
                new ParameterGroup("head", model.HeadParameters().ToList()),
            ],
            Objective = objective ?? new ClassificationObjective(model, labelSmoothing: 0.1),
            Train = new TensorBatchSource(_x, _y, batchSize: 8, shuffle: true, seed: 3),
            Eval = new TensorBatchSource(_ex, _ey, batchSize: 16, shuffle: false, seed: 0),
            Settings = s,
            RunDir = Path.Combine(_root, dir),
            Progress = progress,
            Resume = resume,
        };
        return (model, job);
    }

    sealed class Sink(Action<TrainingProgress> onEvent) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onEvent(value);
    }

    [Theory]
    [InlineData(OptimizerKind.Sgd)]
    [InlineData(OptimizerKind.AdamW)]
    public void Interrupted_mid_epoch_then_resumed_ends_bit_identical_to_an_uninterrupted_run(OptimizerKind kind)
    {
        var s = Settings(kind);
        var (full, fullJob) = Job("full", s);
        var fullResult = Trainer.Run(fullJob);
        Assert.Equal(36, fullResult.Steps); // 3 epochs x 12 batches

        // Ctrl-C after step 17 (epoch 2, batch 5 of 12): the step finishes, a checkpoint is written, the run throws.
        using var cts = new CancellationTokenSource();
        var (_, partJob) = Job(
            "part",
            s,
            progress: new Sink(p =>
            {
                if (p.Kind == TrainingEventKind.Step && p.Step == 17)
                    cts.Cancel();
            })
        );
        var stop = Assert.Throws<TrainingInterruptedException>(() => Trainer.Run(partJob, cts.Token));
        Assert.EndsWith("step-000000017.ckpt", Trainer.LatestCheckpoint(partJob.RunDir));
        Assert.Equal((17L, Trainer.LatestCheckpoint(partJob.RunDir)), (stop.Step, stop.Checkpoint));

        // Resume into a differently initialised model: everything must come from the checkpoint.
        var (resumed, resumeJob) = Job("part", s, resume: true, initSeed: 99);
        var result = Trainer.Run(resumeJob);

        Assert.True(result.Resumed);
        Assert.Empty(StateDicts.Differences(full, resumed));
        Assert.Equal(
            fullResult.Epochs.Select(e => (e.TrainLoss, e.TrainTop1, e.EvalLoss, e.EvalTop1)),
            result.Epochs.Select(e => (e.TrainLoss, e.TrainTop1, e.EvalLoss, e.EvalTop1))
        );
        var rows = File.ReadAllLines(Path.Combine(resumeJob.RunDir, "metrics.jsonl"));
        Assert.Equal(File.ReadAllLines(Path.Combine(fullJob.RunDir, "metrics.jsonl")).Length, rows.Length);
    }

    [Fact]
    public void After_a_crash_the_run_resumes_from_the_last_periodic_checkpoint_bit_identical()
    {
        var s = Settings(OptimizerKind.Sgd);
        var (full, fullJob) = Job("full", s);
        Trainer.Run(fullJob);

        // A crash (think kill -9) during step 23: no checkpoint is written then; the last one is the periodic one at step 20.
        var (crashModel, crashJob) = Job("crash", s);
        int calls = 0;
        var inner = new ClassificationObjective(crashModel, 0.1);
        var crashing = new DelegateObjective(
            (b, t) => t && ++calls == 23 ? throw new IOException("simulated crash") : inner.Compute(b, t)
        );
        Assert.Throws<IOException>(() =>
            Trainer.Run(
                new TrainingJob
                {
                    Stage = crashJob.Stage,
                    Modules = crashJob.Modules,
                    ParameterGroups = crashJob.ParameterGroups,
                    Objective = crashing,
                    Train = crashJob.Train,
                    Eval = crashJob.Eval,
                    Settings = s,
                    RunDir = crashJob.RunDir,
                }
            )
        );
        Assert.EndsWith("step-000000020.ckpt", Trainer.LatestCheckpoint(crashJob.RunDir));

        var (resumed, resumeJob) = Job("crash", s, resume: true, initSeed: 5);
        Trainer.Run(resumeJob);
        Assert.Empty(StateDicts.Differences(full, resumed));
    }

    sealed class DelegateObjective(Func<Batch, bool, ObjectiveOutput> f) : ITrainingObjective
    {
        public ObjectiveOutput Compute(Batch batch, bool training) => f(batch, training);
    }

    [Theory]
    [InlineData("truncate")]
    [InlineData("flip")]
    public void A_damaged_checkpoint_is_refused_with_one_line_naming_the_file(string damage)
    {
        var s = Settings(OptimizerKind.Sgd) with { Epochs = 1 };
        var (_, job) = Job("damaged", s);
        Trainer.Run(job);
        var ckpt = Trainer.LatestCheckpoint(job.RunDir)!;
        var bytes = File.ReadAllBytes(ckpt);
        if (damage == "truncate")
            bytes = bytes[..(bytes.Length - 100)];
        else
            bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(ckpt, bytes);

        var (_, resumeJob) = Job("damaged", s, resume: true);
        var e = Assert.Throws<WtnException>(() => Trainer.Run(resumeJob));
        Assert.Contains(ckpt, e.Message);
        Assert.Contains(damage == "truncate" ? "truncated" : "corrupt", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_key_the_checkpoints_settings_lack_is_no_change_at_its_default_and_refused_otherwise()
    {
        var s = Settings(OptimizerKind.Sgd) with { Epochs = 1 };
        // The settings a stage's checkpoint was written under, before three keys were added to wtn.
        var was = new SortedDictionary<string, string> { ["imitation.train.optimizer.lr"] = "0.1" };
        string Yaml(params (string Key, string Value)[] added)
        {
            var now = new SortedDictionary<string, string>(was);
            foreach (var (k, v) in added)
                now[k] = v;
            return ConfigLoader.FlatToYaml(now);
        }
        using var cts = new CancellationTokenSource();
        var (_, job) = Job(
            "added",
            s,
            progress: new Sink(p =>
            {
                if (p.Kind == TrainingEventKind.Step && p.Step == 5)
                    cts.Cancel();
            })
        );
        Assert.Throws<TrainingInterruptedException>(() =>
            Trainer.Run(
                new TrainingJob
                {
                    Stage = job.Stage,
                    Modules = job.Modules,
                    ParameterGroups = job.ParameterGroups,
                    Objective = job.Objective,
                    Train = job.Train,
                    Eval = job.Eval,
                    Settings = s,
                    RunDir = job.RunDir,
                    Progress = job.Progress,
                    ConfigYaml = Yaml(),
                    SettingDefault = ConfigLoader.DefaultOf<WideThenNarrow.Method.ExperimentConfig>,
                },
                cts.Token
            )
        );
        var ckpt = Trainer.LatestCheckpoint(job.RunDir)!;
        TrainingJob Resume(string yaml)
        {
            var (_, r) = Job("added", s, resume: true);
            return new TrainingJob
            {
                Stage = r.Stage,
                Modules = r.Modules,
                ParameterGroups = r.ParameterGroups,
                Objective = r.Objective,
                Train = r.Train,
                Eval = r.Eval,
                Settings = s,
                RunDir = r.RunDir,
                Resume = true,
                ConfigYaml = yaml,
                SettingDefault = ConfigLoader.DefaultOf<WideThenNarrow.Method.ExperimentConfig>,
            };
        }

        // An added key at a value other than its default changes the run: refused, naming the key.
        var e = Assert.Throws<WtnException>(() =>
            Trainer.Run(Resume(Yaml(("imitation.copy_embeddings", "false"), ("models.thin.widen_heads", "size"))))
        );
        Assert.Equal(
            $"checkpoint {ckpt} was written under other settings (imitation.copy_embeddings (absent) -> false); "
                + "resume with the settings the run started with, or start a new run folder",
            e.Message
        );

        // Added keys at their defaults (the settings of the resume that once failed) are the same run: it resumes.
        var defaults = Yaml(
            ("imitation.copy_embeddings", "true"),
            ("models.thin.max_positions", "null"),
            ("models.thin.widen_heads", "size")
        );
        var result = Trainer.Run(Resume(defaults));
        Assert.True(result.Resumed);
        Assert.Equal(12, result.Steps);
    }

    [Fact]
    public void A_nan_loss_stops_the_run_naming_the_step_and_the_last_good_checkpoint()
    {
        var s = Settings(OptimizerKind.Sgd);
        var (model, job) = Job("nan", s);
        int calls = 0;
        var inner = new ClassificationObjective(model);
        var nanAt12 = new DelegateObjective(
            (b, t) =>
            {
                var o = inner.Compute(b, t);
                return t && ++calls == 12 ? o with { Loss = o.Loss * float.NaN } : o;
            }
        );
        var e = Assert.Throws<WtnException>(() =>
            Trainer.Run(
                new TrainingJob
                {
                    Stage = "train",
                    Modules = job.Modules,
                    ParameterGroups = job.ParameterGroups,
                    Objective = nanAt12,
                    Train = job.Train,
                    Settings = s,
                    RunDir = job.RunDir,
                }
            )
        );
        Assert.Contains("step 12", e.Message);
        Assert.Contains("step-000000010.ckpt", e.Message);
    }

    [Fact]
    public void An_infinite_eval_loss_stops_the_run_like_nan_before_anything_is_written_as_json()
    {
        var s = Settings(OptimizerKind.Sgd);
        ClassificationObjective? inner = null;
        var infiniteEval = new DelegateObjective(
            (b, t) =>
            {
                var o = inner!.Compute(b, t);
                return t ? o : o with { Loss = o.Loss * float.PositiveInfinity };
            }
        );
        var (model, job) = Job("inf", s, objective: infiniteEval);
        inner = new ClassificationObjective(model);
        var e = Assert.Throws<WtnException>(() => Trainer.Run(job));
        // 96 examples in batches of 8: the first evaluation ends epoch 1 at step 12.
        Assert.Equal(
            "stage train: eval loss is Infinity at step 12 (epoch 1); last good checkpoint: "
                + $"{Path.Combine(job.RunDir, "checkpoints", "step-000000010.ckpt")}. Lower optimizer.lr or set optimizer.clip_grad_norm",
            e.Message
        );
        Assert.All(File.ReadAllLines(Path.Combine(job.RunDir, "metrics.jsonl")), l =>
            Assert.DoesNotContain("Infinity", l)
        );
    }

    [Fact]
    public void Parameters_outside_every_group_stay_fixed_and_eval_only_modules_stay_in_eval_mode()
    {
        var s = Settings(OptimizerKind.Sgd) with { Epochs = 1 };
        manual_seed(1);
        var model = new TinyNet();
        var teacher = new TinyNet();
        var body = model.BodyParameters().Select(p => p.detach().clone()).ToList();
        var head = model.HeadParameters().Select(p => p.detach().clone()).ToList();
        bool teacherEverTrained = false;
        var ce = new ClassificationObjective(model);
        var objective = new DelegateObjective(
            (b, t) =>
            {
                teacherEverTrained |= teacher.training;
                return ce.Compute(b, t);
            }
        );
        var result = Trainer.Run(
            new TrainingJob
            {
                Stage = "head-only",
                Modules = new Dictionary<string, nn.Module> { ["model"] = model },
                ParameterGroups = [new ParameterGroup("head", model.HeadParameters().ToList())],
                Objective = objective,
                Train = new TensorBatchSource(_x, _y, 8, true, 3),
                Settings = s,
                RunDir = Path.Combine(_root, "head-only"),
                EvalOnlyModules = [teacher],
            }
        );
        Assert.Equal(12, result.Steps);
        Assert.All(model.BodyParameters().Zip(body), p => Assert.True(StateDicts.BitEqual(p.First, p.Second)));
        Assert.Contains(model.HeadParameters().Zip(head), p => !StateDicts.BitEqual(p.First, p.Second));
        Assert.False(teacherEverTrained);
    }

    [Fact]
    public void Training_learns_the_synthetic_task_and_records_best_and_last()
    {
        var s = Settings(OptimizerKind.Sgd) with { Epochs = 4 };
        var (_, job) = Job("learn", s);
        var result = Trainer.Run(job);
        Assert.Equal(4, result.Epochs.Count);
        Assert.True(result.Last!.EvalTop1 > 0.9, $"eval top-1 {result.Last.EvalTop1}");
        Assert.True(result.Epochs[^1].TrainLoss < result.Epochs[0].TrainLoss);
        Assert.Equal(result.Epochs.Max(e => e.EvalTop1), result.Best!.EvalTop1);
        Assert.True(File.Exists(result.BestCheckpoint));
        Assert.True(Directory.GetFiles(Path.Combine(job.RunDir, "checkpoints"), "step-*.ckpt").Length <= 3);
        // A fresh run into a folder with checkpoints is refused rather than silently overwriting it.
        var (_, again) = Job("learn", s);
        Assert.Contains("--resume", Assert.Throws<WtnException>(() => Trainer.Run(again)).Message);
        // Best checkpoint's weights load into a fresh model.
        var (fresh, _) = Job("x", s, initSeed: 42);
        Trainer.LoadModules(result.BestCheckpoint!, new Dictionary<string, nn.Module> { ["model"] = fresh });
    }

    [Fact]
    public void Bfloat16_trains_the_whole_model_in_bfloat16()
    {
        var s = Settings(OptimizerKind.Sgd) with { Epochs = 2, Precision = Precision.Bfloat16 };
        manual_seed(7);
        var model = new TinyNet();
        Trainer.ApplyPrecision(s.Precision, model);
        var result = Trainer.Run(
            new TrainingJob
            {
                Stage = "bf16",
                Modules = new Dictionary<string, nn.Module> { ["model"] = model },
                ParameterGroups = [ParameterGroup.Of("model", model)],
                Objective = new ClassificationObjective(model),
                Train = new TensorBatchSource(_x, _y, 8, true, 3),
                Eval = new TensorBatchSource(_ex, _ey, 16, false, 0),
                Settings = s,
                RunDir = Path.Combine(_root, "bf16"),
            }
        );
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.True(result.Last!.EvalTop1 > 0.6, $"eval top-1 {result.Last.EvalTop1}");
        // Float32 parameters under a bfloat16 setting are a programming error, caught before training.
        var (_, f32) = Job("bf16-mismatch", s);
        Assert.Throws<ArgumentException>(() => Trainer.Run(f32));
    }

    [Fact]
    public void A_step_budget_stops_mid_epoch()
    {
        var s = Settings(OptimizerKind.Sgd) with { Steps = 17 };
        var (_, job) = Job("steps", s);
        var result = Trainer.Run(job);
        Assert.Equal(17, result.Steps);
        Assert.Equal(2, result.Epochs.Count);
    }
}
