using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>Sizes of a BERT encoder, after presets, overrides and widening.</summary>
public sealed record BertSizes(int Layers, int Hidden, int Heads, int Intermediate, int HeadSize)
{
    static readonly Dictionary<string, (int Layers, int Hidden, int Heads)> Presets = new()
    {
        ["bert-tiny"] = (2, 128, 2),
        ["bert-mini"] = (4, 256, 4),
        ["bert-small"] = (4, 512, 8),
        ["bert-medium"] = (8, 512, 8),
        ["bert-base"] = (12, 768, 12),
        ["bert-large"] = (24, 1024, 16),
    };

    public static IEnumerable<string> PresetNames => Presets.Keys;

    /// <summary>
    /// Thin sizes from the preset (or the config's fields for plain "bert"), then widening: inner=K multiplies the
    /// feed-forward size and each head's size (<see cref="HeadWidening.Size"/>, the head count kept) or the number of
    /// heads (<see cref="HeadWidening.Count"/>); full=K multiplies the hidden size, the feed-forward size and the number
    /// of heads, each head keeping its size.
    /// </summary>
    public static BertSizes From(ModelConfig c)
    {
        var name = c.Name.Trim().ToLowerInvariant();
        (int Layers, int Hidden, int Heads)? preset = Presets.TryGetValue(name, out var p) ? p : null;
        int layers = c.Layers ?? preset?.Layers ?? throw Missing(c, "layers");
        int hidden = c.Hidden ?? preset?.Hidden ?? throw Missing(c, "hidden");
        int heads = c.Heads ?? preset?.Heads ?? throw Missing(c, "heads");
        int intermediate = c.Intermediate ?? 4 * hidden;
        if (
            layers < 1
            || hidden < 1
            || heads < 1
            || intermediate < 1
            || c.Vocab < 1
            || c.MaxPositions < 1
            || c.TypeVocab < 1
        )
            throw new WtnException(
                $"model {c.Name}: layers, hidden, heads, intermediate, vocab, max positions and type vocab must be positive"
            );
        if (hidden % heads != 0)
            throw new WtnException(
                $"model {c.Name}: hidden size {hidden} is not a multiple of the number of heads {heads}"
            );
        int full = c.Widen.Full,
            inner = c.Widen.Inner;
        var (headCount, headSize) =
            c.WidenHeads == HeadWidening.Size ? (heads, hidden / heads * inner) : (heads * inner, hidden / heads);
        return new BertSizes(layers, hidden * full, headCount * full, intermediate * full * inner, headSize);
    }

    static WtnException Missing(ModelConfig c, string field) =>
        new($"model {c.Name}: a custom BERT needs '{field}' (or use a preset: {string.Join(", ", Presets.Keys)})");
}

/// <summary>
/// BERT encoder written out (post-LayerNorm, exact GELU, learned positions, token types) with HuggingFace's
/// parameter names, and either BertForSequenceClassification's head (pooler + classifier) or BertForMaskedLM's
/// (transform + decoder tied to the word embeddings; no pooler, as in HuggingFace). Block 0 = embeddings,
/// blocks 1..L = encoder layers.
/// </summary>
public sealed class Bert : StagedModel, IAttentionModel, IMacCounting
{
    readonly BertSizes sizes;
    readonly BertHead head;
    readonly int classes;
    readonly int vocab;
    readonly int maxPositions;
    readonly double headPositionShare;
    readonly BertCore bert;
    readonly Linear? classifier;
    readonly Dropout? dropout;
    readonly MlmHead? cls;
    readonly ImitationPoint[] points;

