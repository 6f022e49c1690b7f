using System.Diagnostics;

namespace WideThenNarrow.Tests.Cli;

/// <summary>Runs the real <c>wtn</c> executable, as a user would.</summary>
public static class WtnProcess
{
    public static string ExePath
    {
        get
        {
            // The CLI project builds next to the tests (ProjectReference), so its apphost sits beside us.
            var p = Path.Combine(AppContext.BaseDirectory, "wtn");
            return File.Exists(p) ? p : throw new FileNotFoundException("wtn apphost not beside the tests", p);
        }
    }

    public static (int ExitCode, string Stdout, string Stderr) Run(
        string args,
        string? workDir = null,
        IDictionary<string, string>? env = null,
        int timeoutSeconds = 600
    ) => Run(new ProcessStartInfo(ExePath, args), args, workDir, env, timeoutSeconds);

    /// <summary>
    /// Runs wtn with every file it writes limited to <paramref name="fileSizeKb"/> KB (<c>ulimit -f</c>, SIGXFSZ
    /// ignored), so a write past it fails with EFBIG as on a file system whose largest file is smaller. The runtime's
    /// W^X double mapping is off: it maps a memory file that the limit would refuse.
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr) RunWithFileSizeLimit(
        string args,
        int fileSizeKb,
        int timeoutSeconds = 600
    )
    {
        var psi = new ProcessStartInfo(
            "bash",
            ["-c", $"trap '' XFSZ; ulimit -f {fileSizeKb}; exec \"{ExePath}\" {args}"]
        );
        return Run(
            psi,
            args,
            null,
            new Dictionary<string, string> { ["DOTNET_EnableWriteXorExecute"] = "0" },
            timeoutSeconds
        );
    }

    static (int ExitCode, string Stdout, string Stderr) Run(
        ProcessStartInfo psi,
        string args,
        string? workDir,
        IDictionary<string, string>? env,
        int timeoutSeconds
    )
    {
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.WorkingDirectory = workDir ?? Path.GetTempPath();
        psi.Environment.Remove("COLUMNS"); // a caller's terminal width would change how tables are laid out
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"wtn {args} did not finish in {timeoutSeconds}s");
        }
        return (p.ExitCode, outTask.Result, errTask.Result);
    }
}

public class CliTests
{
    [Fact]
    public void Redirected_tables_take_the_width_they_need_unless_COLUMNS_says_otherwise()
    {
        // Output to a pipe has no 80-column default: the data folder's row is as wide as the path (over 80 columns).
        const string folder = "/tmp/a-data-folder-named-at-length-so-that-its-row-is-wider-than-eighty-columns";
        var (code, stdout, stderr) = WtnProcess.Run($"--threads 1 --data-dir {folder} info");
        Assert.True(code == 0, stderr);
        Assert.Matches($@"│ data folder │ {folder} +│", stdout);
        // $COLUMNS is honoured: every line of the table fits in it.
        (code, stdout, stderr) = WtnProcess.Run(
            $"--threads 1 --data-dir {folder} info",
            env: new Dictionary<string, string> { ["COLUMNS"] = "50" }
        );
        Assert.True(code == 0, stderr);
        var table = stdout.Split('\n').Where(l => l.Length > 0 && "╭│├╰".Contains(l[0])).ToList();
        Assert.Contains(table, l => l.StartsWith("│ data folder "));
        Assert.All(table, l => Assert.True(l.TrimEnd().Length <= 50, l));
    }

    [Fact]
    public void Help_lists_the_verbs()
    {
        var (code, stdout, _) = WtnProcess.Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("info", stdout);
        Assert.Contains("--threads", stdout);
        Assert.Contains("--device", stdout);
    }

    [Fact]
    public void Info_json_reports_torchsharp_and_threads()
    {
        var (code, stdout, stderr) = WtnProcess.Run("info --json --threads 1");
        Assert.True(code == 0, stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.Equal("0.107.0", doc.RootElement.GetProperty("torchSharpVersion").GetString());
        Assert.Equal(1, doc.RootElement.GetProperty("threads").GetInt32());
    }

    [Theory]
    [InlineData("info --device cuda", "--device cuda")]
    [InlineData("info --device tpu", "--device")]
    [InlineData("info --threads -3", "--threads")]
    [InlineData("--threads 100000 info", "--threads")]
    [InlineData("bench train-step --model bert --masked 1.5", "--masked")]
    [InlineData("bench train-step --model bert --seq 0", "--seq")]
    public void User_errors_exit_non_zero_with_one_line_naming_the_option(string args, string named)
    {
        if (args.Contains("cuda") && TorchSharp.torch.cuda.is_available())
            return;
        var (code, _, stderr) = WtnProcess.Run(args);
        Assert.NotEqual(0, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(named, lines[0]);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void Unknown_verb_is_rejected()
    {
        var (code, _, _) = WtnProcess.Run("no-such-verb");
        Assert.NotEqual(0, code);
    }
}
