using WideThenNarrow.Data;

namespace WideThenNarrow.Tests.Data;

public class ValidationSplitTests
{
    [Fact]
    public void Carves_a_seeded_stratified_fraction_disjoint_from_training_and_covering_every_example()
    {
        // Interleaved classes of unequal size, as in a real label file.
        long[] labels = [.. Enumerable.Range(0, 1000).Select(i => (long)(i % 7 == 0 ? 2 : i % 2))];
        var split = new ValidationSplit(0.1, 0, Seed: 3);
        var (train, val) = split.Carve(labels);
        Assert.Empty(train.Intersect(val));
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (long)i), train.Concat(val).Order());
        Assert.Equal(train.Order(), train);
        Assert.Equal(val.Order(), val);
        foreach (var c in labels.Distinct())
        {
            int n = labels.Count(l => l == c),
                inVal = val.Count(i => labels[i] == c);
            Assert.Equal((int)Math.Round(0.1 * n), inVal);
        }
        // The same seed gives the same split; another seed another one; neither is simply the first examples.
        Assert.Equal(val, split.Carve(labels).Validation);
        Assert.NotEqual(val, (split with { Seed = 4 }).Carve(labels).Validation);
        Assert.NotEqual(Enumerable.Range(0, val.Length).Select(i => (long)i), val);
    }

    [Fact]
    public void Caps_per_class_keeps_a_training_example_and_refuses_bad_options_by_key()
    {
        long[] labels = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2];
        var (train, val) = new ValidationSplit(0.5, 2, 0).Carve(labels);
        Assert.Equal(2, val.Count(i => labels[i] == 0));
        Assert.Equal(1, val.Count(i => labels[i] == 1)); // half of two, and one stays to train
        Assert.Equal(0, val.Count(i => labels[i] == 2)); // a class of one keeps it for training
        Assert.Contains(12L, train);
        Assert.Equal(
            "data.val_fraction must be in [0, 1), got 1",
            Assert.Throws<WtnException>(() => new ValidationSplit(1, 0, 0).Validate("data.")).Message
        );
        Assert.Equal(
            "data.val_per_class must be 0 (no cap) or more, got -1",
            Assert.Throws<WtnException>(() => new ValidationSplit(0.1, -1, 0).Validate("data.")).Message
        );
    }
}