    public Bert(ModelConfig c, Device? device = null)
        : base(c.Name)
    {
        sizes = BertSizes.From(c);
        head = c.Head;
        classes = c.Classes;
        vocab = c.Vocab;
        maxPositions = c.MaxPositions;
        headPositionShare = c.HeadPositionShare;
        if (head == BertHead.Classification && c.Classes < 1)
            throw new WtnException($"model {c.Name}: classes must be positive (got {c.Classes})");
        bert = new BertCore(sizes, c, withPooler: head == BertHead.Classification, device);
        register_module("bert", bert);
        if (head == BertHead.Classification)
        {
            dropout = nn.Dropout(c.Dropout);
            classifier = nn.Linear(sizes.Hidden, c.Classes, device: device);
            register_module("dropout", dropout);
            register_module("classifier", classifier);
        }
        else
        {
            // One Parameter object for both names, so parameters() lists the tied weight once.
            var tied = bert.Embeddings.WordEmbeddings.weight!;
            bert.Embeddings.WordEmbeddings.weight = tied;
            cls = new MlmHead(sizes.Hidden, c.Vocab, tied, device);
            register_module("cls", cls);
        }
        points = Enumerable
            .Range(0, sizes.Layers + 1)
            .Select(i => new ImitationPoint(
                i,
                i == 0 ? "bert.embeddings" : $"bert.encoder.layer.{i - 1}",
                sizes.Hidden,
                ActivationLayout.Tokens,
                i < sizes.Layers
            ))
            .ToArray();
        InitialiseAsHuggingFace();
        if (c.LocalityPrior)
            ApplyLocalityPrior(c.Name, c.LocalityGain);
    }

    public override string Family => "bert";
    public BertSizes Sizes => sizes;
    public override IReadOnlyList<ImitationPoint> Points => points;

    public override IReadOnlyList<nn.Module> BlockModules(int i) => i == 0 ? [bert.Embeddings] : [bert.Layers[i - 1]];

    /// <summary>Pooler + classifier, or cls (whose decoder weight is block 0's word embeddings, tied).</summary>
    public override IReadOnlyList<nn.Module> HeadModules =>
        head == BertHead.Classification ? [bert.Pooler!, classifier!] : [cls!];

    public int HeadsAt(int i) => i == 0 ? 0 : sizes.Heads;

    public override Tensor ForwardBlock(int i, Tensor? x, ModelInput input)
    {
        if (i == 0)
        {
            if (input.Input.shape[1] > maxPositions)
                throw new WtnException(
                    $"sequence length {input.Input.shape[1]} exceeds the model's max positions {maxPositions}: truncate the input or build the model with more positions"
                );
            return bert.Embeddings.Forward(input.Input, input.TokenTypeIds);
        }
        var (hidden, probs) = ForwardBlockWithAttention(i, x ?? throw new ArgumentNullException(nameof(x)), input);
        probs.Dispose(); // (N, heads, T, T): the largest tensor of the block; autograd keeps its own reference in training
        return hidden;
    }

    public (Tensor Hidden, Tensor Attention) ForwardBlockWithAttention(int i, Tensor x, ModelInput input)
    {
        if (i < 1)
            throw new ArgumentOutOfRangeException(nameof(i), "block 0 (embeddings) has no attention");
        using var mask = AdditiveMask(input.AttentionMask, x.dtype);
        return bert.Layers[i - 1].Forward(x, mask);
    }

    public override Tensor ForwardHead(Tensor h, ModelInput input)
    {
        if (cls is not null)
            return cls.Forward(h);
        using var dropped = Dropped(bert.Pooler!.Forward(h), dropout!);
        return classifier!.call(dropped);
    }

    /// <summary>(N,1,1,T): 0 where a key is real, the dtype's lowest value where it is padding (as HuggingFace).</summary>
    static Tensor? AdditiveMask(Tensor? attentionMask, ScalarType dtype)
    {
        if (attentionMask is null)
            return null;
        using var cast = attentionMask.to_type(dtype);
        using var m1 = cast.unsqueeze(1);
        using var m = m1.unsqueeze(1);
        using var inverted = m.neg(); // 1 - m, without TorchSharp's scalar-minus-tensor temporary
        inverted.add_(1.0);
        return inverted.mul(
            dtype == ScalarType.Float64 ? double.MinValue
            : dtype == ScalarType.Float32 ? float.MinValue
            : -1e4
        );
    }

