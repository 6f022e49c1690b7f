using System.Diagnostics;
using TorchSharp;
using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>
/// Milliseconds per training step over the timed steps: wall-clock median, mean and min, and the median of the
/// process CPU time per step (user + system), which stays comparable on a machine shared with other jobs, and the
/// process's minor page faults per timed step (null off Linux): a step that re-faults its buffers shows it here.
/// </summary>
public sealed record StepTiming(
    string Path,
    int Steps,
    double MedianMs,
    double MeanMs,
    double MinMs,
    double CpuMedianMs,
    double? FaultsPerStep
);

/// <summary>
/// Times SGD training steps on one fixed random batch: the bare step (forward, cross-entropy, backward, SGD
/// update, loss.item(): what the PyTorch peer's bench does) and the same step through <see cref="Trainer"/>
/// (adds schedule, top-1 counting, progress events), so the trainer's own overhead is visible.
/// </summary>
public static class StepBenchmark
{
    public static StepTiming Bare(
        nn.Module<ModelInput, Tensor> model,
        long[] inputShape,
        int classes,
        int warmup,
        int steps,
        Device device
    )
    {
        manual_seed(0);
        using var x = randn(inputShape, device: device);
        using var y = randint(0, classes, [inputShape[0]], device: device);
        var input = new ModelInput(x);
        using var opt = optim.SGD(model.parameters(), 0.1, momentum: 0.9, weight_decay: 5e-4);
        model.train();
        return TimeSteps(opt, () => nn.functional.cross_entropy(model.call(input), y), warmup, steps);
    }

    /// <summary>
    /// A BERT masked-LM step on random token ids, every position attended; AdamW update, loss.item(). In eval mode, so
    /// without dropout (the PyTorch peer's BERT has none); the gradients and the update are those of training. With
    /// <paramref name="masked"/> null every position is scored against a random label through the full logits (the
    /// "bare step", as the peer does it); otherwise that share of positions is labelled (the rest -100) and the loss
    /// is <see cref="MaskedLmObjective"/>'s, whose head runs on the labelled positions only (the "objective" step).
    /// </summary>
    public static StepTiming MaskedLm(
        StagedModel model,
        int batch,
        int sequence,
        int vocab,
        double? masked,
        int warmup,
        int steps,
        Device device
    )
    {
        manual_seed(0);
        using var ids = randint(0, vocab, [batch, sequence], dtype: ScalarType.Int64, device: device);
        using var mask = ones([batch, sequence], ScalarType.Int64, device);
        using var types = zeros([batch, sequence], ScalarType.Int64, device);
        using var random = randint(0, vocab, [batch, sequence], dtype: ScalarType.Int64, device: device);
        var input = new ModelInput(ids, mask, types);
        using var opt = optim.AdamW(model.parameters(), 1e-4, weight_decay: 0.01);
        model.eval();
        if (masked is not { } share)
            return TimeSteps(
                opt,
                () => nn.functional.cross_entropy(model.call(input).flatten(0, 1), random.flatten()),
                warmup,
                steps
            );
        using var picked = rand([batch, sequence], device: device).lt(share);
        using var labels = random.masked_fill(picked.logical_not(), MaskedLmObjective.IgnoreIndex);
        var data = new Batch(input, labels);
        var objective = new MaskedLmObjective(model);
        return TimeSteps(opt, () => objective.Compute(data, training: true).Loss, warmup, steps) with
        {
            Path = "objective",
        };
    }

