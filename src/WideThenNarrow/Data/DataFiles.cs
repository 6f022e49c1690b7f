using System.IO.Compression;

namespace WideThenNarrow.Data;

/// <summary>Reading data files, raw or gzipped, with errors that name the file and bounds on what they unpack to.</summary>
static class DataFiles
{
    /// <summary>
    /// The content of <paramref name="path"/> as a stream, gunzipped when the file starts with the gzip magic. Read errors
    /// of a gzip stream are <see cref="InvalidDataException"/>s: pass them to <see cref="Corrupt"/>.
    /// </summary>
    public static Stream OpenMaybeGzipped(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new WtnException($"{path}: file not found");
        Runtime.InputFiles.RequireRegular(path, path);
        FileStream file;
        try
        {
            file = File.OpenRead(path);
        }
        catch (IOException e)
        {
            throw new WtnException($"{path}: cannot read ({e.Message})", e);
        }
        var magic = new byte[2];
        int n = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    /// <summary>
    /// All bytes of <paramref name="path"/>, gunzipped when the file starts with the gzip magic; a file (or its gzip
    /// stream) longer than <paramref name="maxBytes"/> is refused without unpacking the rest.
    /// </summary>
    public static byte[] ReadAllMaybeGzipped(string path, long maxBytes)
    {
        using var s = OpenMaybeGzipped(path);
        try
        {
            using var output = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = s.Read(buffer)) > 0)
            {
                if (output.Length + n > maxBytes)
                    throw new WtnException(
                        $"{path}: unpacks to more than {maxBytes:N0} bytes, more than such a file holds; the file is corrupt or not what it is named"
                    );
                output.Write(buffer, 0, n);
            }
            return output.ToArray();
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw Corrupt(path, e);
        }
    }

    /// <summary>The error for a gzip stream that fails to unpack.</summary>
    public static WtnException Corrupt(string path, Exception e) =>
        new(
            $"{path}: the gzip stream is truncated or corrupt ({e.Message.Split('\n')[0]}); fetch or copy the file again",
            e
        );

    public static long SizeOnDisk(string folder) =>
        Directory.Exists(folder)
            ? Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length)
            : 0;
}