    public long[] OutputShape(int i, long[] inputShape) => [inputShape[0], sizes.Hidden];

    public long BlockMacs(int i, long[] inputShape, long[] outputShape)
    {
        if (i == 0)
            return 0;
        long t = outputShape[0],
            h = sizes.Hidden,
            a = (long)sizes.Heads * sizes.HeadSize,
            ff = sizes.Intermediate;
        // Q,K,V projections, scores and weighted values, attention output, feed-forward in and out.
        return t * h * a * 3 + 2 * t * t * a + t * a * h + 2 * t * h * ff;
    }

    public long HeadMacs(long[] lastPointShape)
    {
        long h = sizes.Hidden;
        // The masked-LM head runs on the masked positions only (MaskedLmObjective.MaskedLogits).
        return head == BertHead.Classification
            ? h * h + h * classes
            : (long)Math.Round(headPositionShare * lastPointShape[0] * (h * h + h * vocab));
    }

    void InitialiseAsHuggingFace()
    {
        using var _ = no_grad();
        foreach (var m in modules())
        {
            switch (m)
            {
                case Linear lin:
                    nn.init.normal_(lin.weight!, 0, 0.02);
                    lin.bias?.zero_();
                    break;
                case Embedding emb:
                    nn.init.normal_(emb.weight!, 0, 0.02);
                    break;
                case LayerNorm ln:
                    ln.weight!.fill_(1);
                    ln.bias!.zero_();
                    break;
            }
        }
        cls?.Bias.zero_();
    }

    /// <summary>Hidden dimensions that carry the sinusoidal positions of the locality prior.</summary>
    public const int LocalityDims = 32;

    /// <summary>
    /// The locality prior (<see cref="ModelConfig.LocalityPrior"/>). Masked-LM encoders initialised as HuggingFace's
    /// attend by content only for thousands of steps: at initialisation a neighbour gets 1/T of the attention, so the
    /// signal that would teach positional attention is diluted by the window length (docs/results.md, "BERT (issue
    /// 25)"). Here the position table is sinusoidal in its first <see cref="LocalityDims"/> dimensions (amplitude 0.3,
    /// frequencies 10000^(-f/16)) and zero elsewhere, and in layer 0 the query and key maps of head 0 (head 1) read
    /// those dimensions so that query i matches key j best where j = i + 1 (i - 1): the key map rotates each sine-cosine
    /// pair by one position's angle, both maps scaled by <paramref name="gain"/>. At initialisation, with the default gain
    /// 1.5 and heads of 64 on a 128-token window, these heads put about 0.63 of their attention on the next (previous)
    /// token and 0.2 on the token itself; heads of 256 (the logits divided by 16 instead of 8) about 0.41 and 0.23.
    /// Training may change or undo all of it.
    /// </summary>
    void ApplyLocalityPrior(string name, double gain)
    {
        const double amplitude = 0.3;
        const int pairs = LocalityDims / 2;
        if (sizes.Heads < 2 || sizes.HeadSize < LocalityDims || sizes.Hidden < LocalityDims)
            throw new WtnException(
                $"model {name}: locality_prior needs at least 2 heads of at least {LocalityDims} dimensions and a hidden size of at least {LocalityDims} (got {sizes.Heads} heads of {sizes.HeadSize}, hidden {sizes.Hidden})"
            );
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // the indexers' scalar tensors
        var table = new float[maxPositions * sizes.Hidden];
        var frequency = new double[pairs];
        for (int f = 0; f < pairs; f++)
            frequency[f] = Math.Pow(10000.0, -(double)f / pairs);
        for (int t = 0; t < maxPositions; t++)
        for (int f = 0; f < pairs; f++)
        {
            table[t * sizes.Hidden + 2 * f] = (float)(amplitude * Math.Sin(t * frequency[f]));
            table[t * sizes.Hidden + 2 * f + 1] = (float)(amplitude * Math.Cos(t * frequency[f]));
        }
        using (var positions = bert.Embeddings.Positions.weight!)
        using (var values = tensor(table, [maxPositions, sizes.Hidden], device: positions.device))
            positions.copy_(values);
        var self = bert.Layers[0].SelfAttention;
        var query = self.Query.weight!; // a Linear's weight is its own Parameter, not a new handle: not ours to dispose
        var key = self.Key.weight!;
        foreach (var (h, shift) in new[] { (0, 1), (1, -1) })
            for (int f = 0; f < pairs; f++)
            {
                // q_i = g p_i and k_j = g R(shift) p_j = g p_(j - shift) on the pair: q_i . k_j peaks at j = i + shift.
                double w = -shift * frequency[f],
                    cos = gain * Math.Cos(w),
                    sin = gain * Math.Sin(w);
                long row = (long)h * sizes.HeadSize + 2 * f;
                query[row, 2 * f] = gain;
                query[row + 1, 2 * f + 1] = gain;
                key[row, 2 * f] = cos;
                key[row, 2 * f + 1] = sin;
                key[row + 1, 2 * f] = -sin;
                key[row + 1, 2 * f + 1] = cos;
            }
    }

