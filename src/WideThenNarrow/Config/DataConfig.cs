using WideThenNarrow.Data;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Models;

namespace WideThenNarrow.Config;

/// <summary>
/// The <c>data:</c> section of an experiment file and of <c>wtn train</c>'s config: the dataset every stage trains and tests
/// on, images or (with <see cref="Text"/>, experiments only) masked-LM text, and how it is batched, augmented and split.
/// What follows from the dataset itself (classes, channels, image size) is not set here: the models read it from the
/// opened dataset (<see cref="Method.ImageExperimentDataset.Resolve"/>).
/// </summary>
[FormerKey("per_class_limit", RenamedTo = nameof(TrainPerClass))]
[FormerKey("eval_per_class_limit", RenamedTo = nameof(TestPerClass))]
public sealed record DataConfig : IValidatedConfig
{
    /// <summary>
    /// BERT track: masked-LM pretraining on SOTU + Brown + IMDB-train text (or data.text.corpus) with these settings (vocabulary, lengths,
    /// batch sizes, subsets); the image keys below are then unused.
    /// </summary>
    public TextDataOptions? Text { get; init; }

    /// <summary>fashion-mnist, cifar-10, cifar-100, cifar-100-coarse, or by path a folder of IDX files or with train/ and test/.</summary>
    public string Dataset { get; init; } = "fashion-mnist";
    public int BatchSize { get; init; } = 128;

    /// <summary>0 = the training batch size.</summary>
    public int EvalBatchSize { get; init; } = 256;

    /// <summary>Random crop after zero-padding this many pixels (0 = off).</summary>
    public int CropPadding { get; init; } = 2;
    public bool HorizontalFlip { get; init; } = true;

    /// <summary>Stratified subset: the first N training examples of each class (0 = all).</summary>
    public int TrainPerClass { get; init; }

    /// <summary>Stratified subset of the test split (0 = all).</summary>
    public int TestPerClass { get; init; }

    /// <summary>
    /// Validation split carved from the training split before <see cref="TrainPerClass"/> applies: this fraction of each
    /// class, chosen by <see cref="ValSeed"/> (the same for every seed and arm). Every in-run evaluation and every "best"
    /// is on it; the test split is scored once per finished network. An image folder's own val/ replaces it.
    /// </summary>
    public double ValFraction { get; init; } = 0.1;

    /// <summary>At most this many validation examples per class (0 = no cap).</summary>
    public int ValPerClass { get; init; }
    public long ValSeed { get; init; }

    /// <summary>An image folder's images resized to this many pixels square as they are read (0 = as they are).</summary>
    public int Resize { get; init; }

    public ValidationSplit ValidationSplit() => new(ValFraction, ValPerClass, ValSeed);

    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(BatchSize), BatchSize, 1, int.MaxValue);
        at.InRange(nameof(EvalBatchSize), EvalBatchSize, 0, int.MaxValue, "0 = the training batch size");
        at.InRange(nameof(CropPadding), CropPadding, 0, ModelConfig.MaxImageSize);
        at.InRange(nameof(TrainPerClass), TrainPerClass, 0, int.MaxValue, "0 = all");
        at.InRange(nameof(TestPerClass), TestPerClass, 0, int.MaxValue, "0 = all");
    }
}
