namespace WideThenNarrow;

/// <summary>
/// A user-facing error: bad input, a missing or corrupt file, a bad option or config key.
/// The message is one line that names the file, key or option and says what to do; the CLI prints it
/// without a stack trace and exits non-zero.
/// </summary>
public class WtnException : Exception
{
    public WtnException(string message)
        : base(message) { }

    public WtnException(string message, Exception inner)
        : base(message, inner) { }
}