    /// <summary>HuggingFace's BertModel: embeddings, encoder.layer.*, optional pooler.</summary>
    sealed class BertCore : Container
    {
        public BertCore(BertSizes s, ModelConfig c, bool withPooler, Device? device)
            : base("BertModel")
        {
            Embeddings = new Embeddings(s.Hidden, c, device);
            Layers = new ModuleList<Layer>([
                .. Enumerable.Range(0, s.Layers).Select(_ => new Layer(s, c.Dropout, device)),
            ]);
            register_module("embeddings", Embeddings);
            register_module("encoder", new Encoder(Layers));
            if (withPooler)
            {
                Pooler = new PoolerModule(s.Hidden, device);
                register_module("pooler", Pooler);
            }
        }

        public Embeddings Embeddings { get; }
        public ModuleList<Layer> Layers { get; }
        public PoolerModule? Pooler { get; }
    }

    sealed class Encoder : Container
    {
        public Encoder(ModuleList<Layer> layers)
            : base("BertEncoder") => register_module("layer", layers);
    }

    sealed class Embeddings : Container
    {
        readonly Embedding positions;
        readonly Embedding tokenTypes;
        readonly LayerNorm norm;
        readonly Dropout dropout;

        public Embeddings(int hidden, ModelConfig c, Device? device)
            : base("BertEmbeddings")
        {
            WordEmbeddings = nn.Embedding(c.Vocab, hidden, device: device);
            positions = nn.Embedding(c.MaxPositions, hidden, device: device);
            tokenTypes = nn.Embedding(c.TypeVocab, hidden, device: device);
            norm = nn.LayerNorm(hidden, eps: 1e-12, device: device);
            dropout = nn.Dropout(c.Dropout);
            register_module("word_embeddings", WordEmbeddings);
            register_module("position_embeddings", positions);
            register_module("token_type_embeddings", tokenTypes);
            register_module("LayerNorm", norm);
            register_module("dropout", dropout);
        }

        public Embedding WordEmbeddings { get; }
        public Embedding Positions => positions;

        public Tensor Forward(Tensor ids, Tensor? tokenTypeIds)
        {
            using var range = arange(ids.shape[1], dtype: ScalarType.Int64, device: ids.device);
            using var positionIds = range.unsqueeze(0);
            using var words = WordEmbeddings.call(ids);
            using var position = positions.call(positionIds);
            // TorchSharp's Embedding.weight hands out a new handle on every read: ours to dispose.
            using var table = tokenTypeIds is null ? tokenTypes.weight : null;
            using var type = table is not null ? table[0] : tokenTypes.call(tokenTypeIds!);
            using var sum = words + position;
            sum.add_(type); // sum is this method's own tensor, and an addition's backward needs neither input
            var normed = norm.call(sum);
            return Dropped(normed, dropout);
        }
    }

