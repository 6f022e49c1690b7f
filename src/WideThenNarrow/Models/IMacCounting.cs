namespace WideThenNarrow.Models;

/// <summary>
/// Analytic multiply-accumulate counts (convolutions, linear maps, attention matmuls) for one example.
/// Shapes exclude the batch dimension.
/// </summary>
public interface IMacCounting
{
    /// <summary>MACs of block i, from its input shape (the example's for block 0, else point i-1's) and point i's shape.</summary>
    long BlockMacs(int i, long[] inputShape, long[] outputShape);

    /// <summary>MACs of the head, from the last point's shape.</summary>
    long HeadMacs(long[] lastPointShape);
}
