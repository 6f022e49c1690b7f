using System.IO.Compression;

namespace WideThenNarrow.Data;

/// <summary>Reading whole data files with errors that name the file.</summary>
static class DataFiles
{
    /// <summary>All bytes of <paramref name="path"/>, gunzipped when the file starts with the gzip magic.</summary>
    public static byte[] ReadAllMaybeGzipped(string path)
    {
        if (!File.Exists(path)) throw new WtnException($"{path}: file not found");
        byte[] raw;
        try
        {
            raw = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new WtnException($"{path}: cannot read ({e.Message})", e);
        }
        if (raw.Length < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
        try
        {
            using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            using var output = new MemoryStream(raw.Length * 4);
            gz.CopyTo(output);
            return output.ToArray();
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw new WtnException($"{path}: the gzip stream is truncated or corrupt ({e.Message}); fetch or copy the file again", e);
        }
    }

    public static long SizeOnDisk(string folder) =>
        Directory.Exists(folder) ? Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) : 0;
}
