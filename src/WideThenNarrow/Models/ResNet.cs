using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WideThenNarrow.Models;

/// <summary>
/// ResNets with torchvision's parameter names. ImageNet layout: torchvision's resnet18..152 (7x7 stem and
/// max-pool, four stages, projection shortcuts). CIFAR layout (He et al. 2016, sec. 4.2): 3x3 stem with 16
/// channels, three stages 16/32/64 of basic blocks, depth 6n+2, parameter-free shortcuts (option A) or
/// projections; <see cref="ModelConfig.BaseWidth"/> scales the CIFAR stages to w/2w/4w. Block 0 is the stem, then every residual block in order; the head is pool + fc.
/// </summary>
public sealed class ResNet : StagedModel, IMacCounting
{
    public enum Layout
    {
        Cifar,
        ImageNet,
    }

    readonly Layout layout;
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Linear fc;
    readonly ResidualBlock[] blocks;
    readonly ImitationPoint[] points;
    readonly int inputChannels;
    readonly int stemWidth;

    /// <param name="bottleneck">Bottleneck blocks (expansion 4) instead of basic ones.</param>
    /// <param name="stageBlocks">Blocks per stage.</param>
    public ResNet(string name, Layout layout, bool bottleneck, int[] stageBlocks, ModelConfig c, Device? device = null)
        : base(name)
    {
        if (c.InputChannels < 1 || c.Classes < 1)
            throw new WtnException(
                $"model {name}: input channels and classes must be positive (got {c.InputChannels}, {c.Classes})"
            );
        if (bottleneck && layout == Layout.Cifar)
            throw new ArgumentException("the CIFAR layout uses basic blocks");
        if (c.BaseWidth < 1)
            throw new WtnException($"model {name}: base_width must be positive, got {c.BaseWidth}");
        // torchvision's stage widths are fixed; a base width other than the default would be silently ignored.
        if (layout == Layout.ImageNet && c.BaseWidth != ModelConfig.DefaultBaseWidth)
            throw new WtnException($"model {name}: base_width applies to the CIFAR ResNets (cifar-resnetD) only");
        this.layout = layout;
        inputChannels = c.InputChannels;
        int full = c.Widen.Full,
            inner = c.Widen.Inner;
        int[] stagePlanes =
            layout == Layout.ImageNet ? [64, 128, 256, 512] : [c.BaseWidth, 2 * c.BaseWidth, 4 * c.BaseWidth];
        if (stageBlocks.Length != stagePlanes.Length)
            throw new ArgumentException($"{stagePlanes.Length} stages expected", nameof(stageBlocks));

        stemWidth = stagePlanes[0] * full;
        conv1 =
            layout == Layout.ImageNet
                ? nn.Conv2d(c.InputChannels, stemWidth, 7, stride: 2, padding: 3, bias: false, device: device)
                : nn.Conv2d(c.InputChannels, stemWidth, 3, stride: 1, padding: 1, bias: false, device: device);
        bn1 = nn.BatchNorm2d(stemWidth, device: device);
        register_module("conv1", conv1);
        register_module("bn1", bn1);

        // Option A (zero-padding) shortcuts only in the CIFAR layout without projections; torchvision projects.
        bool projection = layout == Layout.ImageNet || c.ProjectionShortcuts;
        var all = new List<ResidualBlock>();
        var pts = new List<ImitationPoint> { new(0, "stem", stemWidth, ActivationLayout.Channels, true) };
        int inplanes = stemWidth;
        for (int s = 0; s < stagePlanes.Length; s++)
        {
            int planes = stagePlanes[s] * full;
            var stage = new ModuleList<ResidualBlock>();
            for (int b = 0; b < stageBlocks[s]; b++)
            {
                int stride = s > 0 && b == 0 ? 2 : 1;
                ResidualBlock block = bottleneck
                    ? new Bottleneck(inplanes, planes * inner, planes * 4, stride, device)
                    : new BasicBlock(inplanes, planes * inner, planes, stride, projection, device);
                stage.Add(block);
                all.Add(block);
                inplanes = block.OutChannels;
                pts.Add(new ImitationPoint(pts.Count, $"layer{s + 1}.{b}", inplanes, ActivationLayout.Channels, true));
            }
            register_module($"layer{s + 1}", stage);
        }
        // The last point feeds only pool + fc (both linear), so nothing crosses it.
        pts[^1] = pts[^1] with { SkipCrosses = false };
        blocks = [.. all];
        points = [.. pts];
        fc = nn.Linear(inplanes, c.Classes, device: device);
        register_module("fc", fc);
        InitialiseAsTorchvision();
    }

