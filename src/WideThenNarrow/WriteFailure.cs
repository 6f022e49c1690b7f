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
        && (
            t.Name == "Interop" // Interop.ThrowExceptionForIoErrno (File.Copy, SetLength)
            || t.Namespace is { } ns
                && (
                    ns.StartsWith("System.IO", StringComparison.Ordinal)
                    || ns.StartsWith("Microsoft.Win32", StringComparison.Ordinal)
                )
        );

    /// <summary>
    /// Writes <paramref name="path"/> through <paramref name="tmp"/>: <paramref name="write"/> fills the temporary file,
    /// which is then renamed over <paramref name="path"/> (a writer that wrote nothing, such as a plot without data,
    /// leaves <paramref name="path"/> as it was). When a write fails the temporary file is deleted and a
    /// <see cref="WtnException"/> with <paramref name="message"/>(the failure's description) is thrown: the file under
    /// its final name is the previous one, whole, or the new one, whole.
    /// </summary>
    public static void Replace(string path, string tmp, Action write, Func<string, string> message)
    {
        try
        {
            write();
            if (File.Exists(tmp))
                File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (Is(e))
        {
            try
            {
                File.Delete(tmp);
            }
            catch (IOException) { }
            throw new WtnException(message(Describe(e)), e);
        }
    }

    /// <summary>
    /// <see cref="Replace(string, string, Action, Func{string, string})"/> through <c>PATH.PID.tmp</c> (the extension kept
    /// last, for writers that choose the format by it), with the usual message: which file, why, and
    /// <paramref name="advice"/>, what to do.
    /// </summary>
    public static void Replace(string path, Action<string> writeTemp, string advice = DefaultAdvice)
    {
        var ext = Path.GetExtension(path);
        var tmp = $"{path[..^ext.Length]}.{Environment.ProcessId}.tmp{ext}";
        Replace(path, tmp, () => writeTemp(tmp), why => CannotWrite(path, why, advice));
    }

    /// <summary>
    /// Appends <paramref name="text"/> to <paramref name="path"/> in one write (a history file such as sessions.jsonl,
    /// whose readers skip a half-written last line); a failure is a <see cref="WtnException"/> with the usual message.
    /// </summary>
    public static void Append(string path, string text, string advice = DefaultAdvice)
    {
        try
        {
            File.AppendAllText(path, text);
        }
        catch (Exception e) when (Is(e))
        {
            throw new WtnException(CannotWrite(path, Describe(e), advice), e);
        }
    }

    const string DefaultAdvice = "free space on that disk and run the same command again";

    static string CannotWrite(string path, string why, string advice) => $"cannot write {path}: {why}; {advice}";

    /// <summary>The failure's first line, with EFBIG's message replaced by one that says what to do.</summary>
    public static string Describe(Exception e) =>
        IsFileTooLarge(e)
            ? "the file is larger than the file system or this process's file-size limit allows (ulimit -f)"
            : e.Message.Split('\n')[0].TrimEnd();
}
