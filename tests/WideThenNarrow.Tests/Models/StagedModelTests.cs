using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

/// <summary>The staged contract, checked on every family with small inputs.</summary>
public class StagedModelTests
{
    /// <summary>Configs small enough to run in milliseconds, keyed by a readable case name.</summary>
    internal static ModelConfig Config(string key, string widen = "none")
    {
        var w = Widening.Parse(widen);
        return key switch
        {
            "mlp" => new ModelConfig
            {
                Name = "mlp",
                InputDim = 12,
                Width = 16,
                Depth = 4,
                Classes = 3,
                Widen = w,
            },
            "mlp-residual" => new ModelConfig
            {
                Name = "mlp",
                InputDim = 12,
                Width = 16,
                Depth = 4,
                Classes = 3,
                Residual = true,
                Widen = w,
            },
            "cifar-resnet20" => new ModelConfig
            {
                Name = "cifar-resnet20",
                Classes = 5,
                Widen = w,
            },
            "cifar-resnet20-proj" => new ModelConfig
            {
                Name = "cifar-resnet20",
                Classes = 5,
                ProjectionShortcuts = true,
                Widen = w,
            },
            "resnet18" => new ModelConfig
            {
                Name = "resnet18",
                InputChannels = 1,
                Classes = 4,
                Widen = w,
            },
            "resnet50" => new ModelConfig
            {
                Name = "resnet50",
                Classes = 4,
                Widen = w,
            },
            "bert-tiny" => new ModelConfig
            {
                Name = "bert-tiny",
                Vocab = 50,
                MaxPositions = 16,
                Classes = 3,
                Widen = w,
            },
            "bert-tiny-mlm" => new ModelConfig
            {
                Name = "bert-tiny",
                Vocab = 50,
                MaxPositions = 16,
                Head = BertHead.MaskedLm,
                Widen = w,
            },
            _ => throw new ArgumentException(key),
        };
    }

    internal static ModelInput Input(ModelConfig c, int batch = 2)
    {
        if (c.Name == "mlp")
            return new ModelInput(randn(batch, c.InputDim));
        if (c.Name.StartsWith("bert"))
        {
            var ids = randint(0, c.Vocab, [batch, 7]);
            var mask = ones(batch, 7, dtype: ScalarType.Int64);
            mask[0, TensorIndex.Slice(5)] = tensor(0L);
            return new ModelInput(ids, mask, zeros(batch, 7, dtype: ScalarType.Int64));
        }
        return new ModelInput(randn(batch, c.InputChannels, 20, 20));
    }

    public static TheoryData<string> Families =>
        [
            "mlp",
            "mlp-residual",
            "cifar-resnet20",
            "cifar-resnet20-proj",
            "resnet18",
            "resnet50",
            "bert-tiny",
            "bert-tiny-mlm",
        ];

    [Theory]
    [MemberData(nameof(Families))]
    public void Staged_forward_equals_plain_forward_and_points_have_the_declared_widths(string key)
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        var c = Config(key);
        using var model = ModelFactory.Create(c);
        model.eval();
        var input = Input(c);
        using var _ = no_grad();
        var plain = model.call(input);
        var (logits, points) = model.ForwardIntermediates(input);
        Assert.True(plain.allclose(logits, rtol: 1e-5, atol: 1e-6));
        Assert.Equal(model.BlockCount, points.Length);
        for (int i = 0; i < points.Length; i++)
        {
            var p = model.Points[i];
            Assert.Equal(i, p.Index);
            int channelDim = p.Layout switch
            {
                ActivationLayout.Channels => 1,
                ActivationLayout.Tokens => 2,
                _ => 1,
            };
            Assert.Equal(
                p.Layout == ActivationLayout.Features ? 2
                    : p.Layout == ActivationLayout.Tokens ? 3
                    : 4,
                (int)points[i].dim()
            );
            Assert.Equal(p.Width, points[i].shape[channelDim]);
            // The analytic shapes (summaries, MACs) agree with the real ones.
            var counting = Assert.IsAssignableFrom<IMacCounting>(model);
            Assert.Equal(
                points[i].shape[1..],
                counting.OutputShape(i, i == 0 ? input.Input.shape[1..] : points[i - 1].shape[1..])
            );
            // Block i run alone on point i-1 reproduces point i.
            var again = model.ForwardBlock(i, i == 0 ? null : points[i - 1], input);
            Assert.True(again.allclose(points[i], rtol: 1e-5, atol: 1e-6), $"block {i} run alone differs");
        }
        var head = model.ForwardHead(points[^1], input);
        Assert.True(head.allclose(logits, rtol: 1e-5, atol: 1e-6));
        var upTo = model.ForwardPoints(input, 1);
        Assert.Equal(2, upTo.Length);
        Assert.True(upTo[1].allclose(points[1], rtol: 1e-5, atol: 1e-6));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Blocks_and_head_own_every_parameter_exactly_once(string key)
    {
        using var model = ModelFactory.Create(Config(key));
        var blocks = Enumerable
            .Range(0, model.BlockCount)
            .SelectMany(model.BlockParameters)
            .Select(p => p.Handle)
            .ToList();
        var head = model.HeadParameters().Select(p => p.Handle).ToList();
        Assert.Equal(blocks.Count, blocks.Distinct().Count());
        Assert.Equal(head.Count, head.Distinct().Count());
        // Only the masked-LM decoder shares a tensor with a block: it is tied to block 0's word embeddings.
        var shared = blocks.Intersect(head).ToList();
        if (key.EndsWith("-mlm"))
        {
            var tied = model
                .BlockModules(0)
                .SelectMany(m => m.named_parameters())
                .Single(p => p.name == "word_embeddings.weight")
                .parameter.Handle;
            Assert.Equal([tied], shared);
        }
        else
            Assert.Empty(shared);
        var owned = blocks.Concat(head);
        var all = model.parameters().Select(p => p.Handle).Distinct().ToHashSet();
        Assert.True(all.SetEquals(owned), "some parameter belongs to no block and not to the head");
    }

