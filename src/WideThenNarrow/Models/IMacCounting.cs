namespace WideThenNarrow.Models;

/// <summary>
/// Analytic shapes and multiply-accumulate counts (convolutions, linear maps, attention matmuls) for one example.
/// Shapes exclude the batch dimension.
/// </summary>
public interface IMacCounting
{
    /// <summary>Point i's shape from block i's input shape (the example's for block 0), without running the block.</summary>
    long[] OutputShape(int i, long[] inputShape);

    /// <summary>MACs of block i, from its input shape (the example's for block 0, else point i-1's) and point i's shape.</summary>
    long BlockMacs(int i, long[] inputShape, long[] outputShape);

    /// <summary>MACs of the head, from the last point's shape.</summary>
    long HeadMacs(long[] lastPointShape);
}