    public override string Family => "resnet";

    /// <summary>The CIFAR layout (3x3 stem, three stages of basic blocks), whose stage widths follow the base width.</summary>
    public bool IsCifar => layout == Layout.Cifar;
    public override IReadOnlyList<ImitationPoint> Points => points;

    /// <summary>ImageNet's stem ends in a 3x3 stride-2 max-pool; the CIFAR stem has none.</summary>
    public Layout StemLayout => layout;

    public override IReadOnlyList<nn.Module> BlockModules(int i) => i == 0 ? [conv1, bn1] : [blocks[i - 1]];

    public override IReadOnlyList<nn.Module> HeadModules => [fc];

    public override Tensor ForwardBlock(int i, Tensor? x, ModelInput input)
    {
        if (i > 0)
            return blocks[i - 1].call(x ?? throw new ArgumentNullException(nameof(x)));
        var h = ChannelsLastConv.ConvBnRelu(conv1, bn1, input.Input);
        if (layout != Layout.ImageNet)
            return h;
        using (h)
            return nn.functional.max_pool2d(h, 3, stride: 2, padding: 1);
    }

    public override Tensor ForwardHead(Tensor h, ModelInput input)
    {
        using var pooled = h.mean([2, 3]);
        return fc.call(pooled);
    }

    public long[] OutputShape(int i, long[] inputShape)
    {
        static long Strided(long size, long stride) => (size - 1) / stride + 1; // 3x3/1x1 convs, padding keeps "same"
        if (i > 0)
        {
            var b = blocks[i - 1];
            return [b.OutChannels, Strided(inputShape[1], b.Stride), Strided(inputShape[2], b.Stride)];
        }
        // ImageNet stem: 7x7 stride-2 conv, then 3x3 stride-2 max-pool, both halving (rounding up).
        return layout == Layout.ImageNet
            ? [stemWidth, Strided(Strided(inputShape[1], 2), 2), Strided(Strided(inputShape[2], 2), 2)]
            : [stemWidth, inputShape[1], inputShape[2]];
    }

    public long BlockMacs(int i, long[] inputShape, long[] outputShape)
    {
        if (i > 0)
            return blocks[i - 1].Macs(inputShape, outputShape);
        var (h, w) =
            layout == Layout.ImageNet
                ? ((inputShape[1] - 1) / 2 + 1, (inputShape[2] - 1) / 2 + 1)
                : (inputShape[1], inputShape[2]);
        long k = layout == Layout.ImageNet ? 49 : 9;
        return h * w * stemWidth * inputChannels * k;
    }

    public long HeadMacs(long[] lastPointShape) => fc.weight!.shape[0] * fc.weight.shape[1];

