using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// What the runner needs of a dataset: its batches, how the experiment's model specs become models for it, the
/// task loss of the standard recipe, and an example input for cost and latency. Images and text implement it.
/// </summary>
public interface IExperimentDataset : IDisposable
{
    string Name { get; }
    int TrainExamples { get; }
    int ValidationExamples { get; }
    int TestExamples { get; }

    /// <summary>Training batches, shuffled (and augmented or masked) by <paramref name="seed"/> and the epoch.</summary>
    IBatchSource TrainSource(long seed);

    /// <summary>Examples held out of training for every in-run choice (best epoch, early stop, recipe).</summary>
    IBatchSource ValidationSource();

    /// <summary>The test split, scored once per finished network.</summary>
    IBatchSource TestSource();

    /// <summary>The model for <paramref name="spec"/> on this data (classes, input shape, vocabulary, head).</summary>
    ModelConfig ModelConfig(ModelSpec spec, string key);

    /// <summary>Loss of the standard recipe: cross-entropy on classes, or on masked tokens.</summary>
    ITrainingObjective TaskObjective(StagedModel model);

    /// <summary>An input of <paramref name="batch"/> examples for cost and latency (allocated in the caller's dispose scope).</summary>
    ModelInput ExampleInput(int batch, Device device);

    /// <summary>What a network trained on this data expects as input, for the manifest of <c>wtn export</c>.</summary>
    ExportInput ExportInput();
}

/// <summary>Opens the dataset an experiment names: text (masked LM) when data.text is set, else images.</summary>
public static class ExperimentDatasets
{
    public static IExperimentDataset Load(DataConfig data, string dataDir, IProgress<string>? log = null) =>
        data.Text is { } text
            ? new MaskedLmExperimentDataset(Data.Text.TextExperimentData.Load(dataDir, text, log))
            : new ImageExperimentDataset(ImageDataset.Load(data.Dataset, dataDir, data.Resize), data);

    /// <summary>
    /// The catalog datasets an experiment reads (<c>wtn data fetch</c> can bring them): the text track's three corpora,
    /// or the image dataset when the catalog has it.
    /// </summary>
    public static IReadOnlyList<DatasetSource> Sources(DataConfig data) =>
        data.Text is { } text
            ?
            [
                .. text.ReadsSotuAndBrown ? [DatasetCatalog.Sotu, DatasetCatalog.Brown] : Array.Empty<DatasetSource>(),
                .. text.ReadsImdb ? [DatasetCatalog.Imdb] : Array.Empty<DatasetSource>(),
            ]
        : DatasetCatalog.Find(data.Dataset) is { } source ? [source]
        : [];
}

/// <summary>An image dataset with the experiment's loader settings (validation split, crop, flip, stratified subsets).</summary>
public sealed class ImageExperimentDataset : IExperimentDataset
{
    readonly ImageDataset dataset;
    readonly DataConfig settings;
    readonly long[]? trainExamples,
        validationExamples; // null: the dataset's own val/ split, all of train/ trains

    public ImageExperimentDataset(ImageDataset dataset, DataConfig settings)
    {
        settings.ValidationSplit().Validate("data.");
        this.dataset = dataset;
        this.settings = settings;
        if (dataset.Validation is null)
        {
            (trainExamples, validationExamples) = settings
                .ValidationSplit()
                .Carve(dataset.Train.Labels.data<long>().ToArray());
            if (validationExamples.Length == 0)
                throw new WtnException(
                    $"data.val_fraction is {settings.ValFraction}: {dataset.Name} needs a validation split; set data.val_fraction above 0 (e.g. 0.1) or give the image folder a val/"
                );
        }
        using var train = Train(0);
        using var val = Validation();
        using var test = Test();
        (TrainExamples, ValidationExamples, TestExamples) = (train.Count, val.Count, test.Count);
    }

    public ImageDataset Dataset => dataset;
    public string Name => dataset.Name;

    public int TrainExamples { get; }
    public int ValidationExamples { get; }
    public int TestExamples { get; }

    public IBatchSource TrainSource(long seed) => Train(seed);

    public IBatchSource ValidationSource() => Validation();

    public IBatchSource TestSource() => Test();

    public ImageBatchSource Train(long seed) =>
        new(
            dataset,
            dataset.Train,
            new ImageLoaderOptions
            {
                BatchSize = settings.BatchSize,
                Seed = seed,
                CropPadding = settings.CropPadding,
                HorizontalFlip = settings.HorizontalFlip,
                PerClassLimit = settings.TrainPerClass > 0 ? settings.TrainPerClass : null,
                Examples = trainExamples,
            }
        );

    int EvalBatchSize => settings.EvalBatchSize > 0 ? settings.EvalBatchSize : settings.BatchSize;

    public ImageBatchSource Validation() =>
        new(
            dataset,
            dataset.Validation ?? dataset.Train,
            ImageLoaderOptions.Evaluation(EvalBatchSize) with
            {
                Examples = validationExamples,
            }
        );

    public ImageBatchSource Test() =>
        new(
            dataset,
            dataset.Test,
            ImageLoaderOptions.Evaluation(EvalBatchSize) with
            {
                PerClassLimit = settings.TestPerClass > 0 ? settings.TestPerClass : null,
            }
        );

    public ModelConfig ModelConfig(ModelSpec spec, string key) => Resolve(spec, $"models.{key}");

    /// <summary>
    /// The one place where an image dataset fills in a model spec: its classes and channels unless the spec sets them
    /// (then they must agree), its image size, and an MLP's input features. <paramref name="keyPath"/> names the spec in errors.
    /// </summary>
    public ModelConfig Resolve(ModelSpec spec, string keyPath)
    {
        if (spec.Classes > 0 && spec.Classes != dataset.NumClasses)
            throw new WtnException(
                $"{keyPath}.classes is {spec.Classes} but {dataset.Name} has {dataset.NumClasses} classes; remove the key (0 = the dataset's) or set {dataset.NumClasses}"
            );
        if (spec.InputChannels > 0 && spec.InputChannels != dataset.Channels)
            throw new WtnException(
                $"{keyPath}.input_channels is {spec.InputChannels} but {dataset.Name} images have {dataset.Channels}; remove the key (0 = the dataset's) or set {dataset.Channels}"
            );
        return spec.ToModelConfig(dataset.NumClasses, dataset.Channels, dataset.Height, keyPath);
    }

    public ITrainingObjective TaskObjective(StagedModel model) => new ClassificationObjective(model);

    public ModelInput ExampleInput(int batch, Device device) =>
        new(randn([batch, dataset.Channels, dataset.Height, dataset.Width], device: device));

    public ExportInput ExportInput() => ModelExport.ImageInput(dataset);

    public void Dispose() => dataset.Dispose();
}
