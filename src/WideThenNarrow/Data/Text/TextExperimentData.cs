using System.Security.Cryptography;
using System.Text;

namespace WideThenNarrow.Data.Text;

/// <summary>
/// The BERT track's data settings. Pretraining (masked LM) reads SOTU + Brown + the IMDB training half, never the IMDB
/// test half, or the user's <see cref="Corpus"/>; the downstream task is IMDB sentiment, or the user's labelled
/// <see cref="TrainFile"/> / <see cref="TestFile"/>. Subsets (0 = all) make quick runs.
/// </summary>
public sealed record TextDataOptions
{
    /// <summary>
    /// Your own pretraining text instead of SOTU + Brown + IMDB-train: a folder of UTF-8 .txt files (one document each) or
    /// one .txt file (one document per paragraph). The vocabulary is then built from it.
    /// </summary>
    public string? Corpus { get; init; }

    /// <summary>Your own labelled text for fine-tuning instead of IMDB's training half: .csv, .tsv (header row) or .jsonl.</summary>
    public string? TrainFile { get; init; }

    /// <summary>The labelled test text that goes with <see cref="TrainFile"/> (same format and columns), scored once per network.</summary>
    public string? TestFile { get; init; }

    /// <summary>The column (CSV/TSV header) or key (JSONL) of the text, and of the label.</summary>
    public string TextColumn { get; init; } = "text";
    public string LabelColumn { get; init; } = "label";

    /// <summary>
    /// An existing vocab.txt (a HuggingFace BERT's, or one built here) instead of building one; vocab_size is then
    /// unused. Set from wide.import when that is a HuggingFace folder.
    /// </summary>
    public string? Vocab { get; init; }

    /// <summary>With <see cref="Vocab"/>: lowercase and strip accents before WordPiece (uncased BERT).</summary>
    public bool Lowercase { get; init; } = true;

    /// <summary>WordPiece vocabulary size (special tokens included), built once from all pretraining text and cached.</summary>
    public int VocabSize { get; init; } = 16000;

    /// <summary>Masked-LM sequence length, [CLS] and [SEP] included.</summary>
    public int SequenceLength { get; init; } = 128;
    public double MaskProbability { get; init; } = 0.15;

    /// <summary>Classification: reviews are truncated to this many tokens, [CLS] and [SEP] included.</summary>
    public int MaxLength { get; init; } = 256;
    public int BatchSize { get; init; } = 32;

    /// <summary>0 = the training batch size.</summary>
    public int EvalBatchSize { get; init; }

    /// <summary>Pretraining documents used, spread evenly over the corpora (0 = all 25,733).</summary>
    public int PretrainDocuments { get; init; }

    /// <summary>
    /// Every this-many-th pretraining document is held out as the masked-LM test text, and the one before it as the
    /// masked-LM validation text (neither trains).
    /// </summary>
    public int MlmEvalEvery { get; init; } = 100;

    /// <summary>Reviews (or rows of the labelled files) of each class used for fine-tuning and for testing (0 = all).</summary>
    public int ImdbTrainPerClass { get; init; }
    public int ImdbTestPerClass { get; init; }

    /// <summary>
    /// Validation split carved from IMDB's training half (or <see cref="TrainFile"/>) before the per-class subset: this
    /// fraction of each class.
    /// </summary>
    public double ImdbValFraction { get; init; } = 0.1;

    /// <summary>At most this many validation reviews per class (0 = no cap).</summary>
    public int ImdbValPerClass { get; init; }
    public long ImdbValSeed { get; init; }

    internal ValidationSplit ImdbValidationSplit() => new(ImdbValFraction, ImdbValPerClass, ImdbValSeed);