    void InitialiseAsTorchvision()
    {
        using var _ = no_grad();
        foreach (var m in modules())
        {
            switch (m)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(
                        conv.weight!,
                        mode: nn.init.FanInOut.FanOut,
                        nonlinearity: nn.init.NonlinearityType.ReLU
                    );
                    break;
                case BatchNorm2d bn:
                    bn.weight!.fill_(1);
                    bn.bias!.zero_();
                    break;
            }
        }
    }

    /// <summary>A residual block with torchvision's field names.</summary>
    public abstract class ResidualBlock : nn.Module<Tensor, Tensor>
    {
        protected ResidualBlock(string name)
            : base(name) { }

        public abstract int OutChannels { get; }

        public abstract int Stride { get; }

        /// <summary>Multiply-accumulates for one example, from the block's input (C,H,W) and output shapes.</summary>
        public abstract long Macs(long[] inputShape, long[] outputShape);

        protected static Sequential Projection(int inplanes, int outplanes, int stride, Device? device) =>
            nn.Sequential(Conv1x1(inplanes, outplanes, stride, device), nn.BatchNorm2d(outplanes, device: device));

        /// <summary>A 1x1 convolution; building one applies <see cref="Runtime.OneDnnCpuGuard"/>, whose reason is 1x1 backward passes.</summary>
        protected static Conv2d Conv1x1(int inplanes, int outplanes, int stride, Device? device)
        {
            Runtime.OneDnnCpuGuard.Apply();
            return nn.Conv2d(inplanes, outplanes, 1, stride: stride, bias: false, device: device);
        }

        /// <summary>
        /// relu(y + shortcut), computed in y's own storage as torchvision does (<c>out += identity; relu(inplace)</c>):
        /// y is the last batch norm's fresh output, which its backward does not need, and relu's backward needs only its
        /// result. Saves two activation-sized buffers per block (the number of passes over memory is the same). The shortcut is disposed unless it is the
        /// block's input x. Disposing a wrapper early is safe under autograd, which holds its own references to what
        /// backward needs; without it TorchSharp keeps every activation of a forward pass alive until the caller's
        /// dispose scope ends, which in an eval pass (no graph) is all of them: the wide ResNet-20 (inner x4) at eval
        /// batch 512 peaked at 4.4 GB.
        /// </summary>
        protected static Tensor Finish(Tensor y, Tensor x, Tensor shortcut)
        {
            y.add_(shortcut);
            if (!ReferenceEquals(shortcut, x))
                shortcut.Dispose();
            return y.relu_();
        }

        protected static long ProjectionMacs(Sequential? downsample, long[] i, long[] o) =>
            downsample is null ? 0 : o[1] * o[2] * o[0] * i[0];
    }

    /// <summary>Two 3x3 convs; <c>mid</c> is the first conv's output (what inner widening multiplies).</summary>
    public sealed class BasicBlock : ResidualBlock
    {
        readonly Conv2d conv1;
        readonly BatchNorm2d bn1;
        readonly Conv2d conv2;
        readonly BatchNorm2d bn2;
        readonly Sequential? downsample;
        readonly int inplanes;
        readonly int planes;
        readonly int stride;

        public BasicBlock(int inplanes, int mid, int planes, int stride, bool projection, Device? device)
            : base("BasicBlock")
        {
            this.inplanes = inplanes;
            this.planes = planes;
            this.stride = stride;
            conv1 = nn.Conv2d(inplanes, mid, 3, stride: stride, padding: 1, bias: false, device: device);
            bn1 = nn.BatchNorm2d(mid, device: device);
            conv2 = nn.Conv2d(mid, planes, 3, stride: 1, padding: 1, bias: false, device: device);
            bn2 = nn.BatchNorm2d(planes, device: device);
            if (projection && (stride != 1 || inplanes != planes))
                downsample = Projection(inplanes, planes, stride, device);
            RegisterComponents();
        }

        public override int OutChannels => planes;

        public override int Stride => stride;

        public override Tensor forward(Tensor x)
        {
            // Every intermediate is disposed as soon as it is consumed (see ResidualBlock.Finish).
            using var h = ChannelsLastConv.ConvBnRelu(conv1, bn1, x);
            return Finish(ChannelsLastConv.ConvBn(conv2, bn2, h), x, Shortcut(x));
        }

        Tensor Shortcut(Tensor x)
        {
            if (downsample is not null)
                return downsample.call(x);
            if (stride == 1 && inplanes == planes)
                return x;
            // Option A: subsample by the stride, zero-pad the new channels half before, half after.
            int extra = planes - inplanes,
                front = extra / 2;
            if (stride == 1)
                return nn.functional.pad(x, [0, 0, 0, 0, front, extra - front]);
            using var rows = x.slice(2, 0, x.shape[2], stride);
            using var s = rows.slice(3, 0, x.shape[3], stride);
            return nn.functional.pad(s, [0, 0, 0, 0, front, extra - front]);
        }

        public override long Macs(long[] i, long[] o)
        {
            long hw = o[1] * o[2],
                mid = conv1.weight!.shape[0];
            return hw * mid * i[0] * 9 + hw * o[0] * mid * 9 + ProjectionMacs(downsample, i, o);
        }
    }

    /// <summary>1x1 reduce, 3x3 (stride here, as torchvision's v1.5), 1x1 expand; <c>width</c> is the 3x3's width.</summary>
    public sealed class Bottleneck : ResidualBlock
    {
        readonly Conv2d conv1;
        readonly BatchNorm2d bn1;
        readonly Conv2d conv2;
        readonly BatchNorm2d bn2;
        readonly Conv2d conv3;
        readonly BatchNorm2d bn3;
        readonly Sequential? downsample;
        readonly int outplanes;
        readonly int stride;

        public Bottleneck(int inplanes, int width, int outplanes, int stride, Device? device)
            : base("Bottleneck")
        {
            this.outplanes = outplanes;
            this.stride = stride;
            conv1 = Conv1x1(inplanes, width, 1, device);
            bn1 = nn.BatchNorm2d(width, device: device);
            conv2 = nn.Conv2d(width, width, 3, stride: stride, padding: 1, bias: false, device: device);
            bn2 = nn.BatchNorm2d(width, device: device);
            conv3 = Conv1x1(width, outplanes, 1, device);
            bn3 = nn.BatchNorm2d(outplanes, device: device);
            if (stride != 1 || inplanes != outplanes)
                downsample = Projection(inplanes, outplanes, stride, device);
            RegisterComponents();
        }

        public override int OutChannels => outplanes;

        public override int Stride => stride;

        public override Tensor forward(Tensor x)
        {
            // Every intermediate is disposed as soon as it is consumed (see ResidualBlock.Finish).
            using var h1 = ChannelsLastConv.ConvBnRelu(conv1, bn1, x);
            using var h2 = ChannelsLastConv.ConvBnRelu(conv2, bn2, h1);
            return Finish(ChannelsLastConv.ConvBn(conv3, bn3, h2), x, downsample is null ? x : downsample.call(x));
        }

        public override long Macs(long[] i, long[] o)
        {
            long width = conv1.weight!.shape[0],
                hw = o[1] * o[2];
            return i[1] * i[2] * width * i[0]
                + hw * width * width * 9
                + hw * o[0] * width
                + ProjectionMacs(downsample, i, o);
        }
    }
}