    static StepTiming TimeSteps(optim.Optimizer opt, Func<Tensor> lossOfBatch, int warmup, int steps)
    {
        var times = new double[steps];
        var cpu = new double[steps];
        long? faults0 = null;
        for (int i = 0; i < warmup + steps; i++)
        {
            if (i == warmup)
                faults0 = Runtime.NativeAllocator.MinorPageFaults();
            var cpu0 = CpuMs();
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                opt.zero_grad();
                var loss = lossOfBatch();
                loss.backward();
                opt.step();
                _ = loss.ToDouble();
            }
            if (i < warmup)
                continue;
            times[i - warmup] = clock.Elapsed.TotalMilliseconds;
            cpu[i - warmup] = CpuMs() - cpu0;
        }
        return Summarise("bare step", times, cpu, PerStep(faults0, Runtime.NativeAllocator.MinorPageFaults(), steps));
    }

    public static StepTiming ThroughTrainer(
        nn.Module<ModelInput, Tensor> model,
        long[] inputShape,
        int classes,
        int warmup,
        int steps,
        Device device,
        string runDir
    )
    {
        manual_seed(0);
        using var source = new FixedBatchSource(
            randn(inputShape, device: device),
            randint(0, classes, [inputShape[0]], device: device),
            warmup + steps
        );
        var stamps = new List<(double Wall, double Cpu, long? Faults)>(warmup + steps + 1);
        var clock = Stopwatch.StartNew();
        var sink = new StampSink(stamps, clock);
        if (Directory.Exists(runDir))
            Directory.Delete(runDir, recursive: true);
        stamps.Add((0, CpuMs(), Runtime.NativeAllocator.MinorPageFaults()));
        Trainer.Run(
            new TrainingJob
            {
                Stage = "bench",
                Modules = new Dictionary<string, nn.Module> { ["model"] = model },
                ParameterGroups = [ParameterGroup.Of("model", model)],
                Objective = new ClassificationObjective(model),
                Train = source,
                Settings = new TrainerSettings
                {
                    Optimizer = new OptimizerConfig
                    {
                        Lr = 0.1,
                        Momentum = 0.9,
                        WeightDecay = 5e-4,
                    },
                    Schedule = new ScheduleConfig { Name = ScheduleKind.Constant },
                    Steps = warmup + steps,
                    Checkpoint = new CheckpointConfig { EverySteps = 0 },
                    Logging = new LoggingConfig { EverySteps = 0, Tensorboard = false },
                },
                RunDir = runDir,
                Device = device,
                Progress = sink,
            }
        );
        Directory.Delete(runDir, recursive: true);
        var timed = Enumerable.Range(warmup + 1, steps).ToArray();
        return Summarise(
            "trainer step",
            timed.Select(i => stamps[i].Wall - stamps[i - 1].Wall).ToArray(),
            timed.Select(i => stamps[i].Cpu - stamps[i - 1].Cpu).ToArray(),
            PerStep(stamps[warmup].Faults, stamps[^1].Faults, steps)
        );
    }

    static double CpuMs() => Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;

    static double Median(double[] xs) => xs.OrderBy(t => t).ElementAt(xs.Length / 2);

    static double? PerStep(long? before, long? after, int steps) =>
        before is { } b && after is { } a ? (double)(a - b) / steps : null;

    static StepTiming Summarise(string path, double[] ms, double[] cpuMs, double? faultsPerStep) =>
        new(path, ms.Length, Median(ms), ms.Average(), ms.Min(), Median(cpuMs), faultsPerStep);

    sealed class StampSink(List<(double Wall, double Cpu, long? Faults)> stamps, Stopwatch clock)
        : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.Kind == TrainingEventKind.Step)
                stamps.Add((clock.Elapsed.TotalMilliseconds, CpuMs(), Runtime.NativeAllocator.MinorPageFaults()));
        }
    }

    /// <summary>The same batch <paramref name="batches"/> times per epoch (copies are cheap views).</summary>
    sealed class FixedBatchSource(Tensor x, Tensor y, int batches) : IBatchSource, IDisposable
    {
        public int Count => (int)x.shape[0] * batches;
        public int BatchSize => (int)x.shape[0];
        public int BatchesPerEpoch => batches;

        public IEnumerable<Batch> Epoch(int epoch, Device device, int skipBatches = 0)
        {
            for (int b = skipBatches; b < batches; b++)
                yield return new Batch(new ModelInput(x.alias()), y.alias());
        }

        public void Dispose()
        {
            x.Dispose();
            y.Dispose();
        }
    }
}
