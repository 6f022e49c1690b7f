using TorchSharp;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>The wide network's activations at chosen points for a batch (called under no_grad).</summary>
public interface IWideActivationSource
{
    /// <summary>Activations at <paramref name="indices"/> (ascending or not), in the same order.</summary>
    Tensor[] Points(Batch batch, params int[] indices);
}

/// <summary>Runs the wide network (eval mode) up to the highest requested point on every call.</summary>
public sealed class OnTheFlyWideActivations : IWideActivationSource
{
    readonly StagedModel wide;

    public OnTheFlyWideActivations(StagedModel wide) => this.wide = wide;

    public Tensor[] Points(Batch batch, params int[] indices)
    {
        wide.eval();
        var all = wide.ForwardPoints(batch.Input, indices.Max());
        return indices.Select(i => all[i]).ToArray();
    }
}

/// <summary>
/// Caches the wide network's activations on disk, keyed by the content of the batch: every block's run of stage 2
/// starts at epoch 0 with the same seed, so it sees the same batches as the block before it, and the wide forward
/// pass is paid once per batch instead of once per batch and block. On a miss the whole wide network runs once and
/// all its points are stored while the cache stays under <see cref="MaxBytes"/>; past that (or once a write fails:
/// the cache is an optimisation, so a full disk stops it instead of the stage), misses are computed on the fly, up to
/// the highest point asked for. Only the file index lives in memory.
/// </summary>
public sealed class DiskCachedWideActivations : IWideActivationSource
{
    readonly StagedModel wide;
    readonly string folder;
    readonly HashSet<string> stored = [];

    public DiskCachedWideActivations(StagedModel wide, string folder, long maxBytes)
    {
        if (maxBytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(maxBytes));
        this.wide = wide;
        this.folder = folder;
        MaxBytes = maxBytes;
        try
        {
            Directory.CreateDirectory(folder);
            foreach (
                var d in Directory.GetDirectories(folder).Where(d => !d.EndsWith(".tmp", StringComparison.Ordinal))
            )
            {
                stored.Add(Path.GetFileName(d));
                BytesUsed += Directory.GetFiles(d).Sum(f => new FileInfo(f).Length);
            }
        }
        catch (Exception e) when (WriteFailure.Is(e))
        {
            Full = true;
            WriteFailed = $"{folder}: {WriteFailure.Describe(e)}";
        }
    }

    public long MaxBytes { get; }
    public long BytesUsed { get; private set; }
    public long Hits { get; private set; }
    public long Misses { get; private set; }

    /// <summary>True once a batch did not fit under <see cref="MaxBytes"/> or could not be written: nothing more is stored.</summary>
    public bool Full { get; private set; }

    /// <summary>Why storing stopped early, when a write failed (disk full, unwritable folder); null otherwise.</summary>
    public string? WriteFailed { get; private set; }

    public Tensor[] Points(Batch batch, params int[] indices)
    {
        var key = Key(batch.Input);
        var entry = Path.Combine(folder, key);
        if (stored.Contains(key))
        {
            Hits++;
            return indices
                .Select(i =>
                {
                    var nhwc = Path.Combine(entry, $"{i}.nhwc.pt");
                    bool channelsLast = File.Exists(nhwc);
                    using var r = new BinaryReader(File.OpenRead(channelsLast ? nhwc : Path.Combine(entry, $"{i}.pt")));
                    using var loaded = Tensor.Load(r);
                    return channelsLast
                        ? loaded.permute(0, 3, 1, 2).to(batch.Input.Input.device)
                        : loaded.to(batch.Input.Input.device).alias();
                })
                .ToArray();
        }
        Misses++;
        wide.eval();
        // Storing needs every point; once nothing more is stored, the wide network runs only as far as asked.
        var points = wide.ForwardPoints(batch.Input, Full ? indices.Max() : wide.BlockCount - 1);
        if (!Full)
        {
            long bytes = points.Sum(p => p.NumberOfElements * p.ElementSize);
            if (BytesUsed + bytes <= MaxBytes)
                Store(key, entry, points);
            else
                Full = true;
        }
        return indices.Select(i => points[i]).ToArray();
    }

    void Store(string key, string entry, Tensor[] points)
    {
        // One file per point (a hit reads only the points it needs); the folder appears complete or not at all.
        var tmp = entry + ".tmp";
        try
        {
            if (Directory.Exists(tmp))
                Directory.Delete(tmp, recursive: true);
            Directory.CreateDirectory(tmp);
            for (int i = 0; i < points.Length; i++)
            {
                // Tensor.Save writes raw storage in memory order, so a channels-last activation (ResNet) is stored as
                // its contiguous NHWC view and permuted back on load: a hit returns the very layout a miss would.
                bool nhwc = IsChannelsLast(points[i]);
                using var w = new BinaryWriter(File.Create(Path.Combine(tmp, nhwc ? $"{i}.nhwc.pt" : $"{i}.pt")));
                using var stored = nhwc ? points[i].permute(0, 2, 3, 1) : points[i].alias();
                stored.cpu().Save(w);
            }
            Directory.Move(tmp, entry);
        }
        catch (Exception e) when (WriteFailure.Is(e))
        {
            Full = true;
            WriteFailed = $"{tmp}: {WriteFailure.Describe(e)}";
            try
            {
                if (Directory.Exists(tmp))
                    Directory.Delete(tmp, recursive: true);
            }
            catch (IOException) { }
            return;
        }
        stored.Add(key);
        BytesUsed += Directory.GetFiles(entry).Sum(f => new FileInfo(f).Length);
    }

    /// <summary>A 4-D tensor laid out channels-last (NHWC strides) and not also plainly contiguous.</summary>
    static bool IsChannelsLast(Tensor t)
    {
        if (t.dim() != 4 || t.is_contiguous())
            return false;
        using var nhwc = t.permute(0, 2, 3, 1);
        return nhwc.is_contiguous();
    }

    /// <summary>SHA-256 of the batch's inputs (and mask / segment ids): equal batches share their activations.</summary>
    static string Key(ModelInput input)
    {
        using var h = System.Security.Cryptography.IncrementalHash.CreateHash(
            System.Security.Cryptography.HashAlgorithmName.SHA256
        );
        foreach (var t in new[] { input.Input, input.AttentionMask, input.TokenTypeIds })
        {
            if (t is null)
                continue;
            using var c = t.cpu().contiguous();
            h.AppendData(c.bytes);
            h.AppendData(BitConverter.GetBytes(c.shape.Aggregate(17L, (a, d) => a * 31 + d)));
        }
        return Convert.ToHexString(h.GetHashAndReset());
    }
}
