using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using WideThenNarrow.Runtime;

namespace WideThenNarrow.Cli.Commands;

public static class InfoCommand
{
    public static Command Build(GlobalOptions g)
    {
        var json = new Option<bool>("--json") { Description = "Print as JSON" };
        var cmd = new Command(
            "info",
            "Versions of .NET, TorchSharp and libtorch, threads, devices, the native runtime fix, the data folder"
        );
        cmd.Add(json);
        cmd.SetAction(
            g.Handler(
                (parse, ctx, _) =>
                {
                    var info = TorchRuntime.Describe(ctx.DataDir);
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(info, JsonOutput.Options));
                        return Task.FromResult(0);
                    }
                    var t = new Table().AddColumn("").AddColumn("").HideHeaders().Border(TableBorder.Rounded);
                    t.AddRow(".NET", Markup.Escape(info.DotNetVersion));
                    t.AddRow("TorchSharp", info.TorchSharpVersion);
                    t.AddRow("libtorch", info.LibTorchVersion);
                    t.AddRow("threads", $"{info.Threads} (of {info.LogicalCores} logical cores)");
                    t.AddRow("devices", string.Join(", ", info.Devices));
                    t.AddRow("native fix", Markup.Escape(info.NativeFixStatus));
                    t.AddRow("allocator", Markup.Escape(info.Allocator));
                    t.AddRow("oneDNN", Markup.Escape(info.OneDnn));
                    t.AddRow("data folder", Markup.Escape(info.DataDir));
                    AnsiConsole.Write(t);
                    return Task.FromResult(0);
                }
            )
        );
        return cmd;
    }
}
