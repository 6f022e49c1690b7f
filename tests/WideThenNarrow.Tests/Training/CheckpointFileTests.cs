using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Training;

public class CheckpointFileTests
{
    [Fact]
    public void A_write_that_fails_midway_keeps_the_previous_checkpoint_and_says_what_to_do()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"wtn-ckpt-{Guid.NewGuid():N}");
        var path = Path.Combine(dir, "step-00000010.ckpt");
        try
        {
            CheckpointFile.Write(path, [("a", w => w.Write(new byte[] { 1, 2, 3 }))]);
            var before = File.ReadAllBytes(path);

            // The second section fails as a full disk does, after the first section's bytes went out.
            var e = Assert.Throws<WtnException>(() =>
                CheckpointFile.Write(
                    path,
                    [
                        ("a", w => w.Write(new byte[1 << 16])),
                        ("b", _ => throw new IOException("No space left on device")),
                    ]
                )
            );
            Assert.Contains(path, e.Message);
            Assert.Contains("No space left on device", e.Message);
            Assert.Contains("previous checkpoint (step-00000010.ckpt) is intact", e.Message);
            Assert.False(File.Exists(path + ".tmp"));
            Assert.Equal(before, File.ReadAllBytes(path));
            Assert.Equal(new byte[] { 1, 2, 3 }, CheckpointFile.Read(path)["a"]);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
