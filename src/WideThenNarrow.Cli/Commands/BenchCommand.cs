using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using WideThenNarrow.Training;

namespace WideThenNarrow.Cli.Commands;

/// <summary><c>wtn bench loader</c>, <c>wtn bench train-step</c>: speed measurements (hidden from the verb list: a developer tool).</summary>
public static class BenchCommand
{
    public static Command Build(GlobalOptions g)
    {
        var cmd = new Command("bench", "Benchmarks for developers") { Hidden = true };
        cmd.Add(BuildLoader(g));
        cmd.Add(BuildTrainStep(g));
        cmd.Add(BuildInference(g));
        return cmd;
    }

    static Command BuildInference(GlobalOptions g)
    {
        var targets = new Argument<string[]>("targets")
        {
            Description =
                "Exported networks' manifests (NAME.json), or an experiment file (YAML): its thin, wide and deeper networks",
            Arity = ArgumentArity.OneOrMore,
        };
        var batches = new Option<int[]>("--batch")
        {
            Description = "Batch sizes (repeatable)",
            DefaultValueFactory = _ => [1, 64],
            AllowMultipleArgumentsPerToken = false,
        };
        var repeats = new Option<int>("--repeats")
        {
            Description = "Timed passes per engine and batch size (after 3 untimed), alternated between the engines",
            DefaultValueFactory = _ => 100,
        };
        var seq = new Option<int>("--seq")
        {
            Description = "Text networks: tokens per example",
            DefaultValueFactory = _ => 128,
        };
        var json = new Option<bool>("--json") { Description = "Print as JSON" };
        var cmd = new Command(
            "inference",
            "Serving latency: milliseconds per eval-mode forward pass in TorchSharp eager mode and in ONNX Runtime, side by side (alternated passes, median and 10th-90th percentiles)"
        );
        cmd.Add(targets);
        var allowOutside = EvalCommand.AllowOutside();
        foreach (var o in new Option[] { batches, repeats, seq, json, allowOutside })
            cmd.Add(o);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, _) =>
                {
                    int n = parse.GetValue(repeats),
                        t = parse.GetValue(seq);
                    if (n < 1 || t < 1)
                        throw new WtnException("bench inference: --repeats and --seq must be positive");
                    var sizes = parse.GetValue(batches)!;
                    if (sizes.FirstOrDefault(b => b < 1) is var bad and not 0)
                        throw new WtnException($"--batch must be positive, got {bad}");
                    if (ctx.Device.type != TorchSharp.DeviceType.CPU)
                        throw new WtnException("bench inference compares CPU runtimes; leave --device out");
                    var results = new List<Serving.InferenceComparison>();
                    foreach (var target in parse.GetValue(targets)!)
                    {
                        TorchSharp.torch.manual_seed(0);
                        if (Path.GetExtension(target).ToLowerInvariant() is ".yaml" or ".yml")
                        {
                            var config = Method.HuggingFaceImport.Resolve(
                                Config.ConfigLoader.Load<Method.ExperimentConfig>(target)
                            );
                            using var dataset = Method.ExperimentDatasets.Load(config.Data, ctx.DataDir);
                            foreach (var (key, spec) in Reporting.ModelCost.Networks(config))
                            {
                                using var model = ModelFactory.Create(dataset.ModelConfig(spec, key));
                                results.Add(
                                    Serving.InferenceBench.Compare(
                                        $"{config.Name} {key}: {spec.Name} ({spec.Widen})",
                                        model,
                                        dataset.ExampleInput,
                                        sizes,
                                        n
                                    )
                                );
                            }
                            continue;
                        }
                        var m = ModelExport.Verify(target, parse.GetValue(allowOutside));
                        using var exported = ModelExport.Load(target, ctx.Device, parse.GetValue(allowOutside));
                        Func<int, TorchSharp.torch.Device, ModelInput> example =
                            m.Input.Kind == "image"
                                ? (b, d) =>
                                    new ModelInput(
                                        TorchSharp.torch.randn([b, .. m.Input.Shape!.Select(x => (long)x)], device: d)
                                    )
                                : (b, d) =>
                                    Method.MaskedLmExperimentDataset.TokenInput(
                                        b,
                                        t,
                                        (int)((JsonElement)m.Model["vocab_size"]!).GetInt32(),
                                        d
                                    );
                        // The export's own graph when it has one, as wtn predict would run it.
                        using var graph = m.Onnx is null
                            ? null
                            : new Export.OnnxSession(
                                Serving.Predictor.OnnxPath(target, m),
                                TorchSharp.torch.get_num_threads()
                            );
                        results.Add(
                            Serving.InferenceBench.Compare(
                                $"{Path.GetFileName(target)}: {m.Model["name"]} ({m.Model["widen"]})",
                                exported,
                                example,
                                sizes,
                                n,
                                graph
                            )
                        );
                    }
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(results, JsonOutput.Options));
                        return Task.FromResult(0);
                    }
                    var table = new Table()
                        .Border(TableBorder.Rounded)
                        .AddColumns(
                            "network",
                            "batch",
                            "TorchSharp eager ms",
                            "ONNX Runtime ms",
                            "ONNX Runtime speed-up"
                        );
                    foreach (var c in table.Columns.Skip(1))
                        c.RightAligned();
                    static string Ms(Serving.EngineLatency l) => $"{l.MedianMs:F3} ({l.P10Ms:F3}-{l.P90Ms:F3})";
                    foreach (var r in results)
                    foreach (var b in sizes)
                    {
                        var torch = r.Latencies.Single(l => l.Engine == Serving.InferenceBench.Torch && l.Batch == b);
                        var onnx = r.Latencies.Single(l => l.Engine == Serving.InferenceBench.Onnx && l.Batch == b);
                        table.AddRow(
                            Markup.Escape(r.Network),
                            b.ToString(System.Globalization.CultureInfo.InvariantCulture),
                            Ms(torch),
                            Ms(onnx),
                            $"{r.Speedup(b):F2}x"
                        );
                    }
                    AnsiConsole.Write(table);
                    Console.WriteLine(
                        $"median (10th-90th percentile) of {n} passes per engine, alternated, {TorchSharp.torch.get_num_threads()} thread(s) each"
                    );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    static Command BuildLoader(GlobalOptions g)
    {
        var dataset = new Option<string>("--dataset")
        {
            Description = "Image dataset (fashion-mnist, cifar-10, ...)",
            DefaultValueFactory = _ => "fashion-mnist",
        };
        var batch = new Option<int>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 128 };
        var model = new Option<string>("--model")
        {
            Description = "Model whose training step is timed",
            DefaultValueFactory = _ => "cifar-resnet20",
        };
        var steps = new Option<int>("--steps") { Description = "Timed training steps", DefaultValueFactory = _ => 10 };
        var json = new Option<bool>("--json") { Description = "Print as JSON" };
        var cmd = new Command(
            "loader",
            "Batches/s of the image loader alone versus the time of one training step (forward, backward, SGD)"
        );
        cmd.Add(dataset);
        cmd.Add(batch);
        cmd.Add(model);
        cmd.Add(steps);
        cmd.Add(json);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, _) =>
                {
                    if (parse.GetValue(steps) < 1)
                        throw new WtnException("--steps must be at least 1");
                    using var ds = ImageDataset.Load(parse.GetValue(dataset)!, ctx.DataDir);
                    bool asJson = parse.GetValue(json);
                    var r = LoaderBenchmark.Run(
                        ds,
                        parse.GetValue(batch),
                        parse.GetValue(model)!,
                        parse.GetValue(steps),
                        ctx.Device,
                        asJson ? null : new LineProgress(Console.Error)
                    );
                    if (asJson)
                    {
                        Console.WriteLine(
                            JsonSerializer.Serialize(
                                new
                                {
                                    r.Dataset,
                                    r.BatchSize,
                                    r.Threads,
                                    r.LoaderBatches,
                                    r.LoaderBatchesPerSecond,
                                    r.AugmentedBatchesPerSecond,
                                    r.Model,
                                    r.Steps,
                                    r.StepMilliseconds,
                                    r.Ratio,
                                    r.AugmentedRatio,
                                },
                                JsonOutput.Options
                            )
                        );
                        return Task.FromResult(0);
                    }
                    Console.WriteLine(
                        $"loader   {r.Dataset} train, batch {r.BatchSize}, {r.Threads} threads: {r.LoaderBatchesPerSecond:0} batches/s ({1000 / r.LoaderBatchesPerSecond:0.00} ms/batch); with crop+flip {r.AugmentedBatchesPerSecond:0} batches/s ({1000 / r.AugmentedBatchesPerSecond:0.00} ms/batch)"
                    );
                    Console.WriteLine(
                        $"step     {r.Model} forward+backward+SGD, batch {r.BatchSize}: {r.StepMilliseconds:0.0} ms (median of {r.Steps})"
                    );
                    Console.WriteLine(
                        $"ratio    the loader is {r.Ratio:0}x faster than a step ({r.AugmentedRatio:0}x with crop+flip)"
                    );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    static long PeakRssMb()
    {
        using var me = System.Diagnostics.Process.GetCurrentProcess();
        return me.PeakWorkingSet64 >> 20;
    }

    /// <summary>bench/train_step.py --model bert is the PyTorch side: the same sizes, batch and step.</summary>
    static int BertStep(
        string name,
        int batch,
        int layers,
        int hidden,
        int heads,
        int intermediate,
        int seq,
        int vocab,
        Widening widen,
        HeadWidening widenHeads,
        double? masked,
        int warmup,
        int steps,
        RunContext ctx
    )
    {
        if (new[] { layers, hidden, heads, intermediate, seq, vocab }.Any(v => v <= 0))
            throw new WtnException(
                "bench train-step: --layers, --hidden, --heads, --intermediate, --seq and --vocab must be positive"
            );
        if (masked is <= 0 or > 1)
            throw new WtnException($"bench train-step: --masked must be in (0, 1], got {masked}");
        // Plain "bert" takes the sizes given; a preset (bert-tiny..large) its own, with the given vocabulary and length.
        var cfg = new ModelConfig
        {
            Name = name,
            Vocab = vocab,
            MaxPositions = seq,
            Head = BertHead.MaskedLm,
            Widen = widen,
            WidenHeads = widenHeads,
        };
        if (name == "bert")
            cfg = cfg with { Layers = layers, Hidden = hidden, Heads = heads, Intermediate = intermediate };
        TorchSharp.torch.manual_seed(0);
        using var model = ModelFactory.Create(cfg, ctx.Device);
        var sizes =
            (name == "bert" ? $"bert L{layers} H{hidden} A{heads} I{intermediate}" : name)
            + (widen.IsIdentity ? "" : $" widened {widen} (heads: {widenHeads.ToString().ToLowerInvariant()})");
        var timings = new List<(StepTiming T, string What)>
        {
            (StepBenchmark.MaskedLm(model, batch, seq, vocab, null, warmup, steps, ctx.Device), "masked-LM"),
        };
        if (masked is { } share)
        {
            TorchSharp.torch.manual_seed(0);
            using var again = ModelFactory.Create(cfg, ctx.Device);
            timings.Add(
                (
                    StepBenchmark.MaskedLm(again, batch, seq, vocab, share, warmup, steps, ctx.Device),
                    $"masked-LM {share:P0} masked"
                )
            );
        }
        foreach (var (t, what) in timings)
            Console.WriteLine(
                $"torchsharp {t.Path, -12} {sizes} {what} vocab {vocab} seq {seq} batch {batch} threads {TorchSharp.torch.get_num_threads()}: median {t.MedianMs:F1} ms/step (mean {t.MeanMs:F1}, min {t.MinMs:F1}, {t.Steps} steps), cpu {t.CpuMedianMs:F1} ms/step, {(t.FaultsPerStep is { } f ? $"{f:F0}" : "n/a")} page faults/step, peak RSS {PeakRssMb()} MB"
            );
        return 0;
    }

    static Command BuildTrainStep(GlobalOptions g)
    {
        var model = new Option<string>("--model")
        {
            Description = "Zoo model",
            DefaultValueFactory = _ => "cifar-resnet20",
        };
        var channels = new Option<int>("--channels") { Description = "Input channels", DefaultValueFactory = _ => 3 };
        var size = new Option<int>("--size") { Description = "Input height = width", DefaultValueFactory = _ => 32 };
        var batch = new Option<int>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 128 };
        var classes = new Option<int>("--classes") { Description = "Classes", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first", DefaultValueFactory = _ => 3 };
        var steps = new Option<int>("--steps") { Description = "Timed steps", DefaultValueFactory = _ => 20 };
        var layers = new Option<int>("--layers")
        {
            Description = "BERT (--model bert): encoder layers",
            DefaultValueFactory = _ => 4,
        };
        var hidden = new Option<int>("--hidden") { Description = "BERT: hidden size", DefaultValueFactory = _ => 128 };
        var heads = new Option<int>("--heads") { Description = "BERT: attention heads", DefaultValueFactory = _ => 2 };
        var intermediate = new Option<int>("--intermediate")
        {
            Description = "BERT: feed-forward size",
            DefaultValueFactory = _ => 512,
        };
        var seq = new Option<int>("--seq")
        {
            Description = "BERT: tokens per sequence",
            DefaultValueFactory = _ => 128,
        };
        var vocab = new Option<int>("--vocab")
        {
            Description = "BERT: vocabulary size",
            DefaultValueFactory = _ => 8000,
        };
        var widen = new Option<string>("--widen")
        {
            Description = "BERT: widening of the timed network (inner=K or full=K)",
            DefaultValueFactory = _ => "none",
        };
        var widenHeads = new Option<HeadWidening>("--widen-heads")
        {
            Description = "BERT, inner widening: widen each head's size or multiply the head count",
            DefaultValueFactory = _ => HeadWidening.Size,
        };
        var maskedShare = new Option<double?>("--masked")
        {
            Description =
                "BERT: also time the training objective's step with this share of positions masked (e.g. 0.15), its head on those only",
        };
        var cmd = new Command(
            "train-step",
            "Milliseconds per training step on a random batch: an image model's SGD step, bare and through the trainer; a BERT masked-LM AdamW step (--model bert or bert-tiny..large), bare"
        );
        foreach (
            var o in new Option[]
            {
                model,
                channels,
                size,
                batch,
                classes,
                warmup,
                steps,
                layers,
                hidden,
                heads,
                intermediate,
                seq,
                vocab,
                widen,
                widenHeads,
                maskedShare,
            }
        )
            cmd.Add(o);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, _) =>
                {
                    int b = parse.GetValue(batch),
                        c = parse.GetValue(channels),
                        s = parse.GetValue(size),
                        k = parse.GetValue(classes);
                    int w = parse.GetValue(warmup),
                        n = parse.GetValue(steps);
                    if (b <= 0 || c <= 0 || s <= 0 || k <= 0 || w < 0 || n <= 0)
                        throw new WtnException(
                            "bench train-step: --batch, --channels, --size, --classes and --steps must be positive"
                        );
                    var cfg = new ModelConfig
                    {
                        Name = parse.GetValue(model)!,
                        InputChannels = c,
                        Classes = k,
                        ImageSize = s,
                    };
                    if (cfg.Name.StartsWith("bert", StringComparison.OrdinalIgnoreCase))
                        return Task.FromResult(
                            BertStep(
                                cfg.Name,
                                b,
                                parse.GetValue(layers),
                                parse.GetValue(hidden),
                                parse.GetValue(heads),
                                parse.GetValue(intermediate),
                                parse.GetValue(seq),
                                parse.GetValue(vocab),
                                Widening.Parse(parse.GetValue(widen)!),
                                parse.GetValue(widenHeads),
                                parse.GetValue(maskedShare),
                                w,
                                n,
                                ctx
                            )
                        );
                    long[] shape = [b, c, s, s];
                    var label = $"{cfg.Name} {c}x{s}x{s} batch {b} threads {TorchSharp.torch.get_num_threads()}";
                    TorchSharp.torch.manual_seed(0);
                    var bare = StepBenchmark.Bare(ModelFactory.Create(cfg, ctx.Device), shape, k, w, n, ctx.Device);
                    // The process's peak resident memory (VmHWM) after the bare steps, as bench/train_step.py reports PyTorch's:
                    // the runtime, libtorch and the step's buffers. The trainer's line is the peak after both.
                    long bareRss = PeakRssMb();
                    TorchSharp.torch.manual_seed(0);
                    var trainer = StepBenchmark.ThroughTrainer(
                        ModelFactory.Create(cfg, ctx.Device),
                        shape,
                        k,
                        w,
                        n,
                        ctx.Device,
                        Path.Combine(Path.GetTempPath(), $"wtn-bench-{Environment.ProcessId}")
                    );
                    foreach (var (t, rss) in new[] { (bare, bareRss), (trainer, PeakRssMb()) })
                        Console.WriteLine(
                            $"torchsharp {t.Path, -12} {label}: median {t.MedianMs:F1} ms/step (mean {t.MeanMs:F1}, min {t.MinMs:F1}, {t.Steps} steps), cpu {t.CpuMedianMs:F1} ms/step, {(t.FaultsPerStep is { } f ? $"{f:F0}" : "n/a")} page faults/step, peak RSS {rss} MB"
                        );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }
}
