using System.Diagnostics;
using TorchSharp;
using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>Milliseconds per training step: median, mean and min over the timed steps.</summary>
public sealed record StepTiming(string Path, int Steps, double MedianMs, double MeanMs, double MinMs);

/// <summary>
/// Times SGD training steps on one fixed random batch: the bare step (forward, cross-entropy, backward, SGD
/// update, loss.item(): what the PyTorch peer's bench does) and the same step through <see cref="Trainer"/>
/// (adds schedule, top-1 counting, progress events), so the trainer's own overhead is visible.
/// </summary>
public static class StepBenchmark
{
    public static StepTiming Bare(nn.Module<ModelInput, Tensor> model, long[] inputShape, int classes, int warmup, int steps, Device device)
    {
        manual_seed(0);
        using var x = randn(inputShape, device: device);
        using var y = randint(0, classes, [inputShape[0]], device: device);
        var input = new ModelInput(x);
        using var opt = optim.SGD(model.parameters(), 0.1, momentum: 0.9, weight_decay: 5e-4);
        model.train();
        var times = new double[steps];
        for (int i = 0; i < warmup + steps; i++)
        {
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                opt.zero_grad();
                var loss = nn.functional.cross_entropy(model.call(input), y);
                loss.backward();
                opt.step();
                _ = loss.ToDouble();
            }
            if (i >= warmup) times[i - warmup] = clock.Elapsed.TotalMilliseconds;
        }
        return Summarise("bare step", times);
    }

    public static StepTiming ThroughTrainer(nn.Module<ModelInput, Tensor> model, long[] inputShape, int classes, int warmup, int steps, Device device, string runDir)
    {
        manual_seed(0);
        using var source = new FixedBatchSource(randn(inputShape, device: device), randint(0, classes, [inputShape[0]], device: device), warmup + steps);
        var stamps = new List<double>(warmup + steps + 1);
        var clock = Stopwatch.StartNew();
        var sink = new StampSink(stamps, clock);
        if (Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true);
        stamps.Add(0);
        Trainer.Run(new TrainingJob
        {
            Stage = "bench",
            Modules = new Dictionary<string, nn.Module> { ["model"] = model },
            ParameterGroups = [ParameterGroup.Of("model", model)],
            Objective = new ClassificationObjective(model),
            Train = source,
            Settings = new TrainerSettings
            {
                Optimizer = new OptimizerConfig { Lr = 0.1, Momentum = 0.9, WeightDecay = 5e-4 },
                Schedule = new ScheduleConfig { Name = ScheduleKind.Constant },
                Steps = warmup + steps,
                Checkpoint = new CheckpointConfig { EverySteps = 0 },
                Logging = new LoggingConfig { EverySteps = 0, Tensorboard = false },
            },
            RunDir = runDir,
            Device = device,
            Progress = sink,
        });
        Directory.Delete(runDir, recursive: true);
        var times = Enumerable.Range(warmup + 1, steps).Select(i => stamps[i] - stamps[i - 1]).ToArray();
        return Summarise("trainer step", times);
    }

    static StepTiming Summarise(string path, double[] ms)
    {
        var sorted = ms.OrderBy(t => t).ToArray();
        return new StepTiming(path, ms.Length, sorted[sorted.Length / 2], ms.Average(), sorted[0]);
    }

    sealed class StampSink(List<double> stamps, Stopwatch clock) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.Kind == TrainingEventKind.Step) stamps.Add(clock.Elapsed.TotalMilliseconds);
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
            for (int b = skipBatches; b < batches; b++) yield return new Batch(new ModelInput(x.alias()), y.alias());
        }

        public void Dispose()
        {
            x.Dispose();
            y.Dispose();
        }
    }
}
