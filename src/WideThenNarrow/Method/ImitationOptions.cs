namespace WideThenNarrow.Method;

/// <summary>Where thin block k's input comes from during its imitation.</summary>
public enum ImitationInput
{
    /// <summary>The wide activation h_{k-1}^B (through D_{k-1} in full mode): blocks are independent problems.</summary>
    Teacher,

    /// <summary>The thin network's own h_{k-1}^S: progressive, errors of earlier blocks are seen and corrected.</summary>
    Student,
}

/// <summary>What one imitation run trains: a single block, or a whole stage of blocks (ResNets).</summary>
public enum ImitationUnit
{
    /// <summary>Every block (stem, residual block, encoder layer) imitates its own point.</summary>
    Block,

    /// <summary>
    /// ResNets: the stem, then each stage of residual blocks (layer1, layer2, ...) as one unit that imitates the
    /// wide point at the stage's end; fewer, larger regressions (for ResNet-20: 4 runs instead of 10).
    /// </summary>
    Stage,
}

/// <summary>
/// Stage 2 options that are not the trainer's (budget, optimiser and schedule per block are the trainer's
/// config). Defaults: teacher input, block units, plain MSE, no attention term, earlier blocks frozen.
/// </summary>
public record ImitationOptions
{
    public ImitationInput Input { get; init; } = ImitationInput.Teacher;

    /// <summary>The unit of imitation: each block (default) or each stage of blocks (ResNets, inner widening).</summary>
    public ImitationUnit Unit { get; init; } = ImitationUnit.Block;

    /// <summary>LayerNorm (no affine) on both activations before the MSE.</summary>
    public bool Normalize { get; init; }

    /// <summary>Weight of the per-head attention KL added to the MSE (transformers only); 0 = off.</summary>
    public double AttentionWeight { get; init; }

    /// <summary>
    /// Compare head-averaged attention (needed when head counts differ, as after widening the head count); otherwise
    /// the KL is taken head by head.
    /// </summary>
    public bool AverageHeads { get; init; }

    /// <summary>
    /// Transformers: copy the embeddings' tensors whose shapes match the wide network's exactly instead of imitating
    /// them (<see cref="EmbeddingTransfer"/>); a block left with nothing to train is not imitated.
    /// </summary>
    public bool CopyEmbeddings { get; init; } = true;

    /// <summary>
    /// Learning-rate factor for the thin blocks before k while block k imitates (student input only: in
    /// teacher mode they are not on the path). 0 = frozen.
    /// </summary>
    public double EarlierBlocksLrFactor { get; init; }
}