    [Theory]
    [InlineData("mlp-residual", "inner=3", true)]
    [InlineData("cifar-resnet20", "inner=2", true)]
    [InlineData("resnet50", "inner=2", false)] // bottleneck; built on the meta device (68M parameters)
    [InlineData("bert-tiny", "inner=2", true)]
    public void Inner_widening_keeps_point_shapes_and_adds_parameters(string key, string widen, bool run)
    {
        using var scope = NewDisposeScope();
        var thinCfg = Config(key);
        var device = run ? CPU : META;
        using var thin = ModelFactory.Create(thinCfg, device);
        using var wide = ModelFactory.Create(Config(key, widen), device);
        Assert.Equal(thin.Points, wide.Points);
        Assert.True(ResNetTests.CountParameters(wide) > ResNetTests.CountParameters(thin));
        if (!run)
            return;
        using var _ = no_grad();
        var input = Input(thinCfg);
        var a = thin.ForwardPoints(input, thin.BlockCount - 1);
        var b = wide.ForwardPoints(input, wide.BlockCount - 1);
        for (int i = 0; i < a.Length; i++)
            Assert.Equal(a[i].shape, b[i].shape);
    }

    [Theory]
    [InlineData("mlp", 2)]
    [InlineData("cifar-resnet20", 2)]
    [InlineData("resnet18", 2)]
    [InlineData("bert-tiny", 2)]
    public void Full_widening_multiplies_every_point_width(string key, int k)
    {
        using var thin = ModelFactory.Create(Config(key), META);
        using var wide = ModelFactory.Create(Config(key, $"full={k}"), META);
        Assert.Equal(thin.BlockCount, wide.BlockCount);
        for (int i = 0; i < thin.BlockCount; i++)
        {
            Assert.Equal(thin.Points[i].Width * k, wide.Points[i].Width);
            Assert.Equal(thin.Points[i].SkipCrosses, wide.Points[i].SkipCrosses);
        }
    }

    [Fact]
    public void Skip_crossing_is_declared_where_a_residual_path_reads_the_point()
    {
        using var mlp = ModelFactory.Create(Config("mlp"));
        Assert.All(mlp.Points, p => Assert.False(p.SkipCrosses));
        using var res = ModelFactory.Create(Config("mlp-residual"));
        Assert.All(res.Points.Take(res.BlockCount - 1), p => Assert.True(p.SkipCrosses));
        Assert.False(res.Points[^1].SkipCrosses);
        using var resnet = ModelFactory.Create(Config("cifar-resnet20"));
        Assert.Equal(10, resnet.BlockCount);
        Assert.All(resnet.Points.Take(9), p => Assert.True(p.SkipCrosses));
        Assert.False(resnet.Points[^1].SkipCrosses);
    }

    [Fact]
    public void Plain_mlp_rejects_inner_widening_naming_the_option()
    {
        var e = Assert.Throws<WtnException>(() => ModelFactory.Create(Config("mlp", "inner=2")));
        Assert.Contains("inner=2", e.Message);
        Assert.Contains("residual", e.Message);
    }

    [Theory]
    [InlineData("inner=4", WideningKind.Inner, 4)]
    [InlineData(" FULL=2 ", WideningKind.Full, 2)]
    [InlineData("none", WideningKind.Inner, 1)]
    public void Widening_parses(string text, WideningKind kind, int factor)
    {
        var w = Widening.Parse(text);
        Assert.Equal(kind, w.Kind);
        Assert.Equal(factor, w.Factor);
        Assert.Equal(w, Widening.Parse(w.ToString()));
    }

    [Theory]
    [InlineData("inner")]
    [InlineData("inner=0")]
    [InlineData("deep=2")]
    [InlineData("full=x")]
    public void Bad_widening_text_is_a_user_error_naming_the_option(string text)
    {
        var e = Assert.Throws<WtnException>(() => Widening.Parse(text, "method.widen"));
        Assert.StartsWith("method.widen", e.Message);
        Assert.Contains(text, e.Message);
    }

    [Theory]
    [InlineData("cifar-resnet21")]
    [InlineData("resnet19")]
    public void Unknown_models_are_user_errors(string name)
    {
        var e = Assert.Throws<WtnException>(() => ModelFactory.Create(new ModelConfig { Name = name }));
        Assert.Contains(name, e.Message);
    }
}
