using WideThenNarrow.Data;
using WideThenNarrow.Data.Text;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>
/// A masked-LM encoder on a text: mean cross-entropy over the masked tokens (<see cref="Loss"/>, whose exponential is
/// the perplexity), and the share of masked tokens whose original id is the arg-max (top-1, what a run reports as a
/// masked-LM stage's test top-1).
/// </summary>
public sealed record MaskedLmEvaluationResult(
    string Dataset,
    string Split,
    int Documents,
    long Sequences,
    long MaskedTokens,
    double Loss,
    double Top1
)
{
    public double Perplexity => Math.Exp(Loss);

    /// <summary>
    /// The selected tokens by what the encoder was shown in their place (BERT's 80/10/10): [MASK], another token, or the
    /// token itself. <see cref="Top1"/> counts all three; the [MASK] share is the prediction from context alone, while
    /// the unchanged share can be copied from the input.
    /// </summary>
    public MaskedLmBreakdown? ByShown { get; init; }
}

/// <summary>Top-1 over the selected tokens shown as [MASK], as another (random) token, and as themselves, with their counts (null: none of that kind).</summary>
public sealed record MaskedLmBreakdown(
    long MaskTokens,
    double? MaskTop1,
    long ReplacedTokens,
    double? ReplacedTop1,
    long KeptTokens,
    double? KeptTop1
);

/// <summary>
/// Evaluates a masked-LM encoder in eval mode under no_grad (<c>wtn eval</c>): the text is tokenised with the
/// encoder's own vocabulary, packed into windows of its sequence length and masked as in pretraining (BERT's 15% /
/// 80-10-10) with a fixed seed. A window's masks depend only on the seed and the window, so the numbers do not
/// depend on the batch size; on a run's held-out text with the run's seed they are the run's own.
/// </summary>
public static class MaskedLmEvaluation
{
    public static MaskedLmEvaluationResult Run(
        StagedModel model,
        TextTokenizer tokenizer,
        IReadOnlyList<string> documents,
        int sequenceLength,
        double maskProbability,
        int seed,
        int batchSize,
        string dataset,
        string split,
        Device? device = null
    )
    {
        if (batchSize < 1)
            throw new WtnException($"--batch-size must be positive, got {batchSize}");
        if (documents.Count == 0)
            throw new WtnException($"{dataset}: no text to evaluate on");
        device ??= CPU;
        var corpus = TokenizedCorpus.Tokenize(tokenizer, documents);
        var source = new MaskedLmBatchSource(
            corpus,
            tokenizer.VocabSize,
            new MaskedLmOptions(
                batchSize,
                sequenceLength,
                maskProbability,
                Seed: seed,
                Shuffle: false,
                Specials: tokenizer.Specials
            )
        );
        double lossSum = 0;
        long masked = 0,
            correct = 0;
        // Per kind of what the encoder was shown at a selected position: [MASK], a replacement, the token itself.
        var shown = new long[3];
        var right = new long[3];
        long maskId = tokenizer.Specials.Mask;
        model.eval();
        source.ForEachNoGrad(device, (batch, _) =>
        {
            // The head runs on the masked positions only (as in training): scores (M, V) against labels (M).
            var (scores, labels) = MaskedLmObjective.MaskedLogits(model, batch.Input, batch.Labels);
            if (scores.dim() != 2 || scores.shape[1] != tokenizer.VocabSize)
                throw new WtnException(
                    $"the network gives [{string.Join(",", scores.shape)}] scores per masked token, not one for each of the vocabulary's {tokenizer.VocabSize} tokens; is it a masked-LM encoder with this vocabulary?"
                );
            lossSum += nn.functional.cross_entropy(scores, labels, reduction: nn.Reduction.Sum).item<float>();
            masked += labels.shape[0];
            var hit = scores.argmax(1).eq(labels);
            correct += hit.sum().item<long>();
            // The input ids at the same positions, in the order MaskedLogits gathers them.
            var input = batch.Input.Input.reshape(-1).index_select(0, MaskedLmObjective.Labelled(batch.Labels));
            // 0: shown as [MASK]; 1: replaced by another token; 2: left as itself (labels are never special tokens).
            var kind = input.ne(maskId).to_type(ScalarType.Int64) + input.eq(labels).to_type(ScalarType.Int64);
            for (int k = 0; k < 3; k++)
            {
                var isK = kind.eq(k);
                shown[k] += isK.sum().item<long>();
                right[k] += isK.logical_and(hit).sum().item<long>();
            }
        });
        if (masked == 0)
            throw new WtnException($"{dataset}: no token was masked (too little text?); evaluate on more text");
        double? Share(int k) => shown[k] == 0 ? null : (double)right[k] / shown[k];
        return new MaskedLmEvaluationResult(
            dataset,
            split,
            documents.Count,
            source.Count,
            masked,
            lossSum / masked,
            (double)correct / masked
        )
        {
            ByShown = new MaskedLmBreakdown(shown[0], Share(0), shown[1], Share(1), shown[2], Share(2)),
        };
    }

