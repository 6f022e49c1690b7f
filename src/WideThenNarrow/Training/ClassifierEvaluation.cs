using WideThenNarrow.Data;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>One class's share of an evaluation.</summary>
public sealed record ClassAccuracy(int Label, string Name, long Examples, long Correct)
{
    public double Top1 => Examples == 0 ? 0 : (double)Correct / Examples;
}

/// <summary>A classifier's mean cross-entropy, top-1 and per-class top-1 over one split of a dataset.</summary>
public sealed record EvaluationResult(
    string Dataset,
    string Split,
    long Examples,
    double Loss,
    double Top1,
    IReadOnlyList<ClassAccuracy> PerClass
);

/// <summary>
/// Evaluates a classifier in eval mode under no_grad (<c>wtn eval</c>): every example of a split once, in order.
/// Images are normalised with the given statistics (those the network was trained with) or the dataset's; IMDB
/// reviews are tokenised with the network's own vocabulary and cut to its length, as in training.
/// </summary>
public static class ClassifierEvaluation
{
    public static EvaluationResult Run(
        StagedModel model,
        IBatchSource source,
        IReadOnlyList<string> classes,
        string dataset,
        string split,
        Device? device = null
    )
    {
        device ??= CPU;
        int k = classes.Count;
        var examples = new long[k];
        var correct = new long[k];
        double lossSum = 0;
        model.eval();
        source.ForEachNoGrad(device, (batch, _) =>
        {
            var logits = model.call(batch.Input);
            if (logits.dim() != 2 || logits.shape[1] != k)
                throw new WtnException(
                    $"the network gives {string.Join("x", logits.shape)} outputs per batch but {dataset} has {k} classes"
                );
            lossSum += nn.functional.cross_entropy(logits, batch.Labels, reduction: nn.Reduction.Sum).item<float>();
            var hit = logits.argmax(1).eq(batch.Labels);
            var n = batch.Labels.bincount(null, k).data<long>().ToArray();
            var c = batch.Labels.masked_select(hit).bincount(null, k).data<long>().ToArray();
            for (int i = 0; i < k; i++)
            {
                examples[i] += n[i];
                correct[i] += c[i];
            }
        });
        long total = examples.Sum();
        if (total == 0)
            throw new WtnException($"{dataset}: the {split} split holds no examples");
        return new EvaluationResult(
            dataset,
            split,
            total,
            lossSum / total,
            (double)correct.Sum() / total,
            Enumerable.Range(0, k).Select(i => new ClassAccuracy(i, classes[i], examples[i], correct[i])).ToList()
        );
    }

    /// <summary>An image classifier on a split of <paramref name="dataset"/>, optionally its first N images per class.</summary>
    public static EvaluationResult Images(
        StagedModel model,
        ImageDataset dataset,
        bool test,
        int batchSize,
        int? perClass = null,
        float[]? mean = null,
        float[]? std = null,
        Device? device = null
    )
    {
        if (batchSize < 1)
            throw new WtnException($"--batch-size must be positive, got {batchSize}");
        using var source = new ImageBatchSource(
            dataset,
            test ? dataset.Test : dataset.Train,
            ImageLoaderOptions.Evaluation(batchSize) with
            {
                PerClassLimit = perClass,
                Mean = mean,
                Std = std,
            }
        );
        return Run(model, source, dataset.Classes, dataset.Name, test ? "test" : "train", device);
    }

    /// <summary>
    /// A sequence classifier on IMDB (0 negative, 1 positive): the split's reviews, or the first N per class in file
    /// order, tokenised with <paramref name="vocabPath"/> ([CLS] text [SEP], cut to <paramref name="maxLength"/>).
    /// </summary>
    public static EvaluationResult Imdb(
        StagedModel model,
        string dataDir,
        string vocabPath,
        int maxLength,
        bool test,
        int batchSize,
        int? perClass = null,
        Device? device = null,
        bool lowercase = true
    )
    {
        if (batchSize < 1)
            throw new WtnException($"--batch-size must be positive, got {batchSize}");
        var imdb = ImdbReviews.Load(TextData.ImdbReviewsPath(dataDir));
        var reviews = TextExperimentData.PerClass(test ? imdb.Test : imdb.Train, perClass ?? 0);
        var tokenizer = TextTokenizer.Load(vocabPath, lowercase);
        var tokens = TokenizedCorpus.Tokenize(tokenizer, [.. reviews.Select(r => r.Text)]);
        var source = new SequenceClassificationBatchSource(
            tokens,
            [.. reviews.Select(r => r.Label)],
            new ClassificationBatchOptions(batchSize, maxLength, Shuffle: false, Specials: tokenizer.Specials)
        );
        return Run(model, source, ImdbClasses, "imdb", test ? "test" : "train", device);
    }

    /// <summary>IMDB's labels in order.</summary>
    public static IReadOnlyList<string> ImdbClasses => LabelledTask.ImdbClasses;

    /// <summary>
    /// A sequence classifier on a user's labelled file (.csv, .tsv, .jsonl; <see cref="LabelledTextFile"/>), whose labels
    /// must be among <paramref name="classes"/> (the network's, in id order), optionally the first N rows per class.
    /// </summary>
    public static EvaluationResult LabelledFile(
        StagedModel model,
        string path,
        IReadOnlyList<string> classes,
        string vocabPath,
        int maxLength,
        int batchSize,
        int? perClass = null,
        string textColumn = "text",
        string labelColumn = "label",
        Device? device = null,
        bool lowercase = true
    )
    {
        if (batchSize < 1)
            throw new WtnException($"--batch-size must be positive, got {batchSize}");
        var rows = LabelledTextFile.Examples(
            path,
            LabelledTextFile.Read(path, textColumn, labelColumn),
            classes,
            "the network"
        );
        var examples = TextExperimentData.PerClass(rows, perClass ?? 0);
        var tokenizer = TextTokenizer.Load(vocabPath, lowercase);
        var tokens = TokenizedCorpus.Tokenize(tokenizer, [.. examples.Select(r => r.Text)]);
        var source = new SequenceClassificationBatchSource(
            tokens,
            [.. examples.Select(r => r.Label)],
            new ClassificationBatchOptions(batchSize, maxLength, Shuffle: false, Specials: tokenizer.Specials)
        );
        return Run(model, source, classes, Path.GetFileName(path), "all", device);
    }
}
