using System.Diagnostics;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Data;

/// <summary>Loader speed next to the cost of one training step it feeds.</summary>
public sealed record LoaderBenchmarkResult(
    string Dataset,
    int BatchSize,
    int Threads,
    int LoaderBatches,
    double LoaderBatchesPerSecond,
    double AugmentedBatchesPerSecond,
    string Model,
    int Steps,
    double StepMilliseconds
)
{
    /// <summary>How many loader batches fit in the time of one training step (plain loader).</summary>
    public double Ratio => LoaderBatchesPerSecond * StepMilliseconds / 1000.0;
    public double AugmentedRatio => AugmentedBatchesPerSecond * StepMilliseconds / 1000.0;
}

/// <summary>
/// Measures <see cref="ImageBatchSource"/> alone (batches per second over whole epochs, plain and with crop+flip)
/// and one SGD training step (forward, backward, update) of a model on batches of the same shape.
/// The loader should be far faster than the step, so training never waits for data.
/// </summary>
public static class LoaderBenchmark
{
    public static LoaderBenchmarkResult Run(
        ImageDataset dataset,
        int batchSize,
        string model,
        int steps,
        Device device,
        IProgress<string>? progress = null
    )
    {
        progress?.Report($"loader: {dataset.Name} train, batch {batchSize}");
        double plain = BatchesPerSecond(
            dataset,
            new ImageLoaderOptions { BatchSize = batchSize, Seed = 1 },
            device,
            out int batches
        );
        progress?.Report($"loader: {plain:0} batches/s; with padded crop and flip");
        double augmented = BatchesPerSecond(
            dataset,
            new ImageLoaderOptions
            {
                BatchSize = batchSize,
                Seed = 1,
                CropPadding = 4,
                HorizontalFlip = true,
            },
            device,
            out _
        );
        progress?.Report($"loader: {augmented:0} batches/s augmented; timing {steps} training steps of {model}");
        double stepMs = StepMilliseconds(dataset, batchSize, model, steps, device);
        return new LoaderBenchmarkResult(
            dataset.Name,
            batchSize,
            get_num_threads(),
            batches,
            plain,
            augmented,
            model,
            steps,
            stepMs
        );
    }

    /// <summary>One untimed epoch to warm up, then the best of two timed epochs (the machine is shared; the best is the least disturbed).</summary>
    static double BatchesPerSecond(ImageDataset dataset, ImageLoaderOptions options, Device device, out int batches)
    {
        using var source = new ImageBatchSource(dataset, dataset.Train, options);
        batches = source.BatchesPerEpoch;
        double best = 0;
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var clock = Stopwatch.StartNew();
            foreach (var b in source.Epoch(epoch, device))
                b.Dispose();
            double rate = source.BatchesPerEpoch / clock.Elapsed.TotalSeconds;
            if (epoch > 0)
                best = Math.Max(best, rate);
        }
        return best;
    }

    /// <summary>Median milliseconds of one SGD step (momentum 0.9) after two warm-up steps, on real batches.</summary>
    static double StepMilliseconds(ImageDataset dataset, int batchSize, string model, int steps, Device device)
    {
        using var net = ModelFactory.Create(
            new ModelConfig
            {
                Name = model,
                InputChannels = dataset.Channels,
                ImageSize = dataset.Height,
                Classes = dataset.NumClasses,
            },
            device
        );
        net.train();
        using var sgd = optim.SGD(net.parameters(), learningRate: 0.05, momentum: 0.9);
        using var source = new ImageBatchSource(
            dataset,
            dataset.Train,
            new ImageLoaderOptions
            {
                BatchSize = batchSize,
                Seed = 2,
                DropLast = true,
            }
        );
        var times = new List<double>();
        foreach (var batch in source.Epoch(0, device).Take(steps + 2))
        {
            using var scope = NewDisposeScope();
            using (batch)
            {
                var clock = Stopwatch.StartNew();
                sgd.zero_grad();
                var loss = nn.functional.cross_entropy(net.call(batch.Input), batch.Labels);
                loss.backward();
                sgd.step();
                times.Add(clock.Elapsed.TotalMilliseconds);
            }
        }
        var timed = times.Skip(2).Order().ToList();
        return timed[timed.Count / 2];
    }
}