    sealed class Layer : Container
    {
        readonly AttentionModule attention;
        readonly DenseModule intermediate;
        readonly DenseNorm output;

        public Layer(BertSizes s, double dropout, Device? device)
            : base("BertLayer")
        {
            attention = new AttentionModule(s, dropout, device);
            intermediate = new DenseModule(s.Hidden, s.Intermediate, device);
            output = new DenseNorm(s.Intermediate, s.Hidden, dropout, device);
            register_module("attention", attention);
            register_module("intermediate", intermediate);
            register_module("output", output);
        }

        public SelfAttention SelfAttention => attention.Self;

        public (Tensor Hidden, Tensor Attention) Forward(Tensor x, Tensor? mask)
        {
            var (a, probs) = attention.Forward(x, mask);
            using (a)
            {
                using var inner = intermediate.Forward(a);
                using var activated = nn.functional.gelu(inner);
                return (output.Forward(activated, a), probs);
            }
        }
    }

    sealed class AttentionModule : Container
    {
        readonly SelfAttention self;
        readonly DenseNorm output;

        public AttentionModule(BertSizes s, double dropout, Device? device)
            : base("BertAttention")
        {
            self = new SelfAttention(s, dropout, device);
            output = new DenseNorm(s.Heads * s.HeadSize, s.Hidden, dropout, device);
            register_module("self", self);
            register_module("output", output);
        }

        public SelfAttention Self => self;

        public (Tensor Hidden, Tensor Attention) Forward(Tensor x, Tensor? mask)
        {
            var (context, probs) = self.Forward(x, mask);
            using (context)
                return (output.Forward(context, x), probs);
        }
    }

    sealed class SelfAttention : Container
    {
        readonly Linear query;
        readonly Linear key;
        readonly Linear value;
        readonly Dropout dropout;
        readonly int heads;
        readonly int headSize;

        public SelfAttention(BertSizes s, double p, Device? device)
            : base("BertSelfAttention")
        {
            heads = s.Heads;
            headSize = s.HeadSize;
            int all = s.Heads * s.HeadSize;
            query = nn.Linear(s.Hidden, all, device: device);
            key = nn.Linear(s.Hidden, all, device: device);
            value = nn.Linear(s.Hidden, all, device: device);
            dropout = nn.Dropout(p);
            register_module("query", query);
            register_module("key", key);
            register_module("value", value);
            register_module("dropout", dropout);
        }

        public Linear Query => query;
        public Linear Key => key;

        /// <summary>Context (N,T,heads*headSize) and the attention probabilities (N,heads,T,T) before dropout.</summary>
        public (Tensor Context, Tensor Probs) Forward(Tensor x, Tensor? mask)
        {
            long n = x.shape[0],
                t = x.shape[1];
            using var q = Split(query, x, n, t);
            using var k = Split(key, x, n, t);
            using var v = Split(value, x, n, t);
            using var kt = k.transpose(-1, -2);
            // In place on the product, which is ours: matmul's backward needs q and kt, not its output.
            using var scores = q.matmul(kt);
            scores.div_(Math.Sqrt(headSize));
            if (mask is not null)
                scores.add_(mask);
            var probs = scores.softmax(-1);
            var dropped = dropout.call(probs);
            using var weighted = dropped.matmul(v);
            if (!ReferenceEquals(dropped, probs))
                dropped.Dispose();
            using var merged = weighted.transpose(1, 2);
            return (merged.reshape(n, t, heads * headSize), probs);
        }

        /// <summary>(N,T,hidden) -> (N,heads,T,headSize) through one projection.</summary>
        Tensor Split(Linear proj, Tensor x, long n, long t)
        {
            using var y = proj.call(x);
            using var split = y.view(n, t, heads, headSize);
            return split.transpose(1, 2);
        }
    }

    /// <summary>dense (+ GELU applied by the caller): BertIntermediate.</summary>
    sealed class DenseModule : Container
    {
        readonly Linear dense;

