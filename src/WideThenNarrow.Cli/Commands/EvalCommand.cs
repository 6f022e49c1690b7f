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
/// networks on an image dataset; a BERT sentiment classifier on IMDB, tokenised with the vocabulary it was trained with;
/// a BERT masked-LM encoder on its run's held-out text or other text: masked-token loss, perplexity and top-1.
/// </summary>
public static class EvalCommand
{
    public static Command Build(GlobalOptions g)
    {
        var manifest = new Argument<string>("manifest")
        {
            Description =
                "The manifest of an exported network (NAME.json from wtn export, or a wtn train run's final.json)",
        };
        var dataset = new Option<string?>("--dataset")
        {
            Description =
                "Dataset name or image folder (default: the one the network was trained on, from the manifest; for text classifiers imdb or a labelled .csv/.tsv/.jsonl file; for a masked-LM encoder its run's held-out text, or imdb, sotu, brown, a .txt file or a folder of them)",
        };
        var textColumn = new Option<string>("--text-column")
        {
            Description = "A labelled .csv/.tsv/.jsonl file's text column or key",
            DefaultValueFactory = _ => "text",
        };
        var labelColumn = new Option<string>("--label-column")
        {
            Description = "A labelled .csv/.tsv/.jsonl file's label column or key",
            DefaultValueFactory = _ => "label",
        };
        var split = new Option<string>("--split")
        {
            Description = "test or train (a masked-LM encoder: IMDB's split; other text is read whole)",
            DefaultValueFactory = _ => "test",
        };
        var perClass = new Option<int?>("--per-class")
        {
            Description = "Only the first N examples of each class (default: the whole split)",
        };
        var batch = new Option<int?>("--batch-size")
        {
            Description =
                "Examples per forward pass (default 256; 32 sequences for a masked-LM encoder, whose outputs score the whole vocabulary at every position)",
        };
        var json = new Option<bool>("--json") { Description = "Print as JSON" };
        var allowOutside = AllowOutside();
        var cmd = new Command(
            "eval",
            "Evaluate an exported network (wtn export / wtn train's final.json) on a dataset: loss, top-1 and top-1 per class (images, or IMDB for a fine-tuned BERT); a masked-LM encoder's masked-token loss, perplexity and top-1 on text"
        );
        cmd.Add(manifest);
        foreach (var o in new Option[] { dataset, split, perClass, batch, json, textColumn, labelColumn, allowOutside })
            cmd.Add(o);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, _) =>
                {
                    var path = parse.GetValue(manifest)!;
                    bool outside = parse.GetValue(allowOutside);
                    var m = ModelExport.Verify(path, outside);
                    bool test = parse.GetValue(split)!.Trim().ToLowerInvariant() switch
                    {
                        "test" => true,
                        "train" => false,
                        var s => throw new WtnException($"--split: '{s}' is neither test nor train"),
                    };
                    if (parse.GetValue(perClass) is < 1)
                        throw new WtnException($"--per-class must be positive, got {parse.GetValue(perClass)}");
                    EvaluationResult r;
                    if (m.Input.Kind == "tokens" && m.Family == "bert" && Equals(m.Model["head"]?.ToString(), "mlm"))
                        return Task.FromResult(
                            MaskedLm(
                                path,
                                m,
                                outside,
                                parse.GetValue(dataset),
                                test,
                                parse.GetValue(perClass),
                                parse.GetValue(batch) ?? 32,
                                parse.GetValue(json),
                                ctx
                            )
                        );
                    if (m.Input.Kind == "tokens")
                    {
                        // Text: a sentiment or user-task classifier (a BERT fine-tuned downstream), read with its own vocabulary.
                        if (m.Family != "bert" || !Equals(m.Model["head"]?.ToString(), "cls"))
                            throw new WtnException(
                                $"{path}: a text network with neither a classification nor a masked-LM head; export a downstream_ stage or a pretraining stage"
                            );
                        var (vocab, length) = Text(path, m, outside);
                        var d = parse.GetValue(dataset);
                        if (
                            d is not null
                            && d != "imdb"
                            && !Data.Text.LabelledTextFile.Extensions.Contains(Path.GetExtension(d).ToLowerInvariant())
                        )
                            throw new WtnException(
                                $"--dataset: text classifiers are evaluated on imdb or a labelled .csv, .tsv or .jsonl file, not '{d}'"
                            );
                        if (
                            d is null
                            && m.Input.Classes is { } own
                            && !own.SequenceEqual(ClassifierEvaluation.ImdbClasses)
                        )
                            throw new WtnException(
                                $"{path}: the network was fine-tuned on your own labels ({Names(own)}), not IMDB's; give --dataset with a labelled .csv, .tsv or .jsonl file"
                            );
                        using var bert = ModelExport.Load(path, ctx.Device, outside);
                        r = d is null or "imdb"
                            ? ClassifierEvaluation.Imdb(
                                bert,
                                ctx.DataDir,
                                vocab,
                                length,
                                test,
                                parse.GetValue(batch) ?? 256,
                                parse.GetValue(perClass),
                                ctx.Device,
                                m.Input.Lowercase ?? true
                            )
                            : ClassifierEvaluation.LabelledFile(
                                bert,
                                d,
                                m.Input.Classes
                                    ?? throw new WtnException(
                                        $"{path} does not name its classes; export the network again with this wtn"
                                    ),
                                vocab,
                                length,
                                parse.GetValue(batch) ?? 256,
                                parse.GetValue(perClass),
                                parse.GetValue(textColumn)!,
                                parse.GetValue(labelColumn)!,
                                ctx.Device,
                                m.Input.Lowercase ?? true
                            );
                    }
                    else
                    {
                        var name = parse.GetValue(dataset)
                            ?? m.Input.Dataset
                            ?? throw new WtnException(
                                $"{path} does not name the dataset the network was trained on; give --dataset"
                            );
                        // An image folder is read at the network's input size, as it was trained (data.resize) and as wtn predict reads images.
                        int resize =
                            ImageDataset.IsImageFolder(name) && m.Input.Shape is [_, var h, var w] && h == w ? h : 0;
                        using var data = ImageDataset.Load(name, ctx.DataDir, resize);
                        if (m.Input.Shape is { } shape && shape[0] != data.Channels)
                            throw new WtnException(
                                $"the network takes {shape[0]}-channel images but {data.Name} has {data.Channels}; give --dataset with {shape[0]}-channel images"
                            );
                        // Labels are positions: a dataset whose classes are other names, or in another order, would be scored wrongly.
                        if (m.Input.Classes is { } trained && !trained.SequenceEqual(data.Classes))
                            throw new WtnException(
                                $"{path}: the network's classes ({Names(trained)}) are not {data.Name}'s ({Names(data.Classes)}); evaluate it on data with the same classes in the same order"
                            );
                        using var model = ModelExport.Load(path, ctx.Device, outside);
                        r = ClassifierEvaluation.Images(
                            model,
                            data,
                            test,
                            parse.GetValue(batch) ?? 256,
                            parse.GetValue(perClass),
                            m.Input.Mean,
                            m.Input.Std,
                            ctx.Device
                        );
                    }
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(r, JsonOutput.Options));
                        return Task.FromResult(0);
                    }
                    var t = new Table().Border(TableBorder.Rounded).AddColumns("class", "examples", "top-1");
                    foreach (var c in t.Columns.Skip(1))
                        c.RightAligned();
                    foreach (var c in r.PerClass)
                        t.AddRow(
                            $"{c.Label} {Markup.Escape(c.Name)}",
                            c.Examples.ToString("N0", CultureInfo.InvariantCulture),
                            Percent(c.Top1)
                        );
                    t.AddRow(
                        "[bold]all[/]",
                        $"[bold]{r.Examples.ToString("N0", CultureInfo.InvariantCulture)}[/]",
                        $"[bold]{Percent(r.Top1)}[/]"
                    );
                    AnsiConsole.Write(t);
                    Console.WriteLine(
                        $"{r.Dataset} {r.Split}: top-1 {Percent(r.Top1)}, loss {r.Loss.ToString("F4", CultureInfo.InvariantCulture)} over {r.Examples:N0} examples"
                            + (
                                m.TestTop1 is { } last
                                    ? $"; the manifest's test top-1 (its run's test set): {Percent(last)}"
                                    : ""
                            )
                    );
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    /// <summary>
    /// A masked-LM encoder (a pretraining stage's export): by default on the text its run held out, masked as the run
    /// masked it, which gives the run's own masked-token top-1; or on IMDB, SOTU, Brown or the user's .txt files.
    /// </summary>
    static int MaskedLm(
        string path,
        ExportManifest m,
        bool allowOutside,
        string? dataset,
        bool test,
        int? perClass,
        int batch,
        bool json,
        RunContext ctx
    )
    {
        var (vocab, length) = Text(path, m, allowOutside);
        using var bert = ModelExport.Load(path, ctx.Device, allowOutside);
        MaskedLmEvaluationResult r;
        if (dataset is null or "held-out")
        {
            var heldOut = m.Input.HeldOut
                ?? throw new WtnException(
                    $"{path} does not record the text its run held out (it is not from an experiment's run); give --dataset imdb, sotu, brown or a .txt file"
                );
            if (perClass is not null)
                throw new WtnException(
                    "--per-class: the held-out text has no classes; give --dataset imdb to take N reviews per class"
                );
            r = MaskedLmEvaluation.HeldOut(
                bert,
                ctx.DataDir,
                vocab,
                length,
                heldOut,
                batch,
                ctx.Device,
                m.Input.Lowercase ?? true
            );
        }
        else
            r = MaskedLmEvaluation.Text(
                bert,
                dataset,
                ctx.DataDir,
                vocab,
                length,
                test,
                perClass,
                batch,
                m.Input.HeldOut?.MaskProbability ?? 0.15,
                device: ctx.Device,
                lowercase: m.Input.Lowercase ?? true
            );
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(r, JsonOutput.Options));
            return 0;
        }
        var t = new Table()
            .Border(TableBorder.Rounded)
            .AddColumns("text", "documents", "sequences", "masked", "loss", "perplexity", "top-1");
        foreach (var c in t.Columns.Skip(1))
            c.RightAligned();
        t.AddRow(
            Markup.Escape(r.Split is "test" or "train" ? $"{r.Dataset} {r.Split}" : r.Dataset),
            r.Documents.ToString("N0", CultureInfo.InvariantCulture),
            r.Sequences.ToString("N0", CultureInfo.InvariantCulture),
            r.MaskedTokens.ToString("N0", CultureInfo.InvariantCulture),
            r.Loss.ToString("F4", CultureInfo.InvariantCulture),
            r.Perplexity.ToString("F1", CultureInfo.InvariantCulture),
            Percent(r.Top1)
        );
        AnsiConsole.Write(t);
        Console.WriteLine(
            $"{r.Dataset}: masked-token top-1 {Percent(r.Top1)}, loss {r.Loss.ToString("F4", CultureInfo.InvariantCulture)} (perplexity {r.Perplexity.ToString("F1", CultureInfo.InvariantCulture)}) over {r.MaskedTokens:N0} masked tokens"
                + (
                    m.TestTop1 is { } last
                        ? $"; the manifest's test top-1 (its run's held-out text): {Percent(last)}"
                        : ""
                )
        );
        if (r.ByShown is { } by)
            Console.WriteLine(
                $"by what the encoder saw in the token's place: [MASK] {Shown(by.MaskTokens, by.MaskTop1)} (from context alone); "
                    + $"another token {Shown(by.ReplacedTokens, by.ReplacedTop1)}; the token itself {Shown(by.KeptTokens, by.KeptTop1)} (can be copied)"
            );
        return 0;

        string Shown(long n, double? top1) =>
            string.Create(
                CultureInfo.InvariantCulture,
                $"{n:N0} tokens ({100.0 * n / r.MaskedTokens:F1}%), top-1 {(top1 is { } t ? Percent(t) : "n/a")}"
            );
    }

    /// <summary>A text network's vocabulary file (beside the manifest) and sequence length, from its manifest.</summary>
    static (string Vocab, int Length) Text(string path, ExportManifest m, bool allowOutside) =>
        m.Input is { Vocab: { } vocab, MaxLength: { } length }
            ? (Runtime.InputFiles.Beside(path, vocab, "vocabulary", allowOutside), length)
            : throw new WtnException($"{path} names no vocabulary or length; export the network again with this wtn");

    /// <summary>The option of every verb that opens a manifest: by default its files must lie in its folder.</summary>
    internal static Option<bool> AllowOutside() =>
        new("--allow-outside")
        {
            Description =
                "Trust the manifest: open the weights and vocabulary it names even outside its folder (by default they must lie beside it)",
        };

    static string Names(IReadOnlyList<string> classes) =>
        classes.Count <= 4
            ? string.Join(", ", classes)
            : $"{string.Join(", ", classes.Take(3))}, ... {classes.Count} in all";

    static string Percent(double x) => (100 * x).ToString("F2", CultureInfo.InvariantCulture) + "%";
}
