using WideThenNarrow.Data;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>One class's share of an evaluation.</summary>
public sealed record ClassAccuracy(int Label, string Name, long Examples, long Correct)
{
    public double Top1 => Examples == 0 ? 0 : (double)Correct / Examples;
}

/// <summary>A classifier's mean cross-entropy, top-1 and per-class top-1 over one split of an image dataset.</summary>
public sealed record ImageEvaluationResult(string Dataset, string Split, long Examples, double Loss, double Top1, IReadOnlyList<ClassAccuracy> PerClass);

/// <summary>
/// Evaluates a classifier on an image dataset's split in eval mode under no_grad (<c>wtn eval</c>): every example
/// once, in file order, normalised with the given statistics (those the network was trained with) or the dataset's.
/// </summary>
public static class ImageEvaluation
{
    public static ImageEvaluationResult Run(StagedModel model, ImageDataset dataset, bool test, int batchSize, int? perClass = null,
        float[]? mean = null, float[]? std = null, Device? device = null)
    {
        device ??= CPU;
        if (batchSize < 1) throw new WtnException($"--batch-size must be positive, got {batchSize}");
        int classes = dataset.NumClasses;
        using var source = new ImageBatchSource(dataset, test ? dataset.Test : dataset.Train,
            ImageLoaderOptions.Evaluation(batchSize) with { PerClassLimit = perClass, Mean = mean, Std = std });
        var examples = new long[classes];
        var correct = new long[classes];
        double lossSum = 0;
        model.eval();
        source.ForEachNoGrad(device, (batch, _) =>
        {
            var logits = model.call(batch.Input);
            if (logits.dim() != 2 || logits.shape[1] != classes)
                throw new WtnException($"the network gives {string.Join("x", logits.shape)} outputs per batch but {dataset.Name} has {classes} classes");
            lossSum += nn.functional.cross_entropy(logits, batch.Labels, reduction: nn.Reduction.Sum).item<float>();
            var hit = logits.argmax(1).eq(batch.Labels);
            var n = batch.Labels.bincount(null, classes).data<long>().ToArray();
            var c = batch.Labels.masked_select(hit).bincount(null, classes).data<long>().ToArray();
            for (int k = 0; k < classes; k++)
            {
                examples[k] += n[k];
                correct[k] += c[k];
            }
        });
        long total = examples.Sum();
        if (total == 0) throw new WtnException($"{dataset.Name}: the {(test ? "test" : "train")} split holds no examples");
        return new ImageEvaluationResult(dataset.Name, test ? "test" : "train", total, lossSum / total, (double)correct.Sum() / total,
            Enumerable.Range(0, classes).Select(k => new ClassAccuracy(k, dataset.Classes[k], examples[k], correct[k])).ToList());
    }
}
