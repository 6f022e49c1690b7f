namespace WideThenNarrow.Tests.Runtime;

public class WriteFailureTests
{
    [Fact]
    public void Replace_swaps_in_the_new_file_whole_or_leaves_the_old_one_and_no_temporary_file()
    {
        var dir = Directory.CreateTempSubdirectory("wtn-replace").FullName;
        try
        {
            var path = Path.Combine(dir, "model.safetensors");
            File.WriteAllText(path, "old");

            // The temporary file keeps the extension last (writers that choose the format by it see the right one).
            string? seen = null;
            WriteFailure.Replace(path, tmp =>
            {
                seen = tmp;
                File.WriteAllText(tmp, "new");
            });
            Assert.Equal(".safetensors", Path.GetExtension(seen));
            Assert.Equal(dir, Path.GetDirectoryName(seen));
            Assert.Equal("new", File.ReadAllText(path));

            // A write that fails half-way (a full disk): the old file stays, the temporary file goes, and the one-line
            // error names the file, the cause and what to do.
            var e = Assert.Throws<WtnException>(() =>
                WriteFailure.Replace(
                    path,
                    tmp =>
                    {
                        File.WriteAllText(tmp, "ha");
                        throw new IOException("No space left on device : '" + tmp + "'");
                    },
                    "free some space or choose another --out"
                )
            );
            Assert.StartsWith($"cannot write {path}: No space left on device", e.Message);
            Assert.EndsWith("; free some space or choose another --out", e.Message);
            Assert.Equal("new", File.ReadAllText(path));
            Assert.Equal([path], Directory.GetFiles(dir));

            // A path without an extension.
            var plain = Path.Combine(dir, "vocab");
            WriteFailure.Replace(plain, tmp => File.WriteAllText(tmp, "a\n"));
            Assert.Equal("a\n", File.ReadAllText(plain));
            Assert.Equal(2, Directory.GetFiles(dir).Length);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
