#nullable enable
using System;
using System.IO;
using System.Text;

namespace WideThenNarrow.Runtime;

/// <summary>
/// The version needs (<c>.gnu.version_r</c>) of a 64-bit little-endian ELF shared library: whether one is marked weak
/// (<c>VER_FLG_WEAK</c> in its <c>Elf64_Vernaux</c> entry), and marking it so. Why: TorchSharp's libLibTorchSharp.so
/// needs GLIBCXX_3.4.32 for one symbol nothing relocates against (docs/native-runtime.md). This one file serves both
/// sides: the library reads the flag for <c>wtn info</c>, and Directory.Build.targets compiles the same file into its
/// inline build task (RoslynCodeTaskFactory, netstandard: hence byte arrays and BitConverter) that sets the flag.
/// </summary>
public static class ElfVersionNeeds
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    static readonly string[] LibStdCxxPaths =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6",
        "/usr/lib/libstdc++.so.6",
    };

    /// <summary>The system's libstdc++, if it is at one of the usual places.</summary>
    public static string? SystemLibStdCxx()
    {
        foreach (var path in LibStdCxxPaths)
            if (File.Exists(path))
                return path;
        return null;
    }

    /// <summary>True when the system libstdc++ defines <paramref name="version"/> (so the need is met as it is).</summary>
    public static bool SystemProvides(string version) =>
        SystemLibStdCxx() is { } lib && Encoding.ASCII.GetString(File.ReadAllBytes(lib)).Contains(version + "\0");

    /// <summary>True if the named version need is marked weak, false if strong, null if absent.</summary>
    public static bool? IsWeak(string path, string version)
    {
        var b = File.ReadAllBytes(path);
        return FlagsAt(b, path, version) is { } at ? (BitConverter.ToUInt16(b, at) & VerFlgWeak) != 0 : null;
    }

    /// <summary>
    /// Marks the need weak in place: "patched", "already-patched" or "no-such-need". The file is replaced through a
    /// temporary file, so a half-written shared library is never left behind.
    /// </summary>
    public static string Weaken(string path, string version)
    {
        var b = File.ReadAllBytes(path);
        if (FlagsAt(b, path, version) is not { } at)
            return "no-such-need";
        ushort flags = BitConverter.ToUInt16(b, at);
        if ((flags & VerFlgWeak) != 0)
            return "already-patched";
        flags |= VerFlgWeak;
        b[at] = (byte)(flags & 0xff);
        b[at + 1] = (byte)(flags >> 8);
        var tmp = path + ".wtn-patch.tmp";
        File.WriteAllBytes(tmp, b);
        File.Delete(path); // netstandard's File.Move cannot overwrite
        File.Move(tmp, path);
        return "patched";
    }

    /// <summary>The offset of the <c>vna_flags</c> of the need for <paramref name="version"/>, or null.</summary>
    static int? FlagsAt(byte[] b, string path, string version)
    {
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[4] != 2 || b[5] != 1)
            throw new InvalidDataException($"{path}: not a 64-bit little-endian ELF file");
        long shoff = BitConverter.ToInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A),
            shnum = BitConverter.ToUInt16(b, 0x3C);
        for (int s = 0; s < shnum; s++)
        {
            int sh = (int)(shoff + (long)s * shentsize);
            if (BitConverter.ToUInt32(b, sh + 4) != ShtGnuVerneed)
                continue;
            long off = BitConverter.ToInt64(b, sh + 0x18);
            int link = (int)BitConverter.ToUInt32(b, sh + 0x28);
            long strOff = BitConverter.ToInt64(b, (int)(shoff + (long)link * shentsize) + 0x18);
            long vn = off;
            while (true)
            {
                int cnt = BitConverter.ToUInt16(b, (int)vn + 2);
                uint aux = BitConverter.ToUInt32(b, (int)vn + 8),
                    next = BitConverter.ToUInt32(b, (int)vn + 12);
                long va = vn + aux;
                for (int k = 0; k < cnt; k++)
                {
                    int name = (int)(strOff + BitConverter.ToUInt32(b, (int)va + 8)),
                        end = name;
                    while (b[end] != 0)
                        end++;
                    if (Encoding.ASCII.GetString(b, name, end - name) == version)
                        return (int)va + 4;
                    uint vnaNext = BitConverter.ToUInt32(b, (int)va + 12);
                    if (vnaNext == 0)
                        break;
                    va += vnaNext;
                }
                if (next == 0)
                    break;
                vn += next;
            }
        }
        return null;
    }
}

#if !NET
/// <summary>The build side (Directory.Build.targets): weakens the need unless the system libstdc++ provides it.</summary>
public sealed class WeakenVersionNeed : Microsoft.Build.Utilities.Task
{
    [Microsoft.Build.Framework.Required]
    public string Library { get; set; } = "";

    [Microsoft.Build.Framework.Required]
    public string Version { get; set; } = "";

    [Microsoft.Build.Framework.Output]
    public string Result { get; set; } = "";

    public override bool Execute()
    {
        Result =
            !File.Exists(Library) ? "absent"
            : ElfVersionNeeds.SystemProvides(Version) ? "not-needed"
            : ElfVersionNeeds.Weaken(Library, Version);
        return true;
    }
}
#endif
