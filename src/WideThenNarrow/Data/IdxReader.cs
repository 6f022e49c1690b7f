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

    /// <summary>Far above any IDX dataset (Fashion-MNIST's training images are 47 MB), and the largest byte array .NET makes.</summary>
    public static readonly long MaxBytes = Array.MaxLength;

    /// <summary>
    /// Reads and validates one IDX file of unsigned bytes with the given magic number. Only as many bytes as the header
    /// promises are unpacked (plus one to see that nothing follows), so a gzip bomb costs no more than its header says.
    /// </summary>
    public static IdxFile Read(string path, int expectedMagic)
    {
        using var s = DataFiles.OpenMaybeGzipped(path);
        try
        {
            return Read(s, path, expectedMagic);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw DataFiles.Corrupt(path, e);
        }
    }

    static IdxFile Read(Stream s, string path, int expectedMagic)
    {
        var head = new byte[4];
        int got = s.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        if (got == 0)
            throw new WtnException($"{path}: the file is empty");
        if (got < 4)
            throw new WtnException($"{path}: {got} bytes is too short for an IDX header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(head);
        if (magic != expectedMagic)
            throw new WtnException(
                $"{path}: magic number 0x{magic:x8} where an IDX {(expectedMagic == ImagesMagic ? "image" : "label")} file has 0x{expectedMagic:x8}; is this the right file?"
            );
        int nd = expectedMagic & 0xff;
        int header = 4 + 4 * nd;
        var dimBytes = new byte[4 * nd];
        got = s.ReadAtLeast(dimBytes, dimBytes.Length, throwOnEndOfStream: false);
        if (got < dimBytes.Length)
            throw new WtnException($"{path}: truncated inside the IDX header ({4 + got} of {header} bytes)");
        var dims = new int[nd];
        long values = 1;
        for (int d = 0; d < nd; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(dimBytes.AsSpan(4 * d));
            if (dims[d] <= 0)
                throw new WtnException($"{path}: dimension {d} is {dims[d]}, must be positive");
            values = Math.Min(values * dims[d], MaxBytes + 1); // both factors below 2^32: no overflow
        }
        long expected = header + values;
        if (expected > MaxBytes)
            throw new WtnException(
                $"{path}: the header promises {string.Join("x", dims)} values, more than the {MaxBytes:N0} bytes an IDX file can hold here; the file is corrupt"
            );
        var bytes = new byte[expected];
        head.CopyTo(bytes, 0);
        dimBytes.CopyTo(bytes, 4);
        got = s.ReadAtLeast(bytes.AsSpan(header), (int)values, throwOnEndOfStream: false);
        if (got < values)
            throw new WtnException(
                $"{path}: truncated: the header promises {string.Join("x", dims)} values ({expected} bytes) but the data holds {header + got} bytes"
            );
        if (s.ReadByte() >= 0)
            throw new WtnException(
                $"{path}: bytes beyond the {string.Join("x", dims)} values the header promises; the file is corrupt"
            );
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
            throw new WtnException(
                $"{labelsPath}: {labels.Count} labels for the {images.Count} images of {imagesPath}; the pair does not match"
            );
        var labelValues = labels.Bytes.AsSpan(labels.Offset);
        for (int i = 0; i < labelValues.Length; i++)
            if (labelValues[i] >= classes)
                throw new WtnException(
                    $"{labelsPath}: label {labelValues[i]} at index {i} is out of range for {classes} classes"
                );

        using var scope = NewDisposeScope();
        var x = tensor(
            images.Bytes.AsSpan(images.Offset).ToArray(),
            [images.Count, 1, images.Dims[1], images.Dims[2]],
            ScalarType.Byte
        );
        var y = tensor(labelValues.ToArray(), [labels.Count], ScalarType.Byte).to(ScalarType.Int64);
        return (x.DetachFromDisposeScope(), y.DetachFromDisposeScope());
    }
}
