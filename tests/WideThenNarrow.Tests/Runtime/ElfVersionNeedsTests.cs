using WideThenNarrow.Runtime;

namespace WideThenNarrow.Tests.Runtime;

/// <summary>The ELF walk the build task and <c>wtn info</c> share, on TorchSharp's own library.</summary>
public class ElfVersionNeedsTests
{
    [Fact]
    public void Weakening_the_need_flips_one_flag_once_and_reads_back()
    {
        // The pristine copy in the NuGet cache (the build patches only the one in the output folder).
        var home = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var pristine = Directory.Exists(Path.Combine(home, "torchsharp"))
            ? Directory
                .GetFiles(Path.Combine(home, "torchsharp"), "libLibTorchSharp.so", SearchOption.AllDirectories)
                .FirstOrDefault()
            : null;
        Assert.True(pristine is not null, $"no libLibTorchSharp.so under {home}/torchsharp: restore first");
        var dir = TestData.NewTempFolder("elf");
        try
        {
            var lib = Path.Combine(dir, "libLibTorchSharp.so");
            File.Copy(pristine!, lib);
            Assert.False(ElfVersionNeeds.IsWeak(lib, "GLIBCXX_3.4.32"));
            Assert.Null(ElfVersionNeeds.IsWeak(lib, "GLIBCXX_9.9.99"));
            Assert.Equal("no-such-need", ElfVersionNeeds.Weaken(lib, "GLIBCXX_9.9.99"));

            Assert.Equal("patched", ElfVersionNeeds.Weaken(lib, "GLIBCXX_3.4.32"));
            Assert.True(ElfVersionNeeds.IsWeak(lib, "GLIBCXX_3.4.32"));
            Assert.Equal("already-patched", ElfVersionNeeds.Weaken(lib, "GLIBCXX_3.4.32"));
            var (before, after) = (File.ReadAllBytes(pristine!), File.ReadAllBytes(lib));
            Assert.Equal(before.Length, after.Length);
            Assert.Equal(1, before.Zip(after).Count(p => p.First != p.Second));
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));

            File.WriteAllText(lib, "not an ELF file at all, but longer than sixty-four bytes so the header is read.");
            Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.IsWeak(lib, "GLIBCXX_3.4.32"));
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
