using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>
/// Deep MLP: block 0 = ReLU(Linear(D,W)), then hidden blocks (plain ReLU(Linear(W,W)), or residual
/// x + Linear(KW,W)(ReLU(Linear(W,KW)(x)))), head = Linear(W, classes). Images are flattened.
/// </summary>
public sealed class Mlp : StagedModel, IMacCounting
{
    readonly ModuleList<nn.Module<Tensor, Tensor>> blocks;
    readonly Linear fc;
    readonly ImitationPoint[] points;

    public Mlp(ModelConfig c, Device? device = null)
        : base(c.Name)
    {
        if (c.InputDim < 1 || c.Width < 1 || c.Depth < 1 || c.Classes < 1)
            throw new WtnException(
                $"model {c.Name}: input dim, width, depth and classes must be positive (got {c.InputDim}, {c.Width}, {c.Depth}, {c.Classes})"
            );
        if (c.Widen.Kind == WideningKind.Inner && !c.Widen.IsIdentity && !c.Residual)
            throw new WtnException(
                $"model {c.Name}: widening {c.Widen} needs a block interior; a plain MLP has none: use full=K, or the residual MLP (residual: true)"
            );
        int w = c.Width * c.Widen.Full;
        int hidden = w * c.Widen.Inner;
        blocks = new ModuleList<nn.Module<Tensor, Tensor>>();
        blocks.Add(new PlainBlock(c.InputDim, w, device));
        for (int i = 1; i < c.Depth; i++)
            blocks.Add(c.Residual ? new ResidualBlock(w, hidden, device) : new PlainBlock(w, w, device));
        fc = nn.Linear(w, c.Classes, device: device);
        // A point feeds the next block's first Linear only, unless a residual add also reads it; the last
        // point feeds the head's Linear.
        points = Enumerable
            .Range(0, c.Depth)
            .Select(i => new ImitationPoint(
                i,
                i == 0 ? "input" : $"blocks.{i}",
                w,
                ActivationLayout.Features,
                c.Residual && i < c.Depth - 1
            ))
            .ToArray();
        register_module("blocks", blocks);
        register_module("fc", fc);
    }

    public override string Family => "mlp";
    public override IReadOnlyList<ImitationPoint> Points => points;

    public override IReadOnlyList<nn.Module> BlockModules(int i) => [blocks[i]];

    public override IReadOnlyList<nn.Module> HeadModules => [fc];

    public override Tensor ForwardBlock(int i, Tensor? x, ModelInput input) =>
        blocks[i].call(i == 0 ? input.Input.flatten(1) : x ?? throw new ArgumentNullException(nameof(x)));

    public override Tensor ForwardHead(Tensor h, ModelInput input) => fc.call(h);

    public long[] OutputShape(int i, long[] inputShape) => [points[i].Width];

    // Every weight of a dense layer is used once per example.
    public long BlockMacs(int i, long[] inputShape, long[] outputShape) =>
        blocks[i].parameters().Where(p => p.dim() == 2).Sum(p => p.numel());

    public long HeadMacs(long[] lastPointShape) => fc.weight!.numel();

    sealed class PlainBlock : nn.Module<Tensor, Tensor>
    {
        readonly Linear fc;

        public PlainBlock(int inF, int outF, Device? device)
            : base("PlainBlock")
        {
            fc = nn.Linear(inF, outF, device: device);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => nn.functional.relu(fc.call(x));
    }

    sealed class ResidualBlock : nn.Module<Tensor, Tensor>
    {
        readonly Linear fc1;
        readonly Linear fc2;

        public ResidualBlock(int w, int hidden, Device? device)
            : base("ResidualBlock")
        {
            fc1 = nn.Linear(w, hidden, device: device);
            fc2 = nn.Linear(hidden, w, device: device);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + fc2.call(nn.functional.relu(fc1.call(x)));
    }
}
