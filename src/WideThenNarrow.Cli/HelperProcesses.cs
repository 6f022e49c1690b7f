using System.Diagnostics;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;

namespace WideThenNarrow.Cli;

/// <summary>
/// <c>wtn run --jobs N</c>: N - 1 processes running <c>wtn run ... --join</c> beside this one. Each takes the stages
/// nobody holds (stage locks), so independent stages (the wide network and the baselines that do not need it, then
/// kd, fitnets and stage 2) train at the same time, each process with its share of the threads. Their output goes to
/// runs/NAME/worker-K.log and, prefixed, to this process's log. They watch their standard input: when this process
/// closes it (stop, failure) or dies, however it dies, they checkpoint and exit.
/// </summary>
sealed class HelperProcesses : IRunHelpers
{
    /// <summary>Set for a helper started here: stop when standard input closes.</summary>
    public const string StopWithParentVariable = "WTN_STOP_WITH_PARENT";

    readonly List<Helper> helpers = [];
    readonly IProgress<string> log;
    readonly int threads;

    sealed record Helper(int Index, Process Process, StreamWriter Log, string LogPath);

    HelperProcesses(IProgress<string> log, int threads)
    {
        this.log = log;
        this.threads = threads;
    }

    /// <summary>
    /// Starts <paramref name="count"/> helpers: this executable with <paramref name="args"/> (a full <c>run ...
    /// --join</c> command line). <paramref name="threads"/>: the run's threads, this process's again once they are done.
    /// </summary>
    public static HelperProcesses Start(int count, IReadOnlyList<string> args, string logDir, IProgress<string> log, int threads)
    {
        var team = new HelperProcesses(log, threads);
        Directory.CreateDirectory(logDir);
        var exe = Environment.ProcessPath ?? throw new WtnException("--jobs: cannot tell which executable this process runs");
        try
        {
            for (int k = 1; k <= count; k++)
            {
                var psi = new ProcessStartInfo(exe)
                {
                    RedirectStandardInput = true,
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                };
                // Under `dotnet wtn.dll` the process is the host: the helper needs the assembly as its first argument.
                if (Path.GetFileNameWithoutExtension(exe) == "dotnet") psi.ArgumentList.Add(typeof(HelperProcesses).Assembly.Location);
                foreach (var a in args) psi.ArgumentList.Add(a);
                psi.Environment[StopWithParentVariable] = "1";
                var path = Path.Combine(logDir, $"worker-{k}.log");
                var file = new StreamWriter(path, append: true) { AutoFlush = true };
                var p = new Process { StartInfo = psi };
                var h = new Helper(k, p, file, path);
                p.OutputDataReceived += (_, e) => team.Relay(h, e.Data);
                p.ErrorDataReceived += (_, e) => team.Relay(h, e.Data);
                p.Start();
                p.BeginOutputReadLine();
                p.BeginErrorReadLine();
                team.helpers.Add(h);
                log.Report($"worker {k}: process {p.Id}, log {path}");
            }
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception)
        {
            team.Stop();
            throw new WtnException($"--jobs: cannot start a helper process ({e.Message}); run without --jobs");
        }
        return team;
    }

    void Relay(Helper h, string? line)
    {
        if (line is null) return;
        lock (h.Log) h.Log.WriteLine(line);
        log.Report($"[worker {h.Index}] {line}");
    }

    public void Finished()
    {
        foreach (var h in helpers) End(h, TimeSpan.FromMinutes(5));
        TorchSharp.torch.set_num_threads(threads); // the final report's latencies are measured on the run's threads
    }

    public void Stop()
    {
        foreach (var h in helpers)
        {
            try { h.Process.StandardInput.Close(); }
            catch (IOException) { } // already gone
        }
        foreach (var h in helpers) End(h, TimeSpan.FromMinutes(2));
    }

    /// <summary>Waits for a helper (closing its input if it outlives <paramref name="patience"/>), then reports how it ended.</summary>
    void End(Helper h, TimeSpan patience)
    {
        if (!h.Process.WaitForExit(patience))
        {
            try { h.Process.StandardInput.Close(); }
            catch (IOException) { }
            if (!h.Process.WaitForExit(TimeSpan.FromMinutes(2))) h.Process.Kill(entireProcessTree: true);
        }
        h.Process.WaitForExit(); // drains the output relays
        if (h.Process.ExitCode != 0) log.Report($"worker {h.Index} exited with code {h.Process.ExitCode}; its log: {h.LogPath}");
        h.Log.Dispose();
        h.Process.Dispose();
    }

    /// <summary>In a helper: cancels <paramref name="cts"/> when the parent closes our standard input or dies.</summary>
    public static void StopWhenParentGoes(CancellationTokenSource cts)
    {
        if (Environment.GetEnvironmentVariable(StopWithParentVariable) != "1") return;
        var t = new Thread(() =>
        {
            try
            {
                using var stdin = Console.OpenStandardInput();
                var buffer = new byte[256];
                while (stdin.Read(buffer, 0, buffer.Length) > 0) { }
            }
            catch (IOException) { }
            cts.Cancel();
        }) { IsBackground = true, Name = "parent watch" };
        t.Start();
    }
}
