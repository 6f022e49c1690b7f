using WideThenNarrow.Data;
using WideThenNarrow.Models;

namespace WideThenNarrow.Tests.Data;

/// <summary>Any folder of the four IDX files is an image dataset by path (MNIST, KMNIST, EMNIST's layout).</summary>
public class IdxFolderTests
{
    static string CopyOfFashionMnist(string parent, string name, bool gzipped)
    {
        var folder = Path.Combine(parent, name);
        Directory.CreateDirectory(folder);
        foreach (var f in Directory.GetFiles(TestData.Ensure("fashion-mnist"), "*-ubyte.gz"))
        {
            var target = Path.Combine(folder, Path.GetFileName(f));
            if (gzipped)
                File.Copy(f, target);
            else
            {
                using var gz = new System.IO.Compression.GZipStream(
                    File.OpenRead(f),
                    System.IO.Compression.CompressionMode.Decompress
                );
                using var raw = File.Create(Path.ChangeExtension(target, null));
                gz.CopyTo(raw);
            }
        }
        return folder;
    }

    [Fact]
    public void A_folder_of_idx_files_loads_by_path_with_numbered_or_named_classes()
    {
        var dir = TestData.NewTempFolder("idx");
        try
        {
            var raw = CopyOfFashionMnist(dir, "kmnist-like", gzipped: false);
            using (var ds = ImageDataset.Load(raw, "/nonexistent"))
            {
                Assert.Equal("kmnist-like", ds.Name);
                Assert.Equal(Path.GetFullPath(raw), ds.Folder);
                Assert.Equal([.. Enumerable.Range(0, 10).Select(i => i.ToString())], ds.Classes);
                Assert.Equal(
                    (60000, 10000, 1, 28, 28),
                    (ds.Train.Count, ds.Test.Count, ds.Train.Channels, ds.Train.Height, ds.Train.Width)
                );
                Assert.True(ds.Train.Labels.equal(TestData.FashionMnist.Train.Labels).all().item<bool>());
                // An export records the absolute folder, so wtn eval finds the data from any working folder.
                Assert.Equal(Path.GetFullPath(raw), ModelExport.ImageInput(ds).Dataset);
            }

            var named = CopyOfFashionMnist(dir, "named", gzipped: true);
            File.WriteAllLines(Path.Combine(named, IdxFolder.ClassesFile), ImageDataset.FashionMnistClasses);
            using (var ds = ImageDataset.Load(named, "/nonexistent"))
                Assert.Equal(ImageDataset.FashionMnistClasses, ds.Classes);

            // Strict: too few class names for the labels, or a missing file, is one line naming the file.
            File.WriteAllLines(Path.Combine(named, IdxFolder.ClassesFile), ["a", "b"]);
            Assert.Contains(
                "out of range for 2 classes",
                Assert.Throws<WtnException>(() => ImageDataset.Load(named, "/nonexistent")).Message
            );
            File.Delete(Path.Combine(named, "t10k-labels-idx1-ubyte.gz"));
            Assert.Contains(
                "t10k-labels-idx1-ubyte",
                Assert.Throws<WtnException>(() => ImageDataset.Load(named, "/nonexistent")).Message
            );
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
