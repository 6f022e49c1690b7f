using System.Diagnostics;
using TorchSharp;
using WideThenNarrow.Data;
using WideThenNarrow.Losses;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>One way of obtaining the thin network in one cell: its discrepancy at every point (bottom to top), validation top-1 with the wide head, steps and seconds.</summary>
public sealed record DepthArm(
    string Arm,
    IReadOnlyList<double> Discrepancy,
    double? ValTop1,
    long Steps,
    double Seconds
);

/// <summary>One seed at one depth: the wide network's validation top-1 and training time, and every arm.</summary>
public sealed record DepthCell(
    long Seed,
    int Depth,
    double? WideValTop1,
    double WideSeconds,
    IReadOnlyList<DepthArm> Arms
);

/// <summary>
/// The paper's depth claim (Zhou et al. 2020, sec. 4): under layerwise imitation the thin network's discrepancy from
/// the wide one grows about linearly with depth, under end-to-end training much faster. For every seed and depth L:
/// <list type="number">
/// <item>train the wide network B with the standard recipe;</item>
/// <item>obtain the thin network S from the same initial weights (a) by layerwise imitation, once per input mode
/// (teacher input is the theory's setting: every block learns from B's own input), each block for imitation.steps,
/// and (b) end to end, all of S trained to match B's top point for L x imitation.steps steps, the same total;</item>
/// <item>run S on its own (as deployed) on the validation split and measure at every point i the relative discrepancy
/// sum ||h_i^S - h_i^B||^2 / sum ||h_i^B||^2; the untrained S gives the scale.</item>
/// </list>
/// The MLPs are residual with inner widening: x + W2 relu(W1 x) with a hidden layer of K x width in B, the residual
/// stream of equal width in both. That is the mean-field residual network the theory analyses (the hidden neurons
/// are what "wide" multiplies), and thin and wide points have equal shapes, so the discrepancy needs no learned
/// adapter that would itself absorb part of it. This class trains and measures one (seed, depth) cell
/// (<see cref="Cell"/>); <c>Orchestration.DepthStudyRunner</c> runs the cells, resumes and writes the report.
/// </summary>
public sealed class DepthStudy
{
    public const string Untrained = "untrained";
    public const string EndToEnd = "end_to_end";

    public static string ImitationArm(ImitationInput input) => $"imitation_{input.ToString().ToLowerInvariant()}";

    readonly ExperimentConfig config;
    readonly DepthStudyConfig study;
    readonly IExperimentDataset dataset;
    readonly IBatchSource validation;
    readonly Device device;
    readonly IProgress<TrainingProgress>? progress;

    public DepthStudy(
        ExperimentConfig config,
        IExperimentDataset dataset,
        Device device,
        IProgress<TrainingProgress>? progress = null
    )
    {
        study = config.DepthStudy
            ?? throw new ArgumentException("the config has no depth_study section", nameof(config));
        Validate(config, study);
        this.config = config;
        this.dataset = dataset;
        validation = dataset.ValidationSource();
        this.device = device;
        this.progress = progress;
    }

    static void Validate(ExperimentConfig c, DepthStudyConfig s)
    {
        if (s.Depths.Count == 0 || s.Depths.Any(d => d < 1) || s.Depths.Distinct().Count() != s.Depths.Count)
            throw new WtnException(
                $"depth_study.depths must be distinct positive depths, got [{string.Join(", ", s.Depths)}]"
            );
        if (s.Inputs.Distinct().Count() != s.Inputs.Count)
            throw new WtnException("depth_study.inputs lists an input mode twice");
        if (s.Imitation.Steps <= 0)
            throw new WtnException(
                $"depth_study.imitation.steps must be positive (every block's budget), got {s.Imitation.Steps}"
            );
        if (s.EndToEnd.Steps != 0)
            throw new WtnException(
                "depth_study.end_to_end.steps: end to end trains depth x imitation.steps steps (the same total); leave it out"
            );
        if (s.EvalBatches < 0)
            throw new WtnException($"depth_study.eval_batches must be 0 (all) or more, got {s.EvalBatches}");
        foreach (var (key, spec) in new[] { ("thin", c.Models.Thin), ("wide", c.Models.Wide) })
            if (spec.Name.Trim().ToLowerInvariant() != "mlp")
                throw new WtnException(
                    $"models.{key}.name: the depth study sets an MLP's depth; got '{spec.Name}', expected mlp"
                );
        if (!Widening.Parse(c.Models.Thin.Widen, "models.thin.widen").IsIdentity)
            throw new WtnException("models.thin.widen: the thin network is the unwidened one (none)");
        // Equal point shapes: the discrepancy compares thin and wide points directly.
        if (
            Widening.Parse(c.Models.Wide.Widen, "models.wide.widen")
            is not { Kind: WideningKind.Inner, IsIdentity: false }
        )
            throw new WtnException(
                $"models.wide.widen: the depth study compares points of equal width, so the wide MLP is inner=K (K > 1); got '{c.Models.Wide.Widen}'"
            );
        if (c.Models.Thin.Width != c.Models.Wide.Width || !c.Models.Thin.Residual || !c.Models.Wide.Residual)
            throw new WtnException(
                "models.wide: the depth study needs residual MLPs (residual: true) of the same width, the wide one widened inside its blocks"
            );
    }

