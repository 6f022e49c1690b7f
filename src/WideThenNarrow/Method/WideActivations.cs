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
/// all its points are stored while the cache stays under <see cref="MaxBytes"/>; past that, misses are computed on
/// the fly. Only the file index lives in memory.
/// </summary>
public sealed class DiskCachedWideActivations : IWideActivationSource
{
    readonly StagedModel wide;
    readonly string folder;
    readonly HashSet<string> stored = [];

    public DiskCachedWideActivations(StagedModel wide, string folder, long maxBytes)
    {
        if (maxBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxBytes));
        this.wide = wide;
        this.folder = folder;
        MaxBytes = maxBytes;
        Directory.CreateDirectory(folder);
        foreach (var d in Directory.GetDirectories(folder).Where(d => !d.EndsWith(".tmp", StringComparison.Ordinal)))
        {
            stored.Add(Path.GetFileName(d));
            BytesUsed += Directory.GetFiles(d).Sum(f => new FileInfo(f).Length);
        }
    }

    public long MaxBytes { get; }
    public long BytesUsed { get; private set; }
    public long Hits { get; private set; }
    public long Misses { get; private set; }

    public Tensor[] Points(Batch batch, params int[] indices)
    {
        var key = Key(batch.Input);
        var entry = Path.Combine(folder, key);
        if (stored.Contains(key))
        {
            Hits++;
            return indices.Select(i =>
            {
                var nhwc = Path.Combine(entry, $"{i}.nhwc.pt");
                bool channelsLast = File.Exists(nhwc);
                using var r = new BinaryReader(File.OpenRead(channelsLast ? nhwc : Path.Combine(entry, $"{i}.pt")));
                using var loaded = Tensor.Load(r);
                return channelsLast ? loaded.permute(0, 3, 1, 2).to(batch.Input.Input.device) : loaded.to(batch.Input.Input.device).alias();
            }).ToArray();
        }
        Misses++;
        wide.eval();
        var points = wide.ForwardPoints(batch.Input, wide.BlockCount - 1);
        long bytes = points.Sum(p => p.NumberOfElements * p.ElementSize);
        if (BytesUsed + bytes <= MaxBytes)
        {
            // One file per point (a hit reads only the points it needs); the folder appears complete or not at all.
            var tmp = entry + ".tmp";
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
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
            stored.Add(key);
            BytesUsed += Directory.GetFiles(entry).Sum(f => new FileInfo(f).Length);
        }
        return indices.Select(i => points[i]).ToArray();
    }

    /// <summary>A 4-D tensor laid out channels-last (NHWC strides) and not also plainly contiguous.</summary>
    static bool IsChannelsLast(Tensor t)
    {
        if (t.dim() != 4 || t.is_contiguous()) return false;
        using var nhwc = t.permute(0, 2, 3, 1);
        return nhwc.is_contiguous();
    }

    /// <summary>SHA-256 of the batch's inputs (and mask / segment ids): equal batches share their activations.</summary>
    static string Key(ModelInput input)
    {
        using var h = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var t in new[] { input.Input, input.AttentionMask, input.TokenTypeIds })
        {
            if (t is null) continue;
            using var c = t.cpu().contiguous();
            h.AppendData(c.bytes);
            h.AppendData(BitConverter.GetBytes(c.shape.Aggregate(17L, (a, d) => a * 31 + d)));
        }
        return Convert.ToHexString(h.GetHashAndReset());
    }
}