    internal void Validate()
    {
        if (VocabSize is < 100 or > 1_000_000)
            throw new WtnException($"data.vocab_size must be in [100, 1000000], got {VocabSize}");
        if (SequenceLength < 8)
            throw new WtnException($"data.sequence_length must be at least 8, got {SequenceLength}");
        if (MaxLength < 8)
            throw new WtnException($"data.max_length must be at least 8, got {MaxLength}");
        if (BatchSize < 1 || EvalBatchSize < 0)
            throw new WtnException($"data.batch_size must be positive and data.eval_batch_size >= 0");
        if (MlmEvalEvery < 3)
            throw new WtnException(
                $"data.mlm_eval_every must be at least 3 (a test, a validation and a training document), got {MlmEvalEvery}"
            );
        ImdbValidationSplit().Validate("data.text.imdb_");
        if (ImdbValFraction <= 0)
            throw new WtnException(
                $"data.text.imdb_val_fraction must be above 0: fine-tuning chooses on a validation split; got {ImdbValFraction}"
            );
        if (PretrainDocuments < 0 || ImdbTrainPerClass < 0 || ImdbTestPerClass < 0)
            throw new WtnException(
                "data.pretrain_documents, data.imdb_train_per_class and data.imdb_test_per_class must be >= 0"
            );
        if ((TrainFile is null) != (TestFile is null))
            throw new WtnException(
                $"data.text.{(TrainFile is null ? "test_file" : "train_file")} is set but data.text.{(TrainFile is null ? "train_file" : "test_file")} is not: your own labelled task needs both (the validation split is carved from train_file)"
            );
        if (Corpus is { } corpus && !File.Exists(corpus) && !Directory.Exists(corpus))
            throw new WtnException($"data.text.corpus: {corpus} not found; give a .txt file or a folder of .txt files");
        foreach (var (key, file) in new[] { ("train_file", TrainFile), ("test_file", TestFile), ("vocab", Vocab) })
            if (file is not null && !File.Exists(file))
                throw new WtnException($"data.text.{key}: {file} not found");
        if (
            string.IsNullOrWhiteSpace(TextColumn)
            || string.IsNullOrWhiteSpace(LabelColumn)
            || TextColumn == LabelColumn
        )
            throw new WtnException(
                $"data.text.text_column '{TextColumn}' and data.text.label_column '{LabelColumn}' must be two different non-empty names"
            );
    }

    /// <summary>The built-in corpora this data reads (SOTU, Brown, IMDB), for <c>wtn data fetch</c>.</summary>
    public bool ReadsImdb => Corpus is null || TrainFile is null;
    public bool ReadsSotuAndBrown => Corpus is null;
}

/// <summary>
/// Everything the BERT track reads, tokenised once and cached under data/cache: the vocabulary, the masked-LM
/// pretraining corpus (with a held-out part for evaluation) and IMDB's training and test reviews.
/// </summary>
public sealed class TextExperimentData
{
    // Bump when the vocabulary recipe changes, so cached vocabularies are rebuilt.
    const string VocabRecipe = "wordpiece-v1";

    TextExperimentData(
        TextDataOptions options,
        string vocabPath,
        TextTokenizer tokenizer,
        TokenizedCorpus pretrain,
        TokenizedCorpus pretrainVal,
        TokenizedCorpus pretrainEval,
        TokenizedCorpus imdbTrain,
        int[] imdbTrainLabels,
        TokenizedCorpus imdbVal,
        int[] imdbValLabels,
        TokenizedCorpus imdbTest,
        int[] imdbTestLabels,
        LabelledTask task
    )
    {
        Task = task;
        PretrainValidation = pretrainVal;
        ImdbValidation = imdbVal;
        ImdbValidationLabels = imdbValLabels;
        Options = options;
        VocabPath = vocabPath;
        Tokenizer = tokenizer;
        Pretrain = pretrain;
        PretrainEval = pretrainEval;
        ImdbTrain = imdbTrain;
        ImdbTrainLabels = imdbTrainLabels;
        ImdbTest = imdbTest;
        ImdbTestLabels = imdbTestLabels;
    }

    public TextDataOptions Options { get; }
    public string VocabPath { get; }
    public TextTokenizer Tokenizer { get; }
    public int VocabSize => Tokenizer.VocabSize;
    public TokenizedCorpus Pretrain { get; }

    /// <summary>Held-out pretraining documents for in-run choices.</summary>
    public TokenizedCorpus PretrainValidation { get; }

