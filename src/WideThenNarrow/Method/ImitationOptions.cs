namespace WideThenNarrow.Method;

/// <summary>Where thin block k's input comes from during its imitation.</summary>
public enum ImitationInput
{
    /// <summary>The wide activation h_{k-1}^B (through D_{k-1} in full mode): blocks are independent problems.</summary>
    Teacher,
    /// <summary>The thin network's own h_{k-1}^S: progressive, errors of earlier blocks are seen and corrected.</summary>
    Student,
}

/// <summary>
/// Stage 2 options that are not the trainer's (budget, optimiser and schedule per block are the trainer's
/// config). Defaults: teacher input, plain MSE, no attention term, earlier blocks frozen.
/// </summary>
public record ImitationOptions
{
    public ImitationInput Input { get; init; } = ImitationInput.Teacher;

    /// <summary>LayerNorm (no affine) on both activations before the MSE.</summary>
    public bool Normalize { get; init; }

    /// <summary>Weight of the per-head attention KL added to the MSE (transformers only); 0 = off.</summary>
    public double AttentionWeight { get; init; }

    /// <summary>Compare head-averaged attention when head counts differ.</summary>
    public bool AverageHeads { get; init; }

    /// <summary>
    /// Learning-rate factor for the thin blocks before k while block k imitates (student input only: in
    /// teacher mode they are not on the path). 0 = frozen.
    /// </summary>
    public double EarlierBlocksLrFactor { get; init; }
}
