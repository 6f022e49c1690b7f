using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using WideThenNarrow.Models;

namespace WideThenNarrow.Cli.Commands;

/// <summary><c>wtn model summary NAME [--widen inner=K|full=K] [--base-width W] [--input CxHxW | --seq N] [--classes N] [--json]</c>.</summary>
public static class ModelCommand
{
    public static Command Build(GlobalOptions g)
    {
        var cmd = new Command("model", "Inspect the model zoo");
        cmd.Add(BuildSummary(g));
        return cmd;
    }

    static Command BuildSummary(GlobalOptions g)
    {
        var name = new Argument<string>("name")
        {
            Description = $"Architecture: {string.Join(", ", ModelFactory.Names)}",
        };
        var widen = new Option<string>("--widen")
        {
            Description = "Widening: none, inner=K or full=K",
            DefaultValueFactory = _ => "none",
        };
        var input = new Option<string?>("--input")
        {
            Description =
                "Example shape CxHxW for ResNets (default 3x224x224, CIFAR layout 3x32x32), or D features for the MLP (default 784)",
        };
        var seq = new Option<int?>("--seq") { Description = "Sequence length for BERT (default 128)" };
        var classes = new Option<int?>("--classes")
        {
            Description = "Classes of the classifier (default: 1000 for resnet18..152, 2 for BERT, else 10)",
        };
        var head = new Option<string>("--head")
        {
            Description = "BERT head: cls (sequence classification) or mlm (masked LM)",
            DefaultValueFactory = _ => "cls",
        };
        var projection = new Option<bool>("--projection-shortcuts")
        {
            Description = "CIFAR layout: 1x1 conv + BN shortcuts instead of parameter-free ones",
        };
        var baseWidth = new Option<int>("--base-width")
        {
            Description = "CIFAR ResNets: stage widths w, 2w, 4w",
            DefaultValueFactory = _ => ModelConfig.DefaultBaseWidth,
        };
        var width = new Option<int>("--width") { Description = "MLP hidden width", DefaultValueFactory = _ => 256 };
        var depth = new Option<int>("--depth")
        {
            Description = "MLP blocks (input layer + hidden blocks)",
            DefaultValueFactory = _ => 8,
        };
        var residual = new Option<bool>("--residual") { Description = "MLP with residual blocks (allows inner=K)" };
        var json = new Option<bool>("--json") { Description = "Print as JSON" };
        var cmd = new Command(
            "summary",
            "Blocks, activation shape at every imitation point, parameters and multiply-accumulates for one example"
        );
        cmd.Add(name);
        foreach (
            var o in new Option[]
            {
                widen,
                input,
                seq,
                classes,
                head,
                projection,
                baseWidth,
                width,
                depth,
                residual,
                json,
            }
        )
            cmd.Add(o);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, _) =>
                {
                    var model = parse.GetValue(name)!.Trim().ToLowerInvariant();
                    bool isBert = model.StartsWith("bert", StringComparison.Ordinal);
                    bool isMlp = model == "mlp";
                    var shape = parse.GetValue(input) is { } text ? ParseShape(text) : null;
                    if (isBert && shape is not null)
                        throw new WtnException("--input: BERT takes --seq N (tokens), not --input");
                    if (!isBert && parse.GetValue(seq) is not null)
                        throw new WtnException(
                            $"--seq: only BERT models take a sequence length; {model} takes --input"
                        );
                    if (shape is not null && !isMlp && shape.Length != 3)
                        throw new WtnException($"--input: {model} needs CxHxW, got '{parse.GetValue(input)}'");
                    var bertHead = parse.GetValue(head)!.Trim().ToLowerInvariant() switch
                    {
                        "cls" => BertHead.Classification,
                        "mlm" => BertHead.MaskedLm,
                        var h => throw new WtnException($"--head: unknown head '{h}', expected cls or mlm"),
                    };
                    var config = new ModelConfig
                    {
                        Name = model,
                        Widen = Widening.Parse(parse.GetValue(widen)!),
                        Classes = parse.GetValue(classes) ?? ModelFactory.DefaultClasses(model),
                        InputChannels = shape is { Length: 3 } ? (int)shape[0] : 3,
                        InputDim = isMlp && shape is not null ? (int)shape.Aggregate(1L, (a, b) => a * b) : 784,
                        ProjectionShortcuts = parse.GetValue(projection),
                        BaseWidth = parse.GetValue(baseWidth),
                        Width = parse.GetValue(width),
                        Depth = parse.GetValue(depth),
                        Residual = parse.GetValue(residual),
                        Head = bertHead,
                    };
                    if (parse.GetValue(seq) is { } t && (t < 1 || t > config.MaxPositions))
                        throw new WtnException(
                            $"--seq must be between 1 and the model's max positions {config.MaxPositions}, got {t}"
                        );
                    long[]? example =
                        isBert ? (parse.GetValue(seq) is { } n ? [n] : null)
                        : isMlp ? (shape is null ? null : [config.InputDim])
                        : shape;
                    var summary = ModelSummary.Of(config, example);
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(summary, JsonOutput.Options));
                        return Task.FromResult(0);
                    }
                    Render(summary);
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    static long[] ParseShape(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split('x');
        var dims = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out dims[i]) || dims[i] < 1)
                throw new WtnException(
                    $"--input: cannot read shape '{text}', expected positive sizes like 3x224x224 (or 784 for the MLP)"
                );
        return dims;
    }

    static void Render(ModelSummary s)
    {
        AnsiConsole.MarkupLine(
            $"[bold]{Markup.Escape(s.Model)}[/] ({s.Family}, widening {s.Widening}), input {string.Join("x", s.InputShape)}"
        );
        var t = new Table()
            .Border(TableBorder.Rounded)
            .AddColumns("block", "point", "shape", "skip crosses", "parameters", "MACs");
        foreach (var c in t.Columns.Skip(4))
            c.RightAligned();
        foreach (var b in s.Blocks)
            t.AddRow(
                b.Index.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(b.Name),
                string.Join("x", b.Shape),
                b.SkipCrosses ? "yes" : "no",
                b.Parameters.ToString("N0", CultureInfo.InvariantCulture),
                Scaled(b.Macs)
            );
        t.AddRow("head", "", "", "", s.HeadParameters.ToString("N0", CultureInfo.InvariantCulture), Scaled(s.HeadMacs));
        t.AddRow(
            "[bold]total[/]",
            "",
            "",
            "",
            $"[bold]{s.Parameters.ToString("N0", CultureInfo.InvariantCulture)}[/]",
            $"[bold]{Scaled(s.Macs)}[/]"
        );
        AnsiConsole.Write(t);
    }

    static string Scaled(long n) =>
        n switch
        {
            >= 1_000_000_000 => $"{n / 1e9:0.00} G",
            >= 1_000_000 => $"{n / 1e6:0.00} M",
            >= 1_000 => $"{n / 1e3:0.00} K",
            _ => n.ToString(CultureInfo.InvariantCulture),
        };
}
