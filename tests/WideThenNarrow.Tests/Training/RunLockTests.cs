using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Training;

public class RunLockTests
{
    [Fact]
    public void A_second_holder_of_a_run_folder_is_refused_in_one_line_until_the_first_lets_go()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"wtn-lock-{Guid.NewGuid():N}");
        try
        {
            using (RunLock.Acquire(dir))
            {
                var e = Assert.Throws<WtnException>(() => RunLock.Acquire(dir));
                Assert.Contains(dir, e.Message);
                Assert.Contains($"process {Environment.ProcessId}", e.Message);
                Assert.DoesNotContain('\n', e.Message);
            }
            // Released: the folder can be taken again, and the owner note is gone.
            using (RunLock.Acquire(dir)) { }
            Assert.False(File.Exists(Path.Combine(dir, ".lock.owner")));
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
