using WideThenNarrow.Config;

namespace WideThenNarrow.Models;

/// <summary>
/// A model of the zoo as a config file names it: <c>models.thin</c> etc. of an experiment, <c>model</c> of <c>wtn train</c>
/// (see <see cref="ModelConfig"/> for the meaning). What the dataset decides (input size, and unless set, classes and
/// channels) is filled in when the dataset is open (<see cref="ToModelConfig"/>).
/// </summary>
[FormerKey("input_dim", Advice = "the dataset sets it (channels x height x width); remove the key")]
[FormerKey(
    "image_size",
    Advice = "the dataset sets it (data.resize reads an image folder at another size); remove the key"
)]
public sealed record ModelSpec : IValidatedConfig
{
    public string Name { get; init; } = "cifar-resnet20";

    /// <summary>none, inner=K or full=K.</summary>
    public string Widen { get; init; } = "none";

    /// <summary>
    /// BERT under inner widening: size (each head K times wider, the head count kept, so attention transfers head by
    /// head) or count (K times the heads, each of the thin head size: attention only comparable head-averaged).
    /// </summary>
    public HeadWidening WidenHeads { get; init; } = HeadWidening.Size;

    /// <summary>0 = the dataset's number of classes.</summary>
    public int Classes { get; init; }

    /// <summary>0 = the dataset's channels.</summary>
    public int InputChannels { get; init; }
    public bool ProjectionShortcuts { get; init; }

    /// <summary>CIFAR ResNets: stage widths w, 2w, 4w (default 16, He et al.'s).</summary>
    public int BaseWidth { get; init; } = ModelConfig.DefaultBaseWidth;
    public int Width { get; init; } = 256;
    public int Depth { get; init; } = 8;
    public bool Residual { get; init; }

    /// <summary>BERT: override the preset's sizes (plain "bert" needs layers, hidden and heads).</summary>
    public int? Layers { get; init; }
    public int? Hidden { get; init; }
    public int? Heads { get; init; }

    /// <summary>BERT feed-forward size (default 4 x hidden).</summary>
    public int? Intermediate { get; init; }

    /// <summary>BERT position and token-type table sizes (default: the data's longest sequence, and 2).</summary>
    public int? MaxPositions { get; init; }
    public int? TypeVocab { get; init; }

    /// <summary>
    /// BERT: the dropout rate of the embeddings, attention probabilities, hidden states and classifier, whenever this
    /// network trains (default 0.1, BERT's). 0 turns it off, e.g. for pretraining that sees each token about once and
    /// underfits (as Geiping and Goldstein's "Cramming" does).
    /// </summary>
    public double? Dropout { get; init; }

    /// <summary>
    /// BERT: initialise with a locality prior (sinusoidal positions; layer 0's first two heads attending to the next and
    /// the previous token), default off. Without it, masked-LM encoders on 128-token windows were seen to learn no
    /// positional attention within thousands of steps (docs/results.md, "BERT (issue 25)"). Only the initialisation
    /// changes: weights stay a plain HuggingFace BERT.
    /// </summary>
    public bool? LocalityPrior { get; init; }

    /// <summary>
    /// BERT: the locality prior's query/key gain (default 1.5). The neighbour's attention logit grows as gain^2 /
    /// sqrt(head size), so at the default heads of 64 start with ~0.63 of their attention on the neighbour and heads of
    /// 256 with ~0.41; 1.5 x (head size / 64)^(1/4) (2.12 for heads of 256) gives them the start of heads of 64.
    /// </summary>
    public double? LocalityGain { get; init; }

    /// <summary>The model for a dataset of these classes, channels and square image size; <paramref name="keyPath"/> (e.g. models.thin) names it in errors.</summary>
    public ModelConfig ToModelConfig(int datasetClasses, int datasetChannels, int imageSize, string keyPath)
    {
        int channels = InputChannels > 0 ? InputChannels : datasetChannels;
        var preset = new ModelConfig { Name = Name };
        return new()
        {
            Name = Name,
            Widen = Widening.Parse(Widen, $"{keyPath}.widen"),
            WidenHeads = WidenHeads,
            Classes = Classes > 0 ? Classes : datasetClasses,
            InputChannels = channels,
            ImageSize = imageSize,
            InputDim = channels * imageSize * imageSize,
            ProjectionShortcuts = ProjectionShortcuts,
            BaseWidth = BaseWidth,
            Width = Width,
            Depth = Depth,
            Residual = Residual,
            Layers = Layers,
            Hidden = Hidden,
            Heads = Heads,
            Intermediate = Intermediate,
            MaxPositions = MaxPositions ?? preset.MaxPositions,
            TypeVocab = TypeVocab ?? preset.TypeVocab,
            Dropout = Dropout ?? preset.Dropout,
            LocalityPrior = LocalityPrior ?? preset.LocalityPrior,
            LocalityGain = LocalityGain ?? preset.LocalityGain,
        };
    }

    /// <summary>The bounds of <see cref="ModelConfig"/>; 0 stands for the dataset's classes and channels, known later.</summary>
    public void Validate(ConfigKeys at)
    {
        at.InRange(nameof(Classes), Classes, 0, ModelConfig.MaxClasses, "0 = the dataset's");
        at.InRange(nameof(InputChannels), InputChannels, 0, ModelConfig.MaxChannels, "0 = the dataset's");
        Widening.Parse(Widen, $"{at.Source}: key '{at[nameof(Widen)]}'");
        ToModelConfig(Math.Max(1, Classes), Math.Max(1, InputChannels), 1, at.Path).Validate(at);
    }
}
