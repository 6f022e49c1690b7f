using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using WideThenNarrow.Training;

namespace WideThenNarrow.Cli.Commands;

/// <summary>
/// <c>wtn eval NAME.json [--dataset D] [--split test|train] [--per-class N] [--batch-size B] [--json]</c>: an exported
/// classifier (from <c>wtn export</c> or <c>wtn train</c>) evaluated on a dataset: loss, top-1, top-1 per class. Image
/// networks on an image dataset; a BERT sentiment classifier on IMDB, tokenised with the vocabulary it was trained with.
/// </summary>
public static class EvalCommand
{
    public static Command Build(GlobalOptions g)
    {
        var manifest = new Argument<string>("manifest") { Description = "The manifest of an exported network (NAME.json from wtn export, or a wtn train run's final.json)" };
        var dataset = new Option<string?>("--dataset") { Description = "Dataset name or image folder (default: the one the network was trained on, from the manifest; imdb for text classifiers)" };
        var split = new Option<string>("--split") { Description = "test or train", DefaultValueFactory = _ => "test" };
        var perClass = new Option<int?>("--per-class") { Description = "Only the first N examples of each class (default: the whole split)" };
        var batch = new Option<int>("--batch-size") { Description = "Examples per forward pass", DefaultValueFactory = _ => 256 };
        var json = new Option<bool>("--json") { Description = "Print as JSON" };
        var cmd = new Command("eval", "Evaluate an exported classifier (wtn export / wtn train's final.json) on a dataset: loss, top-1 and top-1 per class (images, or IMDB for a fine-tuned BERT)");
        cmd.Add(manifest);
        foreach (var o in new Option[] { dataset, split, perClass, batch, json }) cmd.Add(o);
        cmd.SetAction(g.Handler((parse, ctx, _) =>
        {
            var path = parse.GetValue(manifest)!;
            var m = ModelExport.Verify(path);
            bool test = parse.GetValue(split)!.Trim().ToLowerInvariant() switch
            {
                "test" => true,
                "train" => false,
                var s => throw new WtnException($"--split: '{s}' is neither test nor train"),
            };
            if (parse.GetValue(perClass) is < 1) throw new WtnException($"--per-class must be positive, got {parse.GetValue(perClass)}");
            EvaluationResult r;
            if (m.Input.Kind == "tokens")
            {
                // Text: an IMDB sentiment classifier (a BERT fine-tuned downstream), read with its own vocabulary.
                if (m.Family != "bert" || !Equals(m.Model["head"]?.ToString(), "cls"))
                    throw new WtnException($"{path}: a text network without a classification head (a masked-LM encoder) has no classes to score; export a downstream_ stage");
                if (parse.GetValue(dataset) is { } d && d != "imdb")
                    throw new WtnException($"--dataset: text classifiers are evaluated on imdb, not '{d}'");
                if (m.Input.Vocab is null || m.Input.MaxLength is null)
                    throw new WtnException($"{path} names no vocabulary or length; export the network again with this wtn");
                var vocab = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, m.Input.Vocab);
                using var bert = ModelExport.Load(path, ctx.Device);
                r = ClassifierEvaluation.Imdb(bert, ctx.DataDir, vocab, m.Input.MaxLength.Value, test, parse.GetValue(batch), parse.GetValue(perClass), ctx.Device);
            }
            else
            {
                var name = parse.GetValue(dataset) ?? m.Input.Dataset
                           ?? throw new WtnException($"{path} does not name the dataset the network was trained on; give --dataset");
                using var data = ImageDataset.Load(name, ctx.DataDir);
                if (m.Input.Shape is { } shape && shape[0] != data.Channels)
                    throw new WtnException($"the network takes {shape[0]}-channel images but {data.Name} has {data.Channels}; give --dataset with {shape[0]}-channel images");
                // Labels are positions: a dataset whose classes are other names, or in another order, would be scored wrongly.
                if (m.Input.Classes is { } trained && !trained.SequenceEqual(data.Classes))
                    throw new WtnException($"{path}: the network's classes ({Names(trained)}) are not {data.Name}'s ({Names(data.Classes)}); evaluate it on data with the same classes in the same order");
                using var model = ModelExport.Load(path, ctx.Device);
                r = ClassifierEvaluation.Images(model, data, test, parse.GetValue(batch), parse.GetValue(perClass), m.Input.Mean, m.Input.Std, ctx.Device);
            }
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(r, JsonOutput.Options));
                return Task.FromResult(0);
            }
            var t = new Table().Border(TableBorder.Rounded).AddColumns("class", "examples", "top-1");
            foreach (var c in t.Columns.Skip(1)) c.RightAligned();
            foreach (var c in r.PerClass)
                t.AddRow($"{c.Label} {Markup.Escape(c.Name)}", c.Examples.ToString("N0", CultureInfo.InvariantCulture), Percent(c.Top1));
            t.AddRow("[bold]all[/]", $"[bold]{r.Examples.ToString("N0", CultureInfo.InvariantCulture)}[/]", $"[bold]{Percent(r.Top1)}[/]");
            AnsiConsole.Write(t);
            Console.WriteLine($"{r.Dataset} {r.Split}: top-1 {Percent(r.Top1)}, loss {r.Loss.ToString("F4", CultureInfo.InvariantCulture)} over {r.Examples:N0} examples" +
                              (m.TestTop1Last is { } last ? $"; the manifest's test top-1 (its run's test set): {Percent(last)}" : ""));
            return Task.FromResult(0);
        }));
        return cmd;
    }

    static string Names(IReadOnlyList<string> classes) =>
        classes.Count <= 4 ? string.Join(", ", classes) : $"{string.Join(", ", classes.Take(3))}, ... {classes.Count} in all";

    static string Percent(double x) => (100 * x).ToString("F2", CultureInfo.InvariantCulture) + "%";
}
