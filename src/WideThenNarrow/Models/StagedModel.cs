using TorchSharp;
using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>What a model consumes besides the running activation. The model never disposes these.</summary>
public sealed class ModelInput
{
    public ModelInput(Tensor input, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        Input = input;
        AttentionMask = attentionMask;
        TokenTypeIds = tokenTypeIds;
    }

    /// <summary>Images (N,C,H,W), token ids (N,T) or features (N,D).</summary>
    public Tensor Input { get; }

    /// <summary>(N,T), 1 where a token is real, 0 for padding. Transformers only.</summary>
    public Tensor? AttentionMask { get; }

    /// <summary>(N,T) segment ids. Transformers only.</summary>
    public Tensor? TokenTypeIds { get; }
}

/// <summary>How an activation is laid out, so adapters (1x1 conv vs linear) and losses know its shape.</summary>
public enum ActivationLayout
{
    /// <summary>(N, C, H, W): convolutional feature maps.</summary>
    Channels,

    /// <summary>(N, T, H): one vector per token.</summary>
    Tokens,

    /// <summary>(N, D): one vector per example.</summary>
    Features,
}

/// <summary>
/// The activation after block <see cref="Index"/> (block 0 is the stem). <see cref="Width"/> is its channel /
/// hidden size. <see cref="SkipCrosses"/> is true when a residual path carries this activation past the next
/// block's first linear map, so a linear adapter here cannot be folded into that map exactly.
/// </summary>
public sealed record ImitationPoint(int Index, string Name, int Width, ActivationLayout Layout, bool SkipCrosses);

/// <summary>
/// A network as the method sees it: an ordered list of blocks (stem first), each runnable on its own, and a
/// head. Intermediate activations are part of the interface (as timm's forward_intermediates), never hooks.
/// Parameter names are PyTorch's (torchvision / HuggingFace), so state_dicts round-trip.
/// </summary>
public abstract class StagedModel : nn.Module<ModelInput, Tensor>
{
    protected StagedModel(string name)
        : base(name) { }

    /// <summary>"resnet", "bert" or "mlp".</summary>
    public abstract string Family { get; }

    /// <summary>Imitation points; point i is the output of block i.</summary>
    public abstract IReadOnlyList<ImitationPoint> Points { get; }

    public int BlockCount => Points.Count;

    /// <summary>The submodules that make up block i (their parameters are what block i trains).</summary>
    public abstract IReadOnlyList<nn.Module> BlockModules(int i);

    /// <summary>The submodules of the head (classifier / pooler / MLM decoder).</summary>
    public abstract IReadOnlyList<nn.Module> HeadModules { get; }

    /// <summary>
    /// Runs block i. Block 0 (the stem) reads <paramref name="input"/>.Input and ignores <paramref name="x"/>;
    /// block i &gt; 0 maps the previous point's activation <paramref name="x"/> to point i.
    /// </summary>
    public abstract Tensor ForwardBlock(int i, Tensor? x, ModelInput input);

    /// <summary>Maps the last point's activation to logits.</summary>
    public abstract Tensor ForwardHead(Tensor h, ModelInput input);

    public override Tensor forward(ModelInput input)
    {
        var h = ForwardTrunk(input);
        var logits = ForwardHead(h, input);
        if (!ReferenceEquals(logits, h))
            h.Dispose();
        return logits;
    }

    /// <summary>
    /// The last point's activation: every block, no head. Each block's output is disposed once the next block has
    /// consumed it (autograd keeps what backward needs), so an eval pass holds one or two activations at a time
    /// rather than all of them until the caller's scope ends.
    /// </summary>
    public Tensor ForwardTrunk(ModelInput input)
    {
        Tensor? h = null;
        for (int i = 0; i < BlockCount; i++)
        {
            var next = ForwardBlock(i, h, input);
            if (h is not null && !ReferenceEquals(h, next) && !ReferenceEquals(h, input.Input))
                h.Dispose();
            h = next;
        }
        return h!;
    }

    /// <summary>Logits plus the activation at every imitation point, from one forward pass.</summary>
    public (Tensor Logits, Tensor[] Points) ForwardIntermediates(ModelInput input)
    {
        var points = new Tensor[BlockCount];
        Tensor? h = null;
        for (int i = 0; i < BlockCount; i++)
            points[i] = h = ForwardBlock(i, h, input);
        return (ForwardHead(h!, input), points);
    }

    /// <summary>Activations at points 0..upTo only (no head), e.g. for a teacher feeding stage 2.</summary>
    public Tensor[] ForwardPoints(ModelInput input, int upTo)
    {
        var points = new Tensor[upTo + 1];
        Tensor? h = null;
        for (int i = 0; i <= upTo; i++)
            points[i] = h = ForwardBlock(i, h, input);
        return points;
    }

    public IEnumerable<TorchSharp.Modules.Parameter> BlockParameters(int i) =>
        BlockModules(i).SelectMany(m => m.parameters());

    public IEnumerable<TorchSharp.Modules.Parameter> HeadParameters() => HeadModules.SelectMany(m => m.parameters());
}

/// <summary>A staged model whose blocks can also return their attention probabilities (transformers).</summary>
public interface IAttentionModel
{
    /// <summary>Number of attention heads in block i (0 for the embeddings).</summary>
    int HeadsAt(int i);

    /// <summary>Runs block i &gt; 0 and also returns its attention probabilities (N, heads, T, T).</summary>
    (Tensor Hidden, Tensor Attention) ForwardBlockWithAttention(int i, Tensor x, ModelInput input);
}
