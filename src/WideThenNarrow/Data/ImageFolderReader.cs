using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using static TorchSharp.torch;

namespace WideThenNarrow.Data;

/// <summary>
/// Image folders as torchvision's ImageFolder reads them: root/train/&lt;class&gt;/*.png|jpg and root/test/&lt;class&gt;/...
/// (and optionally root/val/&lt;class&gt;/..., a validation split of the user's own),
/// classes sorted by folder name. All images must share one size. A dataset whose pixels are all gray
/// (R = G = B) loads with one channel, otherwise three.
/// </summary>
public static class ImageFolderReader
{
    static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg" };

    /// <param name="resize">When positive, every image is resized to resize x resize pixels (ImageSharp's default bicubic resampler, as <c>wtn predict</c> resizes) as it is read, so a
    /// folder of images of mixed sizes becomes one dataset; 0 keeps them as they are (they must then share one size).</param>
    public static ImageDataset Read(string root, int resize = 0)
    {
        if (resize < 0)
            throw new WtnException($"data.resize must be 0 (off) or positive, got {resize}");
        var trainDir = Path.Combine(root, "train");
        var testDir = Path.Combine(root, "test");
        if (!Directory.Exists(trainDir) || !Directory.Exists(testDir))
            throw new WtnException(
                $"{root}: an image folder dataset needs train/ and test/ subfolders, each with one subfolder of PNG/JPEG images per class"
            );
        var classes = Directory
            .GetDirectories(trainDir)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (classes.Length == 0)
            throw new WtnException($"{trainDir}: no class subfolders");
        var valDir = Path.Combine(root, "val");
        foreach (var dir in new[] { testDir, valDir }.Where(Directory.Exists))
        {
            var unknown = Directory
                .GetDirectories(dir)
                .Select(Path.GetFileName)
                .OfType<string>()
                .Except(classes)
                .Order(StringComparer.Ordinal)
                .ToArray();
            if (unknown.Length > 0)
                throw new WtnException($"{dir}: class folder '{unknown[0]}' has no counterpart in {trainDir}");
        }

        (int H, int W)? size = resize > 0 ? (resize, resize) : null;
        bool gray = true;
        var train = Load(trainDir, classes, ref size, ref gray, resize > 0);
        var test = Load(testDir, classes, ref size, ref gray, resize > 0);
        // An optional val/ is the user's own validation split, used instead of one carved from train/.
        var val = Directory.Exists(valDir) ? Load(valDir, classes, ref size, ref gray, resize > 0) : null;
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        return new ImageDataset(
            Path.GetFileName(full),
            ToSplit(train, size!.Value, gray),
            ToSplit(test, size.Value, gray),
            classes,
            val is null ? null : ToSplit(val, size.Value, gray)
        )
        {
            Folder = full,
        };
    }

    sealed record Loaded(List<byte[]> Pixels, List<long> Labels);

    static Loaded Load(string splitDir, string[] classes, ref (int H, int W)? size, ref bool gray, bool resize)
    {
        var loaded = new Loaded([], []);
        for (int c = 0; c < classes.Length; c++)
        {
            var dir = Path.Combine(splitDir, classes[c]);
            if (!Directory.Exists(dir))
                continue;
            foreach (
                var file in Directory
                    .GetFiles(dir)
                    .Where(f => Extensions.Contains(Path.GetExtension(f)))
                    .Order(StringComparer.Ordinal)
            )
            {
                using (var image = Load(file, "remove or replace it"))
                {
                    if (size is { } target && resize && (image.Height, image.Width) != target)
                        image.Mutate(x => x.Resize(target.W, target.H));
                    size ??= (image.Height, image.Width);
                    if ((image.Height, image.Width) != size.Value)
                        throw new WtnException(
                            $"{file}: {image.Width}x{image.Height} pixels where the first image is {size.Value.W}x{size.Value.H}; set data.resize to read them at one size"
                        );
                    var hwc = new byte[image.Height * image.Width * 3];
                    image.CopyPixelDataTo(hwc);
                    for (int i = 0; gray && i < hwc.Length; i += 3)
                        gray = hwc[i] == hwc[i + 1] && hwc[i] == hwc[i + 2];
                    loaded.Pixels.Add(hwc);
                    loaded.Labels.Add(c);
                }
            }
        }
        if (loaded.Pixels.Count == 0)
            throw new WtnException($"{splitDir}: no PNG or JPEG images in its class folders");
        return loaded;
    }

    static ImageSplit ToSplit(Loaded loaded, (int H, int W) size, bool gray)
    {
        using var scope = NewDisposeScope();
        long n = loaded.Pixels.Count;
        var hwc = tensor(loaded.Pixels.SelectMany(p => p).ToArray(), [n, size.H, size.W, 3], ScalarType.Byte);
        var nchw = hwc.permute(0, 3, 1, 2);
        if (gray)
            nchw = nchw.narrow(1, 0, 1);
        var labels = tensor(loaded.Labels.ToArray(), [n], ScalarType.Int64);
        return new ImageSplit(nchw.contiguous().DetachFromDisposeScope(), labels.DetachFromDisposeScope());
    }

    /// <summary>
    /// An image file as RGB, or a one-line error that names the file, says why it cannot be decoded, and ends with
    /// <paramref name="whatToDo"/>.
    /// </summary>
    internal static Image<Rgb24> Load(string file, string whatToDo)
    {
        try
        {
            return Image.Load<Rgb24>(file);
        }
        catch (Exception e)
            when (e
                    is UnknownImageFormatException
                        or InvalidImageContentException
                        or ImageFormatException
                        or NotSupportedException
                        or IOException
            )
        {
            throw new WtnException($"{file}: cannot decode the image ({e.Message.Split('\n')[0]}); {whatToDo}", e);
        }
    }
}
