using System.Buffers.Binary;
using static TorchSharp.torch;

namespace WideThenNarrow.Data;

/// <summary>
/// The IDX format of MNIST and Fashion-MNIST, raw or gzipped: a big-endian magic 0x0000TTDD (TT = 0x08 for
/// unsigned bytes, DD = number of dimensions), DD big-endian int32 sizes, then the values. Strict: every
/// mismatch between header and file is an error naming the file.
/// </summary>
public static class IdxReader
{
    public const int ImagesMagic = 0x00000803;
    public const int LabelsMagic = 0x00000801;

    /// <summary>The header of an IDX file and where its values start in <see cref="Bytes"/>.</summary>
    public sealed record IdxFile(string Path, int[] Dims, byte[] Bytes, int Offset)
    {
        public int Count => Dims[0];
    }

    /// <summary>Reads and validates one IDX file of unsigned bytes with the given magic number.</summary>
    public static IdxFile Read(string path, int expectedMagic)
    {
        var bytes = DataFiles.ReadAllMaybeGzipped(path);
        if (bytes.Length == 0) throw new WtnException($"{path}: the file is empty");
        if (bytes.Length < 4) throw new WtnException($"{path}: {bytes.Length} bytes is too short for an IDX header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (magic != expectedMagic)
            throw new WtnException($"{path}: magic number 0x{magic:x8} where an IDX {(expectedMagic == ImagesMagic ? "image" : "label")} file has 0x{expectedMagic:x8}; is this the right file?");
        int nd = expectedMagic & 0xff;
        int header = 4 + 4 * nd;
        if (bytes.Length < header) throw new WtnException($"{path}: truncated inside the IDX header ({bytes.Length} of {header} bytes)");
        var dims = new int[nd];
        long values = 1;
        for (int d = 0; d < nd; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * d));
            if (dims[d] <= 0) throw new WtnException($"{path}: dimension {d} is {dims[d]}, must be positive");
            values *= dims[d];
        }
        long expected = header + values;
        if (bytes.Length < expected)
            throw new WtnException($"{path}: truncated: the header promises {string.Join("x", dims)} values ({expected} bytes) but the data holds {bytes.Length} bytes");
        if (bytes.Length > expected)
            throw new WtnException($"{path}: {bytes.Length - expected} bytes beyond the {string.Join("x", dims)} values the header promises; the file is corrupt");
        return new IdxFile(path, dims, bytes, header);
    }

    /// <summary>
    /// An image file (N,H,W) and its label file (N) as tensors: uint8 (N,1,H,W) and int64 (N), with every
    /// label below <paramref name="classes"/>.
    /// </summary>
    public static (Tensor Images, Tensor Labels) ReadPair(string imagesPath, string labelsPath, int classes)
    {
        var images = Read(imagesPath, ImagesMagic);
        var labels = Read(labelsPath, LabelsMagic);
        if (images.Count != labels.Count)
            throw new WtnException($"{labelsPath}: {labels.Count} labels for the {images.Count} images of {imagesPath}; the pair does not match");
        var labelValues = labels.Bytes.AsSpan(labels.Offset);
        for (int i = 0; i < labelValues.Length; i++)
            if (labelValues[i] >= classes)
                throw new WtnException($"{labelsPath}: label {labelValues[i]} at index {i} is out of range for {classes} classes");

        using var scope = NewDisposeScope();
        var x = tensor(images.Bytes.AsSpan(images.Offset).ToArray(), [images.Count, 1, images.Dims[1], images.Dims[2]], ScalarType.Byte);
        var y = tensor(labelValues.ToArray(), [labels.Count], ScalarType.Byte).to(ScalarType.Int64);
        return (x.DetachFromDisposeScope(), y.DetachFromDisposeScope());
    }
}
