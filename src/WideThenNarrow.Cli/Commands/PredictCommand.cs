using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using WideThenNarrow.Serving;

namespace WideThenNarrow.Cli.Commands;

/// <summary>
/// <c>wtn predict MANIFEST.json INPUT... [--file F] [--top K] [--engine onnx|torch] [--json]</c>: an exported
/// classifier's most probable classes for image files or folders, or for texts (arguments or the lines of a file).
/// </summary>
public static class PredictCommand
{
    public static Command Build(GlobalOptions g)
    {
        var manifest = new Argument<string>("manifest")
        {
            Description =
                "The manifest of an exported classifier (NAME.json from wtn export, or a wtn train run's final.json)",
        };
        var inputs = new Argument<string[]>("inputs")
        {
            Description = "Image files or folders (PNG/JPEG), or texts, one per argument",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var file = new Option<string?>("--file")
        {
            Description = "Text network: a file whose non-empty lines are the texts",
        };
        var top = new Option<int>("--top") { Description = "Classes to show per input", DefaultValueFactory = _ => 3 };
        var engine = new Option<string?>("--engine")
        {
            Description =
                "onnx (ONNX Runtime on NAME.onnx) or torch (TorchSharp on the weights); default onnx when the export has a graph",
        };
        var json = new Option<bool>("--json") { Description = "Print as JSON" };
        var cmd = new Command(
            "predict",
            "An exported classifier's top classes with probabilities for images (files or folders) or texts, prepared as in training (normalisation, tokenisation from the manifest), on ONNX Runtime or TorchSharp"
        );
        cmd.Add(manifest);
        cmd.Add(inputs);
        foreach (var o in new Option[] { file, top, engine, json })
            cmd.Add(o);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, _) =>
                {
                    if (parse.GetValue(top) < 1)
                        throw new WtnException($"--top must be at least 1, got {parse.GetValue(top)}");
                    InferenceEngine? chosen = parse.GetValue(engine)?.Trim().ToLowerInvariant() switch
                    {
                        null => null,
                        "onnx" => InferenceEngine.Onnx,
                        "torch" => InferenceEngine.Torch,
                        var e => throw new WtnException($"--engine: '{e}' is neither onnx nor torch"),
                    };
                    var path = parse.GetValue(manifest)!;
                    var given = parse.GetValue(inputs) ?? [];
                    using var predictor = Predictor.Open(path, chosen, ctx.Device, TorchSharp.torch.get_num_threads());
                    IReadOnlyList<Prediction> results;
                    if (predictor.Manifest.Input.Kind == "tokens")
                    {
                        var texts = given.ToList();
                        if (parse.GetValue(file) is { } f)
                        {
                            if (!File.Exists(f))
                                throw new WtnException($"--file: {f} not found");
                            texts.AddRange(File.ReadLines(f).Where(l => !string.IsNullOrWhiteSpace(l)));
                        }
                        if (texts.Count == 0)
                            throw new WtnException(
                                "no text given: pass texts as arguments or --file FILE (one text per line)"
                            );
                        results = predictor.PredictTexts(texts, parse.GetValue(top));
                    }
                    else
                    {
                        if (parse.GetValue(file) is not null)
                            throw new WtnException(
                                "--file: this network takes images; give image files or folders as arguments"
                            );
                        if (given.Length == 0)
                            throw new WtnException("no image given: pass PNG/JPEG files or folders");
                        results = predictor.PredictImages(Predictor.ImageFiles(given), parse.GetValue(top));
                    }
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(
                            JsonSerializer.Serialize(
                                new { Engine = predictor.Engine.ToString().ToLowerInvariant(), Predictions = results },
                                JsonOutput.Options
                            )
                        );
                        return Task.FromResult(0);
                    }
                    var t = new Table().Border(TableBorder.Rounded).AddColumns("input", "class", "probability");
                    t.Columns[2].RightAligned();
                    foreach (var r in results)
                        for (int i = 0; i < r.Top.Count; i++)
                            t.AddRow(
                                i == 0 ? Markup.Escape(Shorten(r.Input)) : "",
                                $"{r.Top[i].Label} {Markup.Escape(r.Top[i].Name)}",
                                (100 * r.Top[i].Probability).ToString("F2", CultureInfo.InvariantCulture) + "%"
                            );
                    AnsiConsole.Write(t);
                    Console.WriteLine(
                        $"{results.Count} input(s) on {(predictor.Engine == InferenceEngine.Onnx ? "ONNX Runtime" : "TorchSharp")}"
                    );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    static string Shorten(string s) => s.Length <= 60 ? s : s[..57] + "...";
}
