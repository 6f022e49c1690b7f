namespace WideThenNarrow.Data;

/// <summary>
/// A validation split carved from a training split: per class, a seeded random <see cref="Fraction"/> of its examples
/// (at most <see cref="PerClass"/> when positive), so every class is represented in proportion. The seed is the
/// split's own, not the run's: every seed and every arm of an experiment selects on the same validation examples.
/// </summary>
public sealed record ValidationSplit(double Fraction, int PerClass, long Seed)
{
    public void Validate(string keyPrefix)
    {
        if (!(Fraction >= 0 && Fraction < 1))
            throw new WtnException($"{keyPrefix}val_fraction must be in [0, 1), got {Fraction}");
        if (PerClass < 0)
            throw new WtnException($"{keyPrefix}val_per_class must be 0 (no cap) or more, got {PerClass}");
    }

    /// <summary>
    /// The example ids of <paramref name="labels"/> (one class id per example) that train and that validate, each in
    /// file order. A class keeps at least one training example; with a positive fraction every class of two or more
    /// examples gives at least one to validation.
    /// </summary>
    public (long[] Train, long[] Validation) Carve(IReadOnlyList<long> labels)
    {
        var byClass = new SortedDictionary<long, List<long>>();
        for (int i = 0; i < labels.Count; i++)
        {
            if (!byClass.TryGetValue(labels[i], out var list))
                byClass[labels[i]] = list = [];
            list.Add(i);
        }
        var validation = new HashSet<long>();
        if (Fraction > 0)
            foreach (var (label, ids) in byClass)
            {
                int take = Math.Max(1, (int)Math.Round(Fraction * ids.Count));
                if (PerClass > 0)
                    take = Math.Min(take, PerClass);
                take = Math.Min(take, ids.Count - 1);
                var order = ids.ToArray();
                Shuffle(order, Seed, label);
                for (int k = 0; k < take; k++)
                    validation.Add(order[k]);
            }
        var train = new List<long>(labels.Count - validation.Count);
        for (long i = 0; i < labels.Count; i++)
            if (!validation.Contains(i))
                train.Add(i);
        return ([.. train], [.. validation.Order()]);
    }

    /// <summary>Fisher-Yates with SplitMix64 draws: the same permutation on every platform and .NET version.</summary>
    static void Shuffle(long[] items, long seed, long stream)
    {
        ulong state = (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)stream * 0xD1B54A32D192ED03UL;
        for (int i = items.Length - 1; i > 0; i--)
        {
            state += 0x9E3779B97F4A7C15UL;
            ulong z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            int j = (int)(z % (ulong)(i + 1));
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
