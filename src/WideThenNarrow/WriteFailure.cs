namespace WideThenNarrow;

/// <summary>
/// Recognises the exceptions a failed file write raises, so every writer can clean up and name the file in one line.
/// Besides <see cref="IOException"/> (disk full, quota, I/O error) and <see cref="UnauthorizedAccessException"/>
/// (read-only folder), .NET reports EFBIG — a file past the file system's largest file (FAT32's 4 GB) or past the
/// process's file-size limit (<c>ulimit -f</c>) — as an <see cref="ArgumentOutOfRangeException"/> thrown from System.IO.
/// </summary>
public static class WriteFailure
{
    public static bool Is(Exception e) => e is IOException or UnauthorizedAccessException || IsFileTooLarge(e);

    public static bool IsFileTooLarge(Exception e) =>
        e is ArgumentOutOfRangeException { ParamName: "value", TargetSite.DeclaringType: { } t }
        && t.Assembly == typeof(FileStream).Assembly
        && (t.Name == "Interop" // Interop.ThrowExceptionForIoErrno (File.Copy, SetLength)
            || t.Namespace is { } ns && (ns.StartsWith("System.IO", StringComparison.Ordinal) || ns.StartsWith("Microsoft.Win32", StringComparison.Ordinal)));

    /// <summary>The failure's first line, with EFBIG's message replaced by one that says what to do.</summary>
    public static string Describe(Exception e) =>
        IsFileTooLarge(e)
            ? "the file is larger than the file system or this process's file-size limit allows (ulimit -f)"
            : e.Message.Split('\n')[0].TrimEnd();
}
