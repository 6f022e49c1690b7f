using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// What every stage of one seed shares: the config, the data, the model builders, the seed's run folder, and
/// <see cref="Train"/>, which runs one trainer job that resumes from its checkpoints when interrupted.
/// </summary>
public sealed class StageContext
{
    public StageContext(
        ExperimentConfig config,
        long seed,
        string seedDir,
        Device device,
        IExperimentDataset dataset,
        IProgress<TrainingProgress>? progress,
        IProgress<string>? log
    )
    {
        Config = config;
        Seed = seed;
        SeedDir = seedDir;
        Device = device;
        Dataset = dataset;
        Progress = progress;
        Log = log;
        TrainData = dataset.TrainSource(seed);
        ValidationData = dataset.ValidationSource();
        TestData = dataset.TestSource();
    }

    public ExperimentConfig Config { get; }
    public long Seed { get; }
    public string SeedDir { get; }
    public Device Device { get; }
    public IExperimentDataset Dataset { get; }
    public IBatchSource TrainData { get; }

    /// <summary>Every evaluation during training and every choice made on results.</summary>
    public IBatchSource ValidationData { get; }

    /// <summary>Scored once per finished network (<see cref="Test"/>).</summary>
    public IBatchSource TestData { get; }
    public IProgress<TrainingProgress>? Progress { get; }
    public IProgress<string>? Log { get; }

    public string StageDir(string stage) => Path.Combine(SeedDir, stage);

    /// <summary>
    /// The same seed folder, data and stage settings under another generator seed: its training batches are shuffled,
    /// its networks initialised and its runs seeded by <paramref name="seed"/> (a downstream fine-tuning seed).
    /// </summary>
    public StageContext WithSeed(long seed) =>
        seed == Seed
            ? this
            : new StageContext(Config, seed, SeedDir, Device, Dataset, Progress, Log) { StageSettings = StageSettings };

    /// <summary>Each planned stage's settings (<see cref="StageFingerprint"/>), by stage name; shared with the downstream context.</summary>
    public Dictionary<string, SortedDictionary<string, string>> StageSettings { get; init; } = [];

    /// <summary>
    /// The settings a trainer run of this seed records in its checkpoints and compares on resume: those of the stage
    /// whose folder holds <paramref name="runDir"/>.
    /// </summary>
    string RunSettings(string runDir)
    {
        var stage = Path.GetRelativePath(SeedDir, runDir).Split(Path.DirectorySeparatorChar)[0];
        return StageSettings.TryGetValue(stage, out var settings)
            ? ConfigLoader.FlatToYaml(settings)
            : throw new InvalidOperationException($"stage '{stage}' ({runDir}) was not planned");
    }

    /// <summary>A fresh model (thin, wide or deeper) initialised from the seed and <paramref name="key"/>, on the device.</summary>
    public StagedModel Build(string key)
    {
        var spec = Config.Models.Spec(key);
        manual_seed(InitSeed(Seed, key));
        var model = ModelFactory.Create(Dataset.ModelConfig(spec, key));
        return model.to(Device);
    }

    /// <summary>
    /// The generator seed of network <paramref name="key"/>'s initial weights under seed <paramref name="seed"/>: the
    /// first 8 bytes of SHA-256("SEED/KEY"), little-endian, top bit cleared. Same seed and key, same weights on every
    /// run, resume and process; every key gets its own, whatever its length.
    /// </summary>
    internal static long InitSeed(long seed, string key) =>
        BinaryPrimitives.ReadInt64LittleEndian(
            SHA256.HashData(Encoding.UTF8.GetBytes(FormattableString.Invariant($"{seed}/{key}")))
        ) & long.MaxValue;

    /// <summary>Settings for one run: the seed, and the experiment's step cap.</summary>
    public TrainerSettings Settings(TrainerSettings s)
    {
        var withSeed = s with { Seed = Seed };
        if (Config.MaxSteps <= 0)
            return withSeed;
        long budget = s.Steps > 0 ? s.Steps : (long)s.Epochs * TrainData.BatchesPerEpoch;
        return withSeed with { Steps = Math.Min(budget, Config.MaxSteps) };
    }

    /// <summary>
    /// Runs one trainer job in <paramref name="runDir"/>: from scratch, or resumed from its newest checkpoint when an
    /// earlier process was interrupted. The job's modules hold the full state, so resume is exact.
    /// </summary>
    public TrainingResult Train(
        string stage,
        string runDir,
        IReadOnlyDictionary<string, nn.Module> modules,
        IReadOnlyList<ParameterGroup> groups,
        ITrainingObjective objective,
        TrainerSettings settings,
        bool evaluate,
        IReadOnlyList<nn.Module>? evalOnly = null,
        CancellationToken cancel = default
    )
    {
        bool resume = Trainer.LatestCheckpoint(runDir) is not null;
        if (resume)
            Log?.Report($"{stage}: resuming from {Trainer.LatestCheckpoint(runDir)}");
        return Trainer.Run(
            new TrainingJob
            {
                Stage = stage,
                Modules = modules,
                ParameterGroups = groups,
                Objective = objective,
                Train = TrainData,
                Eval = evaluate ? ValidationData : null,
                Settings = Settings(settings),
                RunDir = runDir,
                Device = Device,
                EvalOnlyModules = evalOnly ?? [],
                Progress = Progress,
                Resume = resume,
                ConfigYaml = RunSettings(runDir),
                SettingDefault = ConfigLoader.DefaultOf<ExperimentConfig>,
            },
            cancel
        );
    }

    /// <summary>
    /// The finished network's test loss, top-1 and per-example correctness (classifiers), in eval mode: the one time
    /// the test split is read.
    /// </summary>
    public (double? Loss, double? Top1, bool[]? Correct) Test(StagedModel model)
    {
        bool training = model.training;
        model.eval();
        try
        {
            return Trainer.EvaluateExamples(Dataset.TaskObjective(model), TestData, Device);
        }
        finally
        {
            model.train(training);
        }
    }

    /// <summary>Loads the modules' final states from a finished run (its last checkpoint).</summary>
    public static void LoadFinal(TrainingResult result, IReadOnlyDictionary<string, nn.Module> modules)
    {
        var ckpt = result.LastCheckpoint ?? throw new WtnException($"{result.RunDir}: the run left no checkpoint");
        Trainer.LoadModules(ckpt, modules);
    }

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };
}