    /// <summary>
    /// The text an experiment held out from masked-LM pretraining (read from the data folder as the run did, by the
    /// recipe in the export's manifest), masked as the run masked it: the run's own masked-token top-1.
    /// </summary>
    public static MaskedLmEvaluationResult HeldOut(
        StagedModel model,
        string dataDir,
        string vocabPath,
        int sequenceLength,
        MaskedLmHeldOut heldOut,
        int batchSize,
        Device? device = null,
        bool lowercase = true
    )
    {
        var texts = heldOut.Corpus is { } corpus
            ? PlainTextCorpus.ReadCorpus(corpus)
            : TextExperimentData.PretrainingTexts(dataDir);
        var (_, _, documents) = TextExperimentData.SplitPretraining(texts, heldOut.PretrainDocuments, heldOut.Every);
        return Run(
            model,
            TextTokenizer.Load(vocabPath, lowercase),
            documents,
            sequenceLength,
            heldOut.MaskProbability,
            heldOut.Seed,
            batchSize,
            "held-out pretraining text",
            "held-out",
            device
        );
    }

    /// <summary>
    /// Other text: IMDB reviews of a split (the test half was never pretraining text; optionally the first N per class),
    /// the SOTU or Brown corpus, or a UTF-8 .txt file or a folder of them (one document per file).
    /// </summary>
    public static MaskedLmEvaluationResult Text(
        StagedModel model,
        string dataset,
        string dataDir,
        string vocabPath,
        int sequenceLength,
        bool test,
        int? perClass,
        int batchSize,
        double maskProbability = 0.15,
        int seed = TextExperimentData.EvalMaskSeed,
        Device? device = null,
        bool lowercase = true
    )
    {
        if (perClass is not null && dataset != "imdb")
            throw new WtnException(
                $"--per-class: only IMDB's reviews have classes to take N of; give --dataset imdb or leave --per-class out"
            );
        List<string> documents;
        string split = "all";
        switch (dataset)
        {
            case "imdb":
                var imdb = ImdbReviews.Load(TextData.ImdbReviewsPath(dataDir));
                documents =
                [
                    .. TextExperimentData.PerClass(test ? imdb.Test : imdb.Train, perClass ?? 0).Select(r => r.Text),
                ];
                split = test ? "test" : "train";
                break;
            case "sotu":
                documents = PlainTextCorpus.Read(TextData.SotuFolder(dataDir));
                break;
            case "brown":
                documents = BrownCorpus.Read(TextData.BrownFolder(dataDir));
                break;
            default:
                if (Directory.Exists(dataset))
                {
                    var files = Directory.GetFiles(dataset, "*.txt").Order(StringComparer.Ordinal).ToArray();
                    if (files.Length == 0)
                        throw new WtnException($"--dataset: folder {dataset} has no .txt files");
                    documents = PlainTextCorpus.ReadFiles(files);
                }
                else if (File.Exists(dataset))
                    documents = PlainTextCorpus.ReadFiles([dataset]);
                else
                    throw new WtnException(
                        $"--dataset: '{dataset}' is none of imdb, sotu, brown, a .txt file or a folder of .txt files"
                    );
                break;
        }
        return Run(
            model,
            TextTokenizer.Load(vocabPath, lowercase),
            documents,
            sequenceLength,
            maskProbability,
            seed,
            batchSize,
            dataset,
            split,
            device
        );
    }
}
