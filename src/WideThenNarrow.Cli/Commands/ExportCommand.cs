using System.CommandLine;
using System.Globalization;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Models;

namespace WideThenNarrow.Cli.Commands;

/// <summary>
/// <c>wtn export EXPERIMENT.yaml --stage STAGE [--seed S] --out FILE [--set key=value ...] [--runs-dir DIR]</c>: a
/// finished stage's network as a PyTorch state_dict (.safetensors or .pth) plus a JSON manifest that rebuilds it.
/// </summary>
public static class ExportCommand
{
    /// <summary>The stages of the catalogue (<see cref="StageCatalogue"/>), in run order; the downstream ones are downstream_S.</summary>
    static string StageNames() =>
        string.Join(
            ", ",
            StageCatalogue
                .All.Where(s => !DownstreamStage.IsDownstream(s.Name))
                .Select(s => s.Name == "finetune" ? "finetune (the method)" : s.Name)
        );

    public static Command Build(GlobalOptions g)
    {
        var o = new ExperimentOptions(
            "Experiment file (YAML) as given to wtn run, or the run's folder (runs/EXPERIMENT, e.g. runs/wtn-demo after wtn demo)",
            "The same overrides as given to wtn run (repeatable; not with a run folder)"
        );
        var cmd = o.AddTo(
            new Command(
                "export",
                "Write a finished stage's network as PyTorch weights (.safetensors or .pth, torchvision / HuggingFace names) plus a JSON manifest that rebuilds it (python/wtn_models.py, ModelExport.Load)"
            ),
            seeds: false
        );
        var stage = new Option<string>("--stage")
        {
            Description =
                $"The stage whose final network to write: {StageNames()}, downstream_S; or all: every finished stage of every seed, into the folder --out as seed-S-STAGE.safetensors (or --format pth)",
            DefaultValueFactory = _ => "finetune",
        };
        var seed = new Option<long?>("--seed")
        {
            Description = "Which seed's network (the S of runs/EXPERIMENT/seed-S; default: the file's seed_base)",
        };
        var output = new Option<string>("--out", "-o")
        {
            Description =
                "File to write: NAME.safetensors or NAME.pth (torch.save), or NAME.onnx (an ONNX graph for inference, checked by ONNX Runtime, plus NAME.safetensors); the manifest goes to NAME.json. With --stage all: a folder",
            Required = true,
        };
        var format = new Option<string>("--format")
        {
            Description =
                "safetensors, pth or onnx: with --stage all, the files' format; else it must agree with --out's extension",
            DefaultValueFactory = _ => "safetensors",
        };
        cmd.Add(stage);
        cmd.Add(seed);
        cmd.Add(output);
        cmd.Add(format);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, _) =>
                {
                    var (config, runsDir) = Experiment(o, parse);
                    var runner = new Orchestration.ExperimentRunner(config, runsDir, ctx.DataDir, ctx.Device);
                    var path = parse.GetValue(output)!;
                    if (parse.GetValue(stage)!.Trim() == "all")
                    {
                        if (parse.GetValue(seed) is not null)
                            throw new WtnException("--seed: --stage all exports every seed's stages; leave --seed out");
                        var all = runner.Exporter.ExportAll(
                            path,
                            "." + parse.GetValue(format)!.Trim().TrimStart('.').ToLowerInvariant()
                        );
                        foreach (var x in all)
                            Console.WriteLine(
                                $"{x.Source}: {(x.Onnx is { } graph ? $"{graph} + " : "")}{x.Weights}, {x.Model["name"]} ({x.Model["widen"]}){(x.TestTop1 is { } t ? $", test top-1 {(100 * t).ToString("F2", CultureInfo.InvariantCulture)}%" : "")}"
                            );
                        Console.WriteLine(
                            $"{all.Count} network(s) in {Path.GetFullPath(path)}, each with its manifest NAME.json, each read back and checked"
                        );
                        return Task.FromResult(0);
                    }
                    var fmt = parse.GetResult(format) is { Implicit: false }
                        ? "." + parse.GetValue(format)!.Trim().TrimStart('.').ToLowerInvariant()
                        : null;
                    if (fmt is not null && !Path.GetExtension(path).Equals(fmt, StringComparison.OrdinalIgnoreCase))
                        throw new WtnException(
                            $"--format {fmt.TrimStart('.')}: --out '{path}' must then end in {fmt} (the format follows the extension)"
                        );
                    var m = runner.Exporter.Export(
                        parse.GetValue(stage)!.Trim(),
                        parse.GetValue(seed) ?? config.SeedBase,
                        path
                    );
                    bool onnx = Export.OnnxExport.IsOnnx(path);
                    var weights = onnx ? Export.OnnxExport.WeightsPath(path) : path;
                    var top1 = m.TestTop1 is { } last
                        ? $", test top-1 {(100 * last).ToString("F2", CultureInfo.InvariantCulture)}%"
                        : "";
                    Console.WriteLine(
                        $"{m.Source}: {m.Model["name"]} ({m.Model["widen"]}), {m.Parameters.ToString("N0", CultureInfo.InvariantCulture)} parameters{top1}"
                    );
                    if (onnx)
                        Console.WriteLine(
                            $"onnx:     {Path.GetFullPath(path)} (opset {Export.OnnxGraph.Opset}, sha256 {m.OnnxSha256![..16]}...)"
                        );
                    Console.WriteLine($"weights:  {Path.GetFullPath(weights)} (sha256 {m.Sha256[..16]}...)");
                    Console.WriteLine($"manifest: {Path.GetFullPath(ModelExport.ManifestPath(weights))}");
                    Console.WriteLine(
                        "checked: read back through the manifest, the network gives the same outputs bit for bit"
                            + (
                                onnx
                                    ? $"; ONNX Runtime gives TorchSharp's outputs to within {Export.OnnxExport.Tolerance:G1}"
                                    : ""
                            )
                    );
                    Console.WriteLine(
                        $"load it: PyTorch `model, manifest = wtn_models.load(\"{ModelExport.ManifestPath(weights)}\")` (python/wtn_models.py); .NET `ModelExport.Load(\"{ModelExport.ManifestPath(weights)}\")`"
                            + (
                                onnx
                                    ? $"; ONNX Runtime `InferenceSession(\"{path}\")`; wtn predict {ModelExport.ManifestPath(weights)} IMAGE|TEXT"
                                    : ""
                            )
                    );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    /// <summary>The experiment and the runs folder: from the file (and --set, --runs-dir), or from a run folder's record.</summary>
    static (Method.ExperimentConfig Config, string RunsDir) Experiment(ExperimentOptions o, ParseResult parse)
    {
        var arg = parse.GetValue(o.File)!;
        if (!Directory.Exists(arg))
            return (o.Load(parse), parse.GetValue(o.RunsDir)!);
        if ((parse.GetValue(o.Set) ?? []).Length > 0)
            throw new WtnException(
                $"--set: {arg} is a run folder, whose config is already resolved; give the experiment file to override keys"
            );
        var dir = Path.GetFullPath(arg).TrimEnd(Path.DirectorySeparatorChar);
        var config = Orchestration.ExperimentRunner.ReadRunConfig(dir);
        if (config.Name != Path.GetFileName(dir))
            throw new WtnException(
                $"{dir}: its {Orchestration.ExperimentRunner.RunConfigFile} names experiment '{config.Name}', not the folder's name; was the folder renamed?"
            );
        return (config, Path.GetDirectoryName(dir)!);
    }
}
