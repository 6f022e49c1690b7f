using System.Globalization;
using System.Runtime.InteropServices;

namespace WideThenNarrow.Runtime;

/// <summary>
/// Checks on files named by untrusted input (a manifest, a config, a weights or data file) before they are opened:
/// only regular files, of a bounded size, and for paths a manifest names, inside the manifest's folder. Opening
/// <c>/dev/zero</c> reads forever and opening a FIFO blocks in open(2), so the file type is read without opening it.
/// </summary>
public static class InputFiles
{
    /// <summary>
    /// The file <paramref name="relative"/> that the manifest <paramref name="manifestPath"/> names, resolved against the
    /// manifest's folder and checked by <see cref="RequireRegular"/>. Unless <paramref name="allowOutside"/>, the path,
    /// with every link resolved, must stay inside that folder.
    /// </summary>
    public static string Beside(string manifestPath, string relative, string what, bool allowOutside)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(manifestPath))!;
        if (string.IsNullOrWhiteSpace(relative))
            throw new WtnException($"{manifestPath}: the {what} path is empty");
        var full = Path.GetFullPath(Path.Combine(folder, relative));
        if (!allowOutside)
        {
            var realFolder = RealPath(folder) ?? folder;
            var real = RealPath(full) ?? full;
            if (!IsInside(real, realFolder))
                throw new WtnException(
                    $"{manifestPath}: the {what} '{relative}' resolves to {real}, outside the manifest's folder {realFolder}; keep the files beside the manifest, or pass --allow-outside if you trust it"
                );
        }
        RequireRegular(full, $"{what} {full} (named by {manifestPath})");
        return full;
    }

    /// <summary>
    /// Throws a one-line <see cref="WtnException"/> unless <paramref name="path"/> is an existing regular file (links
    /// followed) of at most <paramref name="maxBytes"/> bytes; <paramref name="what"/> names it in the message.
    /// Returns the file's length.
    /// </summary>
    public static long RequireRegular(string path, string what, long maxBytes = long.MaxValue)
    {
        if (Directory.Exists(path))
            throw new WtnException($"{what} is a folder, not a file");
        var info = new FileInfo(path);
        if (!info.Exists)
            throw new WtnException(
                info.LinkTarget is { } link ? $"{what} is a link to {link}, which does not exist" : $"{what} not found"
            );
        if (Kind(path) is { } kind && kind != "regular file")
            throw new WtnException($"{what} is a {kind}, not a regular file; give a file");
        // Length of the link's target, not of the link.
        long length = info.LinkTarget is null ? info.Length : new FileInfo(RealPath(path) ?? path).Length;
        if (length > maxBytes)
            throw new WtnException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"{what} is {length:N0} bytes, more than the {maxBytes:N0} such a file can sensibly hold; is it the right file?"
                )
            );
        return length;
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or lies under it (both absolute).</summary>
    public static bool IsInside(string path, string folder)
    {
        var f = Path.TrimEndingDirectorySeparator(folder) + Path.DirectorySeparatorChar;
        var cmp = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return (Path.TrimEndingDirectorySeparator(path) + Path.DirectorySeparatorChar).StartsWith(f, cmp);
    }

    /// <summary>The path with every link resolved (realpath(3)), or null where that is not available or fails.</summary>
    static string? RealPath(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName;
        var p = realpath(path, IntPtr.Zero);
        if (p == IntPtr.Zero)
            return null;
        try
        {
            return Marshal.PtrToStringUTF8(p);
        }
        finally
        {
            free(p);
        }
    }

    /// <summary>The file type after links (Linux statx(2)): "regular file", "FIFO", "device", ...; null when unknown.</summary>
    static string? Kind(string path)
    {
        if (!OperatingSystem.IsLinux())
            return null;
        var buffer = new byte[256];
        try
        {
            if (statx(AtFdCwd, path, 0, StatxType, buffer) != 0)
                return null;
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
        int mode = BitConverter.ToUInt16(buffer, StatxModeOffset) & 0xF000;
        return mode switch
        {
            0x8000 => "regular file",
            0x4000 => "folder",
            0x1000 => "FIFO (named pipe)",
            0x2000 => "character device",
            0x6000 => "block device",
            0xC000 => "socket",
            _ => "special file",
        };
    }

    const int AtFdCwd = -100;
    const uint StatxType = 0x1;

    /// <summary>stx_mode's offset in struct statx, the same on every Linux architecture.</summary>
    const int StatxModeOffset = 28;

    [DllImport("libc", SetLastError = true)]
    static extern int statx(
        int dirfd,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string path,
        int flags,
        uint mask,
        byte[] buffer
    );

    [DllImport("libc")]
    static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc")]
    static extern void free(IntPtr p);
}