/// <summary>
/// Runs a ResNet convolution in channels-last (NHWC) layout, for batches of <see cref="MinBatch"/> or more: the
/// weight is permuted into a channels-last copy for the call, so oneDNN takes its NHWC kernels and every activation after the first conv stays channels-last.
/// Parameters themselves stay in the default contiguous layout, because TorchSharp's <c>Module.save</c>/<c>load</c>,
/// <c>Tensor.bytes</c> and the PyTorch export copy raw storage and would write a channels-last tensor permuted.
/// The copy is differentiable (its gradient flows back to the parameter) and tiny next to the activations.
/// What it saves per step: docs/training.md ("Channels-last convolutions"). Set <see cref="Enabled"/> false (or
/// <c>WTN_CHANNELS_LAST=0</c>) for the plain NCHW path; results agree to float rounding, not bit for bit.
/// </summary>
public static class ChannelsLastConv
{
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("WTN_CHANNELS_LAST") != "0";

    /// <summary>Batches below this size take the plain path: the weight copy is not worth it (batch-1 latency).</summary>
    public const long MinBatch = 16;

    /// <summary>bn(conv(x)), the convolution's output disposed once normalised.</summary>
    public static Tensor ConvBn(Conv2d conv, BatchNorm2d bn, Tensor x)
    {
        using var c = Call(conv, x);
        return bn.call(c);
    }

    /// <summary>relu(bn(conv(x))), the relu in the batch norm's output (its backward does not need it), as torchvision's inplace ReLU.</summary>
    public static Tensor ConvBnRelu(Conv2d conv, BatchNorm2d bn, Tensor x) => ConvBn(conv, bn, x).relu_();

    public static Tensor Call(Conv2d conv, Tensor x)
    {
        if (!Enabled || x.shape[0] < MinBatch)
            return conv.call(x);
        using var nhwc = conv.weight!.permute(0, 2, 3, 1);
        using var packed = nhwc.contiguous();
        using var w = packed.permute(0, 3, 1, 2);
        if (x.shape[1] != 1 || !x.is_contiguous())
            return nn.functional.conv2d(x, w, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups);
        // A 1-channel batch (Fashion-MNIST, MNIST) is NCHW and NHWC at once, and libtorch takes its NCHW strides as
        // NCHW: the stem then ran oneDNN's blocked kernel and reordered its output (twice more in backward), and the
        // first block copied it to NHWC. The same memory viewed with NHWC strides keeps the whole network NHWC.
        using var nhwcInput = x.as_strided(x.shape, [x.shape[2] * x.shape[3], 1, x.shape[3], 1], x.storage_offset());
        return nn.functional.conv2d(nhwcInput, w, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups);
    }
}