    /// <summary>Held-out pretraining documents scored once per finished encoder (the masked-LM test text).</summary>
    public TokenizedCorpus PretrainEval { get; }
    public TokenizedCorpus ImdbTrain { get; }
    public IReadOnlyList<int> ImdbTrainLabels { get; }
    public TokenizedCorpus ImdbValidation { get; }
    public IReadOnlyList<int> ImdbValidationLabels { get; }
    public TokenizedCorpus ImdbTest { get; }
    public IReadOnlyList<int> ImdbTestLabels { get; }
    public const int ImdbClasses = 2;

    /// <summary>
    /// The fine-tuning task the Imdb* splits hold: IMDB sentiment, or the user's labelled files (then the Imdb* members
    /// hold their rows).
    /// </summary>
    public LabelledTask Task { get; }

    /// <summary>Positions the models need: the longer of the masked-LM and classification lengths.</summary>
    public int MaxPositions => Math.Max(Options.SequenceLength, Options.MaxLength);

    int EvalBatchSize => Options.EvalBatchSize > 0 ? Options.EvalBatchSize : Options.BatchSize;

    /// <summary>Masked-LM training batches, shuffled and masked by <paramref name="seed"/> and the epoch.</summary>
    public MaskedLmBatchSource MaskedLmTrain(long seed) =>
        new(
            Pretrain,
            VocabSize,
            new MaskedLmOptions(
                Options.BatchSize,
                Options.SequenceLength,
                Options.MaskProbability,
                Seed: (int)seed,
                Specials: Tokenizer.Specials
            )
        );

    /// <summary>Masked-LM evaluation batches: held-out documents, fixed masks (the same for every model and seed).</summary>
    public MaskedLmBatchSource MaskedLmEval() => FixedMasks(PretrainEval);

    /// <summary>Masked-LM validation batches, fixed masks as <see cref="MaskedLmEval"/>.</summary>
    public MaskedLmBatchSource MaskedLmValidation() => FixedMasks(PretrainValidation);

    MaskedLmBatchSource FixedMasks(TokenizedCorpus documents) =>
        new(
            documents,
            VocabSize,
            new MaskedLmOptions(
                EvalBatchSize,
                Options.SequenceLength,
                Options.MaskProbability,
                Seed: EvalMaskSeed,
                Shuffle: false,
                Specials: Tokenizer.Specials
            )
        );

    /// <summary>The masks of the held-out text (a window's masks do not depend on the batch size).</summary>
    public const int EvalMaskSeed = 12345;

    /// <summary>What an exported masked-LM encoder records so that <c>wtn eval</c> scores the text this run held out.</summary>
    public Models.MaskedLmHeldOut HeldOut =>
        new()
        {
            PretrainDocuments = Options.PretrainDocuments,
            Every = Options.MlmEvalEvery,
            MaskProbability = Options.MaskProbability,
            Seed = EvalMaskSeed,
            Corpus = Options.Corpus is { } c ? Path.GetFullPath(c) : null,
        };

    public SequenceClassificationBatchSource ImdbTrainBatches(long seed) =>
        new(
            ImdbTrain,
            ImdbTrainLabels,
            new ClassificationBatchOptions(
                Options.BatchSize,
                Options.MaxLength,
                (int)seed,
                Specials: Tokenizer.Specials
            )
        );

    public SequenceClassificationBatchSource ImdbValidationBatches() =>
        new(
            ImdbValidation,
            ImdbValidationLabels,
            new ClassificationBatchOptions(
                EvalBatchSize,
                Options.MaxLength,
                Shuffle: false,
                Specials: Tokenizer.Specials
            )
        );

    public SequenceClassificationBatchSource ImdbTestBatches() =>
        new(
            ImdbTest,
            ImdbTestLabels,
            new ClassificationBatchOptions(
                EvalBatchSize,
                Options.MaxLength,
                Shuffle: false,
                Specials: Tokenizer.Specials
            )
        );