        public DenseModule(int inF, int outF, Device? device)
            : base("BertIntermediate")
        {
            dense = nn.Linear(inF, outF, device: device);
            register_module("dense", dense);
        }

        public Tensor Forward(Tensor x) => dense.call(x);
    }

    /// <summary>LayerNorm(dropout(dense(x)) + residual): BertSelfOutput and BertOutput.</summary>
    sealed class DenseNorm : Container
    {
        readonly Linear dense;
        readonly LayerNorm norm;
        readonly Dropout dropout;

        public DenseNorm(int inF, int outF, double p, Device? device)
            : base("BertOutput")
        {
            dense = nn.Linear(inF, outF, device: device);
            norm = nn.LayerNorm(outF, eps: 1e-12, device: device);
            dropout = nn.Dropout(p);
            register_module("dense", dense);
            register_module("LayerNorm", norm);
            register_module("dropout", dropout);
        }

        public Tensor Forward(Tensor x, Tensor residual)
        {
            using var dropped = Dropped(dense.call(x), dropout);
            using var sum = dropped + residual;
            return norm.call(sum);
        }
    }

    sealed class PoolerModule : Container
    {
        readonly Linear dense;

        public PoolerModule(int hidden, Device? device)
            : base("BertPooler")
        {
            dense = nn.Linear(hidden, hidden, device: device);
            register_module("dense", dense);
        }

        /// <summary>tanh(dense(h[:, 0])): the [CLS] token.</summary>
        public Tensor Forward(Tensor h)
        {
            using var first = h.select(1, 0);
            using var y = dense.call(first);
            return y.tanh();
        }
    }

    /// <summary>cls.predictions: transform (dense, GELU, LayerNorm), decoder tied to the word embeddings, bias.</summary>
    sealed class MlmHead : Container
    {
        readonly Linear dense;
        readonly LayerNorm norm;
        readonly Linear decoder;

        public MlmHead(int hidden, int vocab, Parameter wordEmbeddings, Device? device)
            : base("BertOnlyMLMHead")
        {
            dense = nn.Linear(hidden, hidden, device: device);
            norm = nn.LayerNorm(hidden, eps: 1e-12, device: device);
            var transform = new Named("BertPredictionHeadTransform", ("dense", dense), ("LayerNorm", norm));
            // HuggingFace ties decoder.weight to the word embeddings and decoder.bias to predictions.bias;
            // both names stay in the state_dict.
            decoder = nn.Linear(hidden, vocab, hasBias: false, device: device);
            decoder.weight = wordEmbeddings;
            Bias = new Parameter(zeros(vocab, device: device));
            decoder.bias = Bias;
            var predictions = new Named("BertLMPredictionHead", ("transform", transform), ("decoder", decoder));
            predictions.register_parameter("bias", Bias);
            register_module("predictions", predictions);
        }

        public Parameter Bias { get; }

        public Tensor Forward(Tensor h)
        {
            using var y = dense.call(h);
            using var activated = nn.functional.gelu(y);
            using var normed = norm.call(activated);
            return decoder.call(normed);
        }
    }

    /// <summary>dropout(x), disposing x unless dropout returned x itself (TorchSharp may, in eval mode).</summary>
    static Tensor Dropped(Tensor x, Dropout dropout)
    {
        var y = dropout.call(x);
        if (!ReferenceEquals(x, y))
            x.Dispose();
        return y;
    }

    /// <summary>
    /// Children are registered explicitly under HuggingFace's names; TorchSharp's field-name registration
    /// would add them a second time under the C# field names.
    /// </summary>
    abstract class Container : nn.Module
    {
        protected Container(string name)
            : base(name) { }

        protected override void RegisterComponents() { }
    }

    /// <summary>A container that only gives its children names (HuggingFace's nesting).</summary>
    sealed class Named : Container
    {
        public Named(string name, params (string Name, nn.Module Module)[] children)
            : base(name)
        {
            foreach (var (n, m) in children)
                register_module(n, m);
        }
    }
}
