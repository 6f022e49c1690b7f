using System.Diagnostics;
using WideThenNarrow.Orchestration;

namespace WideThenNarrow.Cli;

/// <summary>
/// The stage processes of <c>wtn run --jobs N</c>: this executable running <c>wtn run RUN-CONFIG --only seed-S/STAGE
/// [--unit K]</c> with <paramref name="globalArgs"/> (threads, device, data folder). Each process's output goes to
/// runs/NAME/logs/seed-S-STAGE[-unit-K].log and, prefixed with the stage, to this process's log. To stop one, this
/// process closes its standard input; it then checkpoints and exits, and so it does when this process dies, however.
/// </summary>
sealed class StageProcesses(IReadOnlyList<string> globalArgs, string experimentDir, IProgress<string> log)
    : IStageLauncher
{
    /// <summary>Set for a stage process started here: stop when standard input closes.</summary>
    public const string StopWithParentVariable = "WTN_STOP_WITH_PARENT";

    public IStageProcess Start(StageTask task)
    {
        var exe = Environment.ProcessPath
            ?? throw new WtnException("--jobs: cannot tell which executable this process runs; run without --jobs");
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Under `dotnet wtn.dll` the process is the host: the stage process needs the assembly as its first argument.
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
            psi.ArgumentList.Add(typeof(StageProcesses).Assembly.Location);
        foreach (var a in globalArgs)
            psi.ArgumentList.Add(a);
        foreach (
            var a in (string[])
                [
                    "run",
                    Path.Combine(experimentDir, ExperimentRunner.RunConfigFile),
                    "--runs-dir",
                    Path.GetDirectoryName(experimentDir)!,
                    "--only",
                    task.Only,
                ]
        )
            psi.ArgumentList.Add(a);
        if (task.Unit is { } k)
        {
            psi.ArgumentList.Add("--unit");
            psi.ArgumentList.Add($"{k}");
        }
        psi.Environment[StopWithParentVariable] = "1";
        var logDir = Path.Combine(experimentDir, "logs");
        Directory.CreateDirectory(logDir);
        var path = Path.Combine(logDir, $"seed-{task.Seed}-{task.Stage}{(task.Unit is { } u ? $"-unit-{u}" : "")}.log");
        var started = new Started(
            task,
            new Process { StartInfo = psi },
            new StreamWriter(path, append: true) { AutoFlush = true },
            path,
            log
        );
        try
        {
            started.Process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            started.Dispose();
            return new Failed(new StageExit(-1, $"cannot start {exe} ({e.Message})", path));
        }
        started.Process.BeginOutputReadLine();
        started.Process.BeginErrorReadLine();
        log.Report($"{task}: started, process {started.Process.Id}, log {path}");
        return started;
    }

    sealed record Failed(StageExit Exit) : IStageProcess
    {
        public StageExit Wait(CancellationToken stop) => Exit;
    }

    /// <summary>A running stage process: its lines go to its log file and, prefixed with the stage, to the run's log.</summary>
    sealed class Started : IStageProcess, IDisposable
    {
        readonly StageTask task;
        readonly StreamWriter file;
        readonly string path;
        readonly IProgress<string> log;
        string? error;

        public Started(StageTask task, Process process, StreamWriter file, string path, IProgress<string> log)
        {
            (this.task, Process, this.file, this.path, this.log) = (task, process, file, path, log);
            process.OutputDataReceived += (_, e) => Relay(e.Data, false);
            process.ErrorDataReceived += (_, e) => Relay(e.Data, true);
        }

        public Process Process { get; }

        void Relay(string? line, bool isError)
        {
            if (line is null)
                return;
            lock (file)
            {
                file.WriteLine(line);
                if (isError && line.Trim().Length > 0)
                    error = line.Trim();
            }
            log.Report($"[{task}] {line}");
        }

        public StageExit Wait(CancellationToken stop)
        {
            try
            {
                using (
                    stop.Register(() =>
                    {
                        try
                        {
                            Process.StandardInput.Close();
                        }
                        catch (IOException) { } // already gone
                    })
                )
                {
                    Stopwatch? stopping = null;
                    bool killed = false;
                    while (!Process.WaitForExit(TimeSpan.FromSeconds(1)))
                        if (
                            !killed
                            && stop.IsCancellationRequested
                            && (stopping ??= Stopwatch.StartNew()).Elapsed > StopSignals.Patience
                        )
                        {
                            killed = true;
                            log.Report(
                                $"{task}: not stopped {StopSignals.Patience.TotalMinutes:0} minutes after it was asked to; killed"
                            );
                            Process.Kill(entireProcessTree: true);
                        }
                }
                Process.WaitForExit(); // drains the output relays
                log.Report($"{task}: {(Process.ExitCode == 0 ? "done" : $"ended with exit code {Process.ExitCode}")}");
                lock (file)
                    return new StageExit(Process.ExitCode, error, path);
            }
            finally
            {
                Dispose();
            }
        }

        public void Dispose()
        {
            lock (file)
                file.Dispose();
            Process.Dispose();
        }
    }

    /// <summary>In a stage process started here: cancels <paramref name="cts"/> when the parent closes our standard input or dies.</summary>
    public static void StopWhenParentGoes(CancellationTokenSource cts)
    {
        if (Environment.GetEnvironmentVariable(StopWithParentVariable) != "1")
            return;
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
        })
        {
            IsBackground = true,
            Name = "parent watch",
        };
        t.Start();
    }
}
