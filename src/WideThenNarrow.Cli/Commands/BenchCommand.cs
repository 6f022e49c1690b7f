using System.CommandLine;
using System.Text.Json;
using WideThenNarrow.Data;

namespace WideThenNarrow.Cli.Commands;

/// <summary><c>wtn bench loader</c>: speed measurements (hidden from the verb list: a developer tool).</summary>
public static class BenchCommand
{
    public static Command Build(GlobalOptions g)
    {
        var cmd = new Command("bench", "Benchmarks for developers") { Hidden = true };
        cmd.Add(BuildLoader(g));
        return cmd;
    }

    static Command BuildLoader(GlobalOptions g)
    {
        var dataset = new Option<string>("--dataset") { Description = "Image dataset (fashion-mnist, cifar-10, ...)", DefaultValueFactory = _ => "fashion-mnist" };
        var batch = new Option<int>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 128 };
        var model = new Option<string>("--model") { Description = "Model whose training step is timed", DefaultValueFactory = _ => "cifar-resnet20" };
        var steps = new Option<int>("--steps") { Description = "Timed training steps", DefaultValueFactory = _ => 10 };
        var json = new Option<bool>("--json") { Description = "Print as JSON" };
        var cmd = new Command("loader", "Batches/s of the image loader alone versus the time of one training step (forward, backward, SGD)");
        cmd.Add(dataset);
        cmd.Add(batch);
        cmd.Add(model);
        cmd.Add(steps);
        cmd.Add(json);
        cmd.SetAction(g.Handler((parse, ctx, _) =>
        {
            if (parse.GetValue(steps) < 1) throw new WtnException("--steps must be at least 1");
            using var ds = ImageDataset.Load(parse.GetValue(dataset)!, ctx.DataDir);
            bool asJson = parse.GetValue(json);
            var r = LoaderBenchmark.Run(ds, parse.GetValue(batch), parse.GetValue(model)!, parse.GetValue(steps), ctx.Device,
                asJson ? null : new LineProgress(Console.Error));
            if (asJson)
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    r.Dataset, r.BatchSize, r.Threads, r.LoaderBatches, r.LoaderBatchesPerSecond, r.AugmentedBatchesPerSecond,
                    r.Model, r.Steps, r.StepMilliseconds, r.Ratio, r.AugmentedRatio,
                }, JsonOutput.Options));
                return Task.FromResult(0);
            }
            Console.WriteLine($"loader   {r.Dataset} train, batch {r.BatchSize}, {r.Threads} threads: {r.LoaderBatchesPerSecond:0} batches/s ({1000 / r.LoaderBatchesPerSecond:0.00} ms/batch); with crop+flip {r.AugmentedBatchesPerSecond:0} batches/s ({1000 / r.AugmentedBatchesPerSecond:0.00} ms/batch)");
            Console.WriteLine($"step     {r.Model} forward+backward+SGD, batch {r.BatchSize}: {r.StepMilliseconds:0.0} ms (median of {r.Steps})");
            Console.WriteLine($"ratio    the loader is {r.Ratio:0}x faster than a step ({r.AugmentedRatio:0}x with crop+flip)");
            return Task.FromResult(0);
        }));
        return cmd;
    }
}
