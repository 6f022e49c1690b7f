using WideThenNarrow.Data;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// The BERT track's pretraining data: masked-LM windows of SOTU + Brown + IMDB-train text (the held-out documents
/// for evaluation, where "top-1" is masked-token accuracy). Models get a masked-LM head over the vocabulary.
/// </summary>
public sealed class MaskedLmExperimentDataset(TextExperimentData data) : IExperimentDataset
{
    public TextExperimentData Data => data;
    public string Name =>
        $"masked-LM text ({(data.Options.Corpus is { } c ? Path.GetFileName(Path.TrimEndingDirectorySeparator(c)) : "SOTU + Brown + IMDB train")}, {data.VocabSize}-token WordPiece, length {data.Options.SequenceLength})";
    public int TrainExamples => data.MaskedLmTrain(0).Count;
    public int ValidationExamples => data.MaskedLmValidation().Count;
    public int TestExamples => data.MaskedLmEval().Count;

    public IBatchSource TrainSource(long seed) => data.MaskedLmTrain(seed);

    public IBatchSource ValidationSource() => data.MaskedLmValidation();

    public IBatchSource TestSource() => data.MaskedLmEval();

    public ModelConfig ModelConfig(ModelSpec spec, string key) => Resolve(spec, key, data, BertHead.MaskedLm);

    /// <summary>The one place the text track fills in a model spec: the vocabulary's size, the positions, the head.</summary>
    internal static ModelConfig Resolve(ModelSpec spec, string key, TextExperimentData data, BertHead head) =>
        spec.ToModelConfig(data.Task.Classes.Count, 0, 0, $"models.{key}") with
        {
            Vocab = data.VocabSize,
            MaxPositions = spec.MaxPositions ?? data.MaxPositions,
            Head = head,
            HeadPositionShare = head == BertHead.MaskedLm ? data.Options.MaskProbability : 1,
        };

    public ITrainingObjective TaskObjective(StagedModel model) => new MaskedLmObjective(model);

    public ModelInput ExampleInput(int batch, Device device) =>
        TokenInput(batch, data.Options.SequenceLength, data.VocabSize, device);

    /// <summary>The downstream task on the same vocabulary: IMDB sentiment or the user's labelled files.</summary>
    public ImdbExperimentDataset Downstream() => new(data);

    public ExportInput ExportInput() =>
        new()
        {
            Kind = "tokens",
            Vocab = data.VocabPath,
            MaxLength = data.Options.SequenceLength,
            HeldOut = data.HeldOut,
            Lowercase = data.Options.Lowercase ? null : false,
        };

    public void Dispose() { }

    /// <summary>Random regular token ids (N, length), every position attended, all of segment 0: cost and latency inputs.</summary>
    public static ModelInput TokenInput(int batch, int length, int vocab, Device device) =>
        new(
            randint(TextTokenizer.FirstRegularId, vocab, [batch, length], dtype: ScalarType.Int64, device: device),
            ones([batch, length], ScalarType.Int64, device),
            zeros([batch, length], ScalarType.Int64, device)
        );
}

/// <summary>
/// The labelled task for fine-tuning pretrained encoders: IMDB sentiment (the standard 25k/25k split, or its per-class
/// subsets), or the user's labelled files (data.text.train_file, test_file).
/// </summary>
public sealed class ImdbExperimentDataset(TextExperimentData data) : IExperimentDataset
{
    public string Name => $"{data.Task.Name} (max length {data.Options.MaxLength})";
    public int TrainExamples => data.ImdbTrain.Count;
    public int ValidationExamples => data.ImdbValidation.Count;
    public int TestExamples => data.ImdbTest.Count;

    public IBatchSource TrainSource(long seed) => data.ImdbTrainBatches(seed);

    public IBatchSource ValidationSource() => data.ImdbValidationBatches();

    public IBatchSource TestSource() => data.ImdbTestBatches();

    public ModelConfig ModelConfig(ModelSpec spec, string key) =>
        MaskedLmExperimentDataset.Resolve(spec, key, data, BertHead.Classification) with
        {
            Classes = data.Task.Classes.Count,
        };

    public ITrainingObjective TaskObjective(StagedModel model) => new ClassificationObjective(model);

    public ModelInput ExampleInput(int batch, Device device) =>
        MaskedLmExperimentDataset.TokenInput(batch, data.Options.MaxLength, data.VocabSize, device);

    public ExportInput ExportInput() =>
        new()
        {
            Kind = "tokens",
            Vocab = data.VocabPath,
            MaxLength = data.Options.MaxLength,
            Classes = data.Task.Classes,
            Lowercase = data.Options.Lowercase ? null : false,
        };

    public void Dispose() { }
}
