using System.CommandLine;
using Spectre.Console;
using WideThenNarrow.Cli.Commands;

namespace WideThenNarrow.Cli;

/// <summary>The <c>wtn</c> command tree: global options, then one verb per file under Commands/.</summary>
public static class WtnApp
{
    public static RootCommand Build()
    {
        var g = new GlobalOptions();
        var root = new RootCommand(
            "wtn: train deep thin networks by going wide, then narrow (Zhou et al., ICML 2020).\n"
                + "Train a wide copy, warm the thin network up by layerwise imitation, fine-tune it."
        );
        g.AddTo(root);
        root.Add(InfoCommand.Build(g));
        root.Add(DataCommand.Build(g));
        root.Add(TrainCommand.Build(g));
        root.Add(BenchCommand.Build(g));
        root.Add(ModelCommand.Build(g));
        root.Add(DemoCommand.Build(g));
        root.Add(RunCommand.Build(g));
        root.Add(SubmitCommand.Build(g));
        root.Add(ReportCommand.Build(g));
        root.Add(ExportCommand.Build(g));
        root.Add(EvalCommand.Build(g));
        root.Add(PredictCommand.Build(g));
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        WidenRedirectedOutput();
        var root = Build();
        var parse = root.Parse(args);
        // System.CommandLine's own signal handling fails on a second signal (it completes its result twice).
        using var signals = new StopSignals();
        var command = parse.InvokeAsync(
            new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null },
            signals.Token
        );
        if (await Task.WhenAny(command, signals.PatienceOver()) == command)
            return await command;
        Console.Error.WriteLine(
            $"wtn: error: interrupted; the command did not stop within {StopSignals.Patience.TotalMinutes:0} minutes of the signal"
        );
        return 130;
    }

    /// <summary>
    /// Written to a file, a pipe or a CI log, Spectre lays tables out for 80 columns and breaks cells mid-word
    /// ("imitatio" / "n"). There is no reader's window to fit then, so tables get the width they need: $COLUMNS if
    /// set, else <see cref="RedirectedWidth"/> (a table only takes the columns its cells use).
    /// </summary>
    internal static void WidenRedirectedOutput()
    {
        if (!Console.IsOutputRedirected)
            return;
        AnsiConsole.Profile.Width =
            int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out var c) && c > 0 ? c : RedirectedWidth;
    }

    internal const int RedirectedWidth = 200;
}

/// <summary>Options every verb accepts, and the error policy: one line, non-zero exit, no stack trace.</summary>
public sealed class GlobalOptions
{
    public Option<int> Threads { get; } =
        new("--threads")
        {
            Description = "Intra-op CPU threads for libtorch (0 = all cores)",
            DefaultValueFactory = _ => 0,
            Recursive = true,
        };

    public Option<string> Device { get; } =
        new("--device")
        {
            Description = "Device: cpu or cuda (cuda needs a TorchSharp-cuda build and a GPU)",
            DefaultValueFactory = _ => "cpu",
            Recursive = true,
        };

    public Option<string?> DataDir { get; } =
        new("--data-dir") { Description = "Data folder (default: $WTN_DATA, else ./data)", Recursive = true };

    public Option<bool> Verbose { get; } =
        new("--verbose") { Description = "Show stack traces on errors", Recursive = true };

    public void AddTo(RootCommand root)
    {
        root.Add(Threads);
        root.Add(Device);
        root.Add(DataDir);
        root.Add(Verbose);
    }

    /// <summary>Wraps a verb's body: initialises torch, maps errors to one line and an exit code.</summary>
    public Func<ParseResult, CancellationToken, Task<int>> Handler(
        Func<ParseResult, RunContext, CancellationToken, Task<int>> body
    ) =>
        async (parse, ct) =>
        {
            bool verbose = parse.GetValue(Verbose);
            try
            {
                var device = Runtime.TorchRuntime.Initialize(parse.GetValue(Threads), parse.GetValue(Device) ?? "cpu");
                var ctx = new RunContext(device, Runtime.WtnPaths.ResolveDataDir(parse.GetValue(DataDir)), verbose);
                return await body(parse, ctx, ct);
            }
            catch (WtnException e)
            {
                WriteError(e.Message, verbose ? e : null);
                return 2;
            }
            catch (Exception e) when (WideThenNarrow.WriteFailure.Is(e))
            {
                // A file error no writer named more precisely (the messages of .NET's I/O errors carry the path).
                WriteError(
                    $"{WideThenNarrow.WriteFailure.Describe(e)}; check free space (df -h), permissions and the path, then run the same command again",
                    verbose ? e : null
                );
                return 2;
            }
            catch (Training.TrainingInterruptedException e)
            {
                WriteError($"{e.Message}; {e.Advice}", null);
                return 130;
            }
            catch (Orchestration.RunInterruptedException e)
            {
                WriteError(e.Message, null);
                return 130;
            }
            catch (OperationCanceledException)
            {
                WriteError("interrupted", null);
                return 130;
            }
            catch (Exception e)
            {
                WriteError(
                    $"{e.GetType().Name}: {e.Message}" + (verbose ? "" : " (run with --verbose for the stack trace)"),
                    verbose ? e : null
                );
                return 1;
            }
        };

    static void WriteError(string message, Exception? detail)
    {
        var first = message.Split('\n')[0].TrimEnd();
        Console.Error.WriteLine($"wtn: error: {first}");
        if (detail is not null)
            Console.Error.WriteLine(detail.ToString());
    }
}

/// <summary>What every verb gets after global options are applied.</summary>
public sealed record RunContext(TorchSharp.torch.Device Device, string DataDir, bool Verbose)
{
    /// <summary>Rich output only on a terminal; plain lines in CI and logs.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
}
