using System.Buffers.Binary;
using System.Text;

namespace WideThenNarrow.Runtime;

/// <summary>
/// Reads the version needs (<c>.gnu.version_r</c>) of a 64-bit little-endian ELF shared library.
/// The build (Directory.Build.targets) writes the same flag; this side only reads it for <c>wtn info</c>.
/// </summary>
public static class ElfVersionNeeds
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>True if the named version need is marked weak, false if strong, null if absent.</summary>
    public static bool? IsWeak(string path, string version)
    {
        var b = File.ReadAllBytes(path).AsSpan();
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[4] != 2 || b[5] != 1)
            throw new WtnException($"{path}: not a 64-bit little-endian ELF file");
        long shoff = BinaryPrimitives.ReadInt64LittleEndian(b[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(b[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(b[0x3C..]);
        for (int s = 0; s < shnum; s++)
        {
            var sh = b[(int)(shoff + (long)s * shentsize)..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != ShtGnuVerneed) continue;
            long off = BinaryPrimitives.ReadInt64LittleEndian(sh[0x18..]);
            int link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            long strOff = BinaryPrimitives.ReadInt64LittleEndian(b[(int)(shoff + (long)link * shentsize + 0x18)..]);
            long vn = off;
            while (true)
            {
                int cnt = BinaryPrimitives.ReadUInt16LittleEndian(b[(int)(vn + 2)..]);
                uint aux = BinaryPrimitives.ReadUInt32LittleEndian(b[(int)(vn + 8)..]);
                uint next = BinaryPrimitives.ReadUInt32LittleEndian(b[(int)(vn + 12)..]);
                long va = vn + aux;
                for (int k = 0; k < cnt; k++)
                {
                    uint nameOff = BinaryPrimitives.ReadUInt32LittleEndian(b[(int)(va + 8)..]);
                    var name = b[(int)(strOff + nameOff)..];
                    name = name[..name.IndexOf((byte)0)];
                    if (Encoding.ASCII.GetString(name) == version)
                        return (BinaryPrimitives.ReadUInt16LittleEndian(b[(int)(va + 4)..]) & VerFlgWeak) != 0;
                    uint vnaNext = BinaryPrimitives.ReadUInt32LittleEndian(b[(int)(va + 12)..]);
                    if (vnaNext == 0) break;
                    va += vnaNext;
                }
                if (next == 0) break;
                vn += next;
            }
        }
        return null;
    }
}