    /// <summary>
    /// One cell from its start, in <paramref name="dir"/> (runs/NAME/seed-S/depth-L): the wide network, every arm's
    /// thin network, and their discrepancies.
    /// </summary>
    public DepthCell Cell(long seed, int depth, IBatchSource train, string dir, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        using var wide = Build("wide", seed, depth);
        var wideRecipe =
            config.MaxSteps > 0
                ? study.Wide with
                {
                    Steps = Math.Min(
                        study.Wide.Steps > 0 ? study.Wide.Steps : (long)study.Wide.Epochs * train.BatchesPerEpoch,
                        config.MaxSteps
                    ),
                }
                : study.Wide;
        var wideRun = Fit(
            $"depth {depth}: wide",
            Path.Combine(dir, "wide"),
            wide,
            [ParameterGroup.Of("wide", wide)],
            dataset.TaskObjective(wide),
            wideRecipe,
            train,
            evaluate: true,
            [],
            seed,
            cancel
        );
        double wideSeconds = clock.Elapsed.TotalSeconds;

        var arms = new List<DepthArm>();
        using (var thin = Build("thin", seed, depth))
            arms.Add(Measure(Untrained, thin, wide, steps: 0, seconds: 0));
        foreach (var input in study.Inputs)
        {
            clock.Restart();
            using var thin = Build("thin", seed, depth);
            var li = new LayerwiseImitation(thin, wide, new ImitationOptions { Input = input });
            long steps = 0;
            for (int k = 0; k < li.UnitCount; k++)
            {
                var unit = li.Unit(k);
                steps += Fit(
                    $"depth {depth}: imitate ({input.ToString().ToLowerInvariant()}) {k + 1}/{li.UnitCount}",
                    Path.Combine(dir, ImitationArm(input), $"block-{k:D2}"),
                    thin,
                    unit.Groups,
                    unit.Objective,
                    study.Imitation with
                    {
                        Steps = PerBlockSteps,
                    },
                    train,
                    evaluate: false,
                    [wide],
                    seed,
                    cancel
                ).Steps;
            }
            li.Release();
            arms.Add(Measure(ImitationArm(input), thin, wide, steps, clock.Elapsed.TotalSeconds));
        }
        arms.Add(EndToEndArm(dir, seed, depth, wide, train, cancel));
        return new DepthCell(seed, depth, wideRun.Last?.EvalTop1, wideSeconds, arms);
    }

