using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace WideThenNarrow.Training;

/// <summary>
/// A checkpoint container: named binary sections behind a header with the payload length and its SHA-256, so a
/// truncated or corrupt file is refused with one line naming it. Written atomically: temp file, fsync, rename.
/// Layout: "WTNCKPT1" (8 bytes), payload length (int64 LE), SHA-256 of the payload (32 bytes), payload;
/// payload = section count (int32), then per section: name (BinaryWriter string), length (int64), bytes.
/// </summary>
public static class CheckpointFile
{
    static readonly byte[] Magic = "WTNCKPT1"u8.ToArray();
    const int HeaderSize = 8 + 8 + 32;

    public static void Write(string path, IReadOnlyList<(string Name, Action<BinaryWriter> Write)> sections)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = path + ".tmp";
        // Disk full, quota, file-size limit, I/O error: the previous checkpoint is untouched (only the temp file was being written).
        WriteFailure.Replace(
            path,
            tmp,
            () => WriteTemp(tmp, sections),
            why =>
            {
                // Only the temporary file was written: whatever *.ckpt is there (PATH itself too, when rewritten) is whole.
                var previous = Directory.GetFiles(dir, "*.ckpt").Order(StringComparer.Ordinal).LastOrDefault();
                return $"cannot write checkpoint {path}: {why}; "
                    + (
                        previous is null
                            ? "there is no earlier checkpoint: free space on that disk and run the same command again (the run starts over)"
                            : $"the previous checkpoint ({Path.GetFileName(previous)}) is intact: free space on that disk and run the same command again to resume"
                    );
            }
        );
    }

    static void WriteTemp(string tmp, IReadOnlyList<(string Name, Action<BinaryWriter> Write)> sections)
    {
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20))
        {
            fs.Write(new byte[HeaderSize]);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long payload = 0;
            void Emit(ReadOnlySpan<byte> bytes)
            {
                fs.Write(bytes);
                hash.AppendData(bytes);
                payload += bytes.Length;
            }
            Span<byte> i64 = stackalloc byte[8];
            BinaryPrimitives.WriteInt32LittleEndian(i64, sections.Count);
            Emit(i64[..4]);
            foreach (var (name, write) in sections)
            {
                using var ms = new MemoryStream();
                using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
                    w.Write(name);
                long nameLen = ms.Length;
                using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
                    write(w);
                var buf = ms.GetBuffer().AsSpan(0, (int)ms.Length);
                Emit(buf[..(int)nameLen]);
                BinaryPrimitives.WriteInt64LittleEndian(i64, ms.Length - nameLen);
                Emit(i64);
                Emit(buf[(int)nameLen..]);
            }
            var header = new byte[HeaderSize];
            Magic.CopyTo(header, 0);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), payload);
            hash.GetHashAndReset().CopyTo(header, 16);
            fs.Position = 0;
            fs.Write(header);
            fs.Flush(flushToDisk: true);
        }
    }

    /// <summary>Reads and verifies a checkpoint; every section's bytes by name.</summary>
    public static IReadOnlyDictionary<string, byte[]> Read(string path)
    {
        if (!File.Exists(path))
            throw new WtnException($"checkpoint not found: {path}");
        byte[] all;
        try
        {
            all = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new WtnException($"cannot read checkpoint {path}: {e.Message}", e);
        }
        if (all.Length < HeaderSize || !all.AsSpan(0, 8).SequenceEqual(Magic))
            throw new WtnException(
                $"{path} is not a wtn checkpoint (bad header); delete it or point to another checkpoint"
            );
        long length = BinaryPrimitives.ReadInt64LittleEndian(all.AsSpan(8));
        if (length != all.Length - HeaderSize)
            throw new WtnException(
                $"checkpoint {path} is truncated or padded ({all.Length - HeaderSize} payload bytes, header says {length}); delete it to resume from an earlier checkpoint"
            );
        var payload = all.AsSpan(HeaderSize);
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(all.AsSpan(16, 32)))
            throw new WtnException(
                $"checkpoint {path} is corrupt (SHA-256 mismatch); delete it to resume from an earlier checkpoint"
            );
        var result = new Dictionary<string, byte[]>();
        using var r = new BinaryReader(new MemoryStream(all, HeaderSize, (int)length, writable: false), Encoding.UTF8);
        int count = r.ReadInt32();
        for (int i = 0; i < count; i++)
        {
            var name = r.ReadString();
            long len = r.ReadInt64();
            result[name] = r.ReadBytes((int)len);
        }
        return result;
    }

    /// <summary>
    /// True when both files exist and their headers (payload length and SHA-256) match: the same checkpoint, told
    /// without reading the payloads.
    /// </summary>
    public static bool SamePayload(string a, string b)
    {
        static byte[]? Header(string path)
        {
            try
            {
                using var fs = new FileStream(
                    path,
                    FileMode.Open,
                    FileAccess.Read,
                    FileShare.ReadWrite | FileShare.Delete,
                    1
                );
                var h = new byte[HeaderSize];
                return fs.ReadAtLeast(h, HeaderSize, throwOnEndOfStream: false) == HeaderSize ? h : null;
            }
            catch (IOException)
            {
                return null;
            }
        }
        return Header(a) is { } ha && Header(b) is { } hb && ha.AsSpan().SequenceEqual(hb);
    }
}
