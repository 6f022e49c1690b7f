using WideThenNarrow.Config;

namespace WideThenNarrow.Models;

/// <summary>Which head a BERT model carries.</summary>
public enum BertHead
{
    /// <summary>Pooler (dense+tanh on [CLS]), dropout, classifier: HuggingFace BertForSequenceClassification.</summary>
    Classification,

    /// <summary>Transform (dense+GELU+LayerNorm) and a decoder tied to the word embeddings: BertForMaskedLM.</summary>
    MaskedLm,
}

/// <summary>
/// Everything needed to build a model. <see cref="Name"/> picks the architecture (see <see cref="ModelFactory.Names"/>);
/// the other fields are options, each read only by the families it concerns.
/// </summary>
public sealed record ModelConfig : IValidatedConfig
{
    // Bounds far above any network of the zoo, low enough that a hostile manifest or a typo cannot make a
    // single layer take gigabytes before anything else is checked.
    public const int MaxClasses = 100_000;
    public const int MaxChannels = 4096;
    public const int MaxImageSize = 8192;
    public const int MaxInputDim = 1 << 24;
    public const int MaxWidth = 65_536;
    public const int MaxDepth = 10_000;
    public const int MaxWidenFactor = 64;
    public const int MaxVocab = 1_000_000;
    public const int MaxPositionsLimit = 65_536;

    /// <summary>mlp, cifar-resnet20/32/44/56/110 (any 6n+2), resnet18/34/50/101/152, bert-tiny/mini/small/medium/base/large, or bert.</summary>
    public required string Name { get; init; }

    public Widening Widen { get; init; } = Widening.None;

    /// <summary>BERT under inner widening: widen each head's size (default) or multiply the number of heads.</summary>
    public HeadWidening WidenHeads { get; init; } = HeadWidening.Size;

    /// <summary>Output classes (classification heads).</summary>
    public int Classes { get; init; } = 10;

    // Images (ResNets; the MLP flattens images).
    public int InputChannels { get; init; } = 3;

    /// <summary>
    /// Nominal square input size for summaries (the ResNets pool adaptively and accept any size);
    /// null = the layout's own (224 for resnet18..152, 32 for the CIFAR layout).
    /// </summary>
    public int? ImageSize { get; init; }

    /// <summary>CIFAR layout only: 1x1 conv + BN shortcuts (option B) instead of parameter-free ones (option A).</summary>
    public bool ProjectionShortcuts { get; init; }

    /// <summary>CIFAR layout only: the stem's and first stage's width w; the stages are w, 2w, 4w (He et al.: 16).</summary>
    public int BaseWidth { get; init; } = DefaultBaseWidth;

    public const int DefaultBaseWidth = 16;

    // MLP.
    /// <summary>Input features (an image input is flattened: channels x height x width).</summary>
    public int InputDim { get; init; } = 784;

    /// <summary>Hidden width W.</summary>
    public int Width { get; init; } = 256;

    /// <summary>Blocks: the input layer plus Depth-1 hidden blocks.</summary>
    public int Depth { get; init; } = 8;

    /// <summary>Hidden blocks are x + Linear(K*W,W)(ReLU(Linear(W,K*W)(x))) instead of ReLU(Linear(W,W)(x)).</summary>
    public bool Residual { get; init; }

    // BERT: a preset name fills these; set any of them to override (plain "bert" needs Layers, Hidden and Heads).
    public int? Layers { get; init; }
    public int? Hidden { get; init; }
    public int? Heads { get; init; }

    /// <summary>Feed-forward size (default 4 x Hidden).</summary>
    public int? Intermediate { get; init; }
    public int Vocab { get; init; } = 30522;
    public int MaxPositions { get; init; } = 512;
    public int TypeVocab { get; init; } = 2;
    public BertHead Head { get; init; } = BertHead.Classification;

    /// <summary>
    /// Masked-LM head: the share of positions it runs on, for MAC counts (training and evaluation score the masked
    /// positions only, so a masked-LM experiment sets its mask probability; 1 = every position).
    /// </summary>
    public double HeadPositionShare { get; init; } = 1;
    public double Dropout { get; init; } = 0.1;

    /// <summary>
    /// BERT: start with a locality prior (<see cref="Bert"/>'s <c>ApplyLocalityPrior</c>): sinusoidal position
    /// embeddings in the first 32 hidden dimensions, and layer 0's first two heads looking one token right and one
    /// left. Only the initial weights differ: the network is a plain BERT.
    /// </summary>
    public bool LocalityPrior { get; init; }

    /// <summary>The locality prior's query/key gain: the neighbour's attention logit grows as its square over sqrt(head size).</summary>
    public double LocalityGain { get; init; } = DefaultLocalityGain;

    /// <summary>The gain the prior was built and measured with (heads of 64: ~0.63 of layer 0's attention on the neighbour).</summary>
    public const double DefaultLocalityGain = 1.5;

    /// <summary>Every size positive and within the bounds above, whichever family reads it.</summary>
    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Widen), Widen.Factor, 1, MaxWidenFactor, "the widening factor K");
        at.InRange(nameof(Classes), Classes, 1, MaxClasses);
        at.InRange(nameof(InputChannels), InputChannels, 1, MaxChannels);
        at.InRangeIfSet(nameof(ImageSize), ImageSize, 1, MaxImageSize);
        at.InRange(nameof(InputDim), InputDim, 1, MaxInputDim);
        at.InRange(nameof(Width), Width, 1, MaxWidth);
        at.InRange(nameof(Depth), Depth, 1, MaxDepth);
        at.InRangeIfSet(nameof(Layers), Layers, 1, MaxDepth);
        at.InRangeIfSet(nameof(Hidden), Hidden, 1, MaxWidth);
        at.InRangeIfSet(nameof(Heads), Heads, 1, MaxWidth);
        at.InRangeIfSet(nameof(Intermediate), Intermediate, 1, 4 * MaxWidth);
        at.InRange(nameof(Vocab), Vocab, 1, MaxVocab);
        at.InRange(nameof(MaxPositions), MaxPositions, 1, MaxPositionsLimit);
        at.InRange(nameof(TypeVocab), TypeVocab, 1, MaxChannels);
        at.InRange(nameof(Dropout), Dropout, 0, 1, maxExclusive: true);
        at.InRange(nameof(LocalityGain), LocalityGain, 0.01, 10, meaning: "the locality prior's query/key gain");
        at.InRange(nameof(HeadPositionShare), HeadPositionShare, double.Epsilon, 1);
    }
}