    /// <summary>All of the thin network trained to match the wide top point for depth x the per-block steps.</summary>
    DepthArm EndToEndArm(
        string dir,
        long seed,
        int depth,
        StagedModel wide,
        IBatchSource train,
        CancellationToken cancel
    )
    {
        var clock = Stopwatch.StartNew();
        using var thin = Build("thin", seed, depth);
        var r = Fit(
            $"depth {depth}: end to end",
            Path.Combine(dir, EndToEnd),
            thin,
            [ParameterGroup.Of("thin", thin)],
            new TopPointMatching(thin, wide),
            study.EndToEnd with
            {
                Steps = depth * PerBlockSteps,
            },
            train,
            evaluate: false,
            [wide],
            seed,
            cancel
        );
        return Measure(EndToEnd, thin, wide, r.Steps, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Each block's budget: imitation.steps, under the experiment's step cap (smoke runs).</summary>
    long PerBlockSteps =>
        config.MaxSteps > 0 ? Math.Min(study.Imitation.Steps, config.MaxSteps) : study.Imitation.Steps;

    /// <summary>Thin and wide MLPs of this depth; every arm's thin network starts from the same weights (same seed).</summary>
    StagedModel Build(string key, long seed, int depth)
    {
        manual_seed(StageContext.InitSeed(seed, $"depth-{depth}/{key}"));
        var spec = config.Models.Spec(key) with { Depth = depth };
        return ModelFactory.Create(dataset.ModelConfig(spec, key)).to(device);
    }

    TrainingResult Fit(
        string stage,
        string runDir,
        StagedModel model,
        IReadOnlyList<ParameterGroup> groups,
        ITrainingObjective objective,
        Config.TrainerSettings settings,
        IBatchSource train,
        bool evaluate,
        IReadOnlyList<nn.Module> teachers,
        long seed,
        CancellationToken cancel
    )
    {
        Directory.CreateDirectory(runDir);
        return Trainer.Run(
            new TrainingJob
            {
                Stage = stage,
                Modules = new Dictionary<string, nn.Module> { ["model"] = model },
                ParameterGroups = groups,
                Objective = objective,
                Train = train,
                Eval = evaluate ? validation : null,
                Settings = settings with { Seed = seed },
                RunDir = runDir,
                Device = device,
                EvalOnlyModules = teachers,
                Progress = progress,
            },
            cancel
        );
    }

    /// <summary>The arm's discrepancy at every point and, with the wide head copied (equal shapes), its validation top-1.</summary>
    DepthArm Measure(string arm, StagedModel thin, StagedModel wide, long steps, double seconds)
    {
        HeadTransfer.CopyIfShapesMatch(wide, thin);
        thin.eval();
        wide.eval();
        var discrepancy = Discrepancy(thin, wide, validation, device, study.EvalBatches);
        var (_, top1) = Trainer.Evaluate(dataset.TaskObjective(thin), validation, device);
        return new DepthArm(arm, discrepancy, top1, steps, seconds);
    }

    /// <summary>
    /// sum over examples of ||h_i^S - h_i^B||^2 over sum of ||h_i^B||^2, at every point i, each network run on its own
    /// from the input (the first <paramref name="batches"/> batches of <paramref name="data"/>, 0 = all).
    /// </summary>
    public static double[] Discrepancy(
        StagedModel thin,
        StagedModel wide,
        IBatchSource data,
        Device device,
        int batches = 0
    )
    {
        if (thin.BlockCount != wide.BlockCount)
            throw new ArgumentException("thin and wide networks need the same points");
        var squaredError = new double[thin.BlockCount];
        var squaredNorm = new double[thin.BlockCount];
        data.ForEachNoGrad(
            device,
            (batch, _) =>
            {
                var s = thin.ForwardPoints(batch.Input, thin.BlockCount - 1);
                var b = wide.ForwardPoints(batch.Input, wide.BlockCount - 1);
                for (int i = 0; i < s.Length; i++)
                {
                    squaredError[i] += (s[i] - b[i]).square().sum().ToDouble();
                    squaredNorm[i] += b[i].square().sum().ToDouble();
                }
            },
            batches > 0 ? batches : int.MaxValue
        );
        return squaredError.Zip(squaredNorm, (e, n) => e / n).ToArray();
    }

    /// <summary>End to end: all of S learns to reproduce B's top point, MSE(h_L^S, h_L^B); B under no_grad in eval mode.</summary>
    sealed class TopPointMatching(StagedModel thin, StagedModel wide) : ITrainingObjective
    {
        public ObjectiveOutput Compute(Batch batch, bool training)
        {
            wide.eval();
            Tensor target;
            using (no_grad())
                target = wide.ForwardTrunk(batch.Input);
            var loss = ImitationLoss.Mse(
                thin.ForwardTrunk(batch.Input),
                target,
                thin.Points[^1].Layout,
                normalize: false
            );
            return new ObjectiveOutput(loss, Parts: new Dictionary<string, Tensor> { ["mse"] = loss });
        }
    }
}