    /// <summary>Reads the corpora (or the user's files), builds or loads the vocabulary and the token caches.</summary>
    public static TextExperimentData Load(string dataDir, TextDataOptions options, IProgress<string>? log = null)
    {
        options.Validate();
        var imdb = options.ReadsImdb ? ImdbReviews.Load(TextData.ImdbReviewsPath(dataDir)) : null;
        var pretrainTexts = options.Corpus is { } corpus
            ? PlainTextCorpus.ReadCorpus(corpus)
            : PretrainingTexts(dataDir, imdb);

        var cache = TextData.CacheFolder(dataDir);
        var trainerOptions = new WordPieceTrainerOptions(VocabSize: options.VocabSize);
        // A vocabulary built from the user's corpus is keyed by that text too.
        var textKey = options.Corpus is null ? "" : $"|{TextHash(pretrainTexts)}";
        var key = Convert.ToHexStringLower(
            SHA256.HashData(Encoding.UTF8.GetBytes($"{VocabRecipe}|{trainerOptions}{textKey}"))
        )[..12];
        var vocabPath = Path.Combine(cache, $"vocab-{options.VocabSize}-{key}.txt");
        TextTokenizer tokenizer;
        if (options.Vocab is { } given)
            (vocabPath, tokenizer) = (Path.GetFullPath(given), TextTokenizer.Load(given, options.Lowercase));
        else
        {
            if (!File.Exists(vocabPath))
                log?.Report(
                    $"building a {options.VocabSize}-token WordPiece vocabulary from {pretrainTexts.Count} documents"
                );
            (tokenizer, _) = WordPieceTrainer.LoadOrBuild(vocabPath, () => pretrainTexts, trainerOptions);
        }

        var (train, val, eval) = SplitPretraining(pretrainTexts, options.PretrainDocuments, options.MlmEvalEvery);
        var task = options.TrainFile is { } trainFile
            ? LabelledTask.FromFiles(trainFile, options.TestFile!, options.TextColumn, options.LabelColumn)
            : LabelledTask.Imdb(imdb!);
        var (trainIds, valIds) = options.ImdbValidationSplit().Carve(task.Train.Select(e => (long)e.Label).ToArray());
        var imdbTrain = PerClass([.. trainIds.Select(i => task.Train[(int)i])], options.ImdbTrainPerClass);
        var imdbVal = valIds.Select(i => task.Train[(int)i]).ToList();
        var imdbTest = PerClass(task.Test, options.ImdbTestPerClass);

        TokenizedCorpus Tokens(string what, IReadOnlyList<string> docs)
        {
            var (corpus, hit) = TokenCache.LoadOrBuild(cache, tokenizer, docs);
            log?.Report($"{what}: {docs.Count} documents, {corpus.TokenCount} tokens{(hit ? " (cached)" : "")}");
            return corpus;
        }
        return new TextExperimentData(
            options,
            vocabPath,
            tokenizer,
            Tokens("pretraining text", train),
            Tokens("pretraining validation text", val),
            Tokens("pretraining held-out text", eval),
            Tokens($"{task.Name} train", [.. imdbTrain.Select(e => e.Text)]),
            [.. imdbTrain.Select(e => e.Label)],
            Tokens($"{task.Name} validation", [.. imdbVal.Select(e => e.Text)]),
            [.. imdbVal.Select(e => e.Label)],
            Tokens($"{task.Name} test", [.. imdbTest.Select(e => e.Text)]),
            [.. imdbTest.Select(e => e.Label)],
            task
        )
        {
            UserFilesHash =
                options.Corpus is null && options.TrainFile is null
                    ? null
                    : TextHash(
                        (options.Corpus is null ? [] : pretrainTexts).Concat(
                            options.TrainFile is null
                                ? []
                                : task.Train.Concat(task.Test).SelectMany(e => new[] { e.Text, task.Classes[e.Label] })
                        )
                    ),
        };
    }

    /// <summary>SHA-256 (hex) of documents, length-prefixed: what a user's text contributes to keys and fingerprints.</summary>
    internal static string TextHash(IEnumerable<string> documents)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> length = stackalloc byte[4];
        foreach (var doc in documents)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(length, doc.Length);
            hash.AppendData(length);
            hash.AppendData(Encoding.UTF8.GetBytes(doc));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>
    /// SHA-256 of the user's corpus and labelled files as read (null when the data is the built-in corpora only): a run's
    /// stages record it, so editing a file is a change of settings.
    /// </summary>
    public string? UserFilesHash { get; private init; }

    /// <summary>All pretraining text in its fixed order: SOTU, Brown, then IMDB's training reviews (never its test half).</summary>
    public static List<string> PretrainingTexts(string dataDir, ImdbDataset? imdb = null)
    {
        var sotu = PlainTextCorpus.Read(TextData.SotuFolder(dataDir));
        var brown = BrownCorpus.Read(TextData.BrownFolder(dataDir));
        imdb ??= ImdbReviews.Load(TextData.ImdbReviewsPath(dataDir));
        return [.. sotu, .. brown, .. imdb.Train.Select(e => e.Text)];
    }

    /// <summary>
    /// <paramref name="documents"/> of the pretraining texts spread evenly (0 = all), then every <paramref name="every"/>-th
    /// of those held out as test text (at least the last one) and the one before each as validation text (at least the
    /// last but one).
    /// </summary>
    public static (List<string> Train, List<string> Validation, List<string> HeldOut) SplitPretraining(
        List<string> texts,
        int documents,
        int every
    )
    {
        if (every < 3)
            throw new WtnException($"data.mlm_eval_every must be at least 3, got {every}");
        var used = Spread(texts, documents);
        if (used.Count < 3)
            throw new WtnException(
                $"data.pretrain_documents: {used.Count} document(s) cannot give training, validation and test text; use at least 3"
            );
        var heldOut = used.Where((_, i) => i % every == every - 1).ToList();
        var validation = used.Where((_, i) => i % every == every - 2).ToList();
        var train = used.Where((_, i) => i % every < every - 2).ToList();
        if (heldOut.Count == 0)
        {
            (heldOut, validation) = ([used[^1]], [used[^2]]);
            train = used.Take(used.Count - 2).ToList();
        }
        return (train, validation, heldOut);
    }

    /// <summary><paramref name="n"/> documents spread evenly over the list (all when n is 0 or too large).</summary>
    static List<string> Spread(List<string> docs, int n) =>
        n <= 0 || n >= docs.Count
            ? docs
            : [.. Enumerable.Range(0, n).Select(j => docs[(int)((long)j * docs.Count / n)])];

    /// <summary>The first <paramref name="perClass"/> examples of each label, in the original order (all when 0).</summary>
    public static List<TextExample> PerClass(IReadOnlyList<TextExample> examples, int perClass)
    {
        if (perClass <= 0)
            return [.. examples];
        var taken = new Dictionary<int, int>();
        var kept = new List<TextExample>();
        foreach (var e in examples)
        {
            int c = taken.GetValueOrDefault(e.Label);
            if (c < perClass)
            {
                kept.Add(e);
                taken[e.Label] = c + 1;
            }
        }
        return kept;
    }
}

/// <summary>
/// A labelled text task: training and test examples with class ids, and the class names in id order. IMDB sentiment,
/// or the user's own CSV/TSV/JSONL files (classes from the training file, <see cref="LabelledTextFile.Classes"/>).
/// </summary>
public sealed record LabelledTask(
    string Name,
    IReadOnlyList<TextExample> Train,
    IReadOnlyList<TextExample> Test,
    IReadOnlyList<string> Classes
)
{
    /// <summary>IMDB's labels in order.</summary>
    public static readonly IReadOnlyList<string> ImdbClasses = ["negative", "positive"];

    public static LabelledTask Imdb(ImdbDataset imdb) => new("IMDB", imdb.Train, imdb.Test, ImdbClasses);

    public static LabelledTask FromFiles(string trainFile, string testFile, string textColumn, string labelColumn)
    {
        var trainRows = LabelledTextFile.Read(trainFile, textColumn, labelColumn);
        var classes = LabelledTextFile.Classes(trainFile, trainRows);
        var train = LabelledTextFile.Examples(trainFile, trainRows, classes, trainFile);
        var test = LabelledTextFile.Examples(
            testFile,
            LabelledTextFile.Read(testFile, textColumn, labelColumn),
            classes,
            $"the training file {trainFile}"
        );
        return new LabelledTask(Path.GetFileName(trainFile), train, test, classes);
    }
}
