using WideThenNarrow.Models;

namespace WideThenNarrow.Tests.Models;

public class ModelSummaryTests
{
    [Fact]
    public void Resnet50_at_224_has_torchvision_parameters_and_about_4_1_giga_macs()
    {
        var s = ModelSummary.Of(new ModelConfig { Name = "resnet50", Classes = 1000 });
        Assert.Equal(new long[] { 3, 224, 224 }, s.InputShape);
        Assert.Equal(25_557_032, s.Parameters);
        Assert.Equal(s.Parameters, s.Blocks.Sum(b => b.Parameters) + s.HeadParameters);
        Assert.Equal(17, s.Blocks.Count);
        Assert.Equal(new long[] { 64, 56, 56 }, s.Blocks[0].Shape);
        Assert.Equal(new long[] { 2048, 7, 7 }, s.Blocks[^1].Shape);
        Assert.InRange(s.Macs, 4.05e9, 4.15e9);
    }

    [Fact]
    public void Cifar_resnet20_costs_about_41_mega_macs()
    {
        var s = ModelSummary.Of(new ModelConfig { Name = "cifar-resnet20" });
        Assert.Equal(269_722, s.Parameters);
        Assert.InRange(s.Macs, 40.0e6, 41.5e6);
        Assert.Equal(new long[] { 64, 8, 8 }, s.Blocks[^1].Shape);
    }

    [Fact]
    public void Bert_base_at_128_tokens_costs_about_11_giga_macs_in_the_encoder()
    {
        var s = ModelSummary.Of(new ModelConfig { Name = "bert-base", Classes = 2 });
        Assert.Equal(new long[] { 128 }, s.InputShape);
        Assert.Equal(13, s.Blocks.Count);
        Assert.Equal(new long[] { 128, 768 }, s.Blocks[5].Shape);
        Assert.InRange(s.Blocks.Sum(b => b.Macs), 11.0e9, 11.3e9);
        Assert.Equal(109_482_240 + 768 * 2 + 2, s.Parameters);
    }

    [Fact]
    public void Masked_lm_head_does_not_count_the_tied_decoder_twice()
    {
        var s = ModelSummary.Of(
            new ModelConfig
            {
                Name = "bert-tiny",
                Head = BertHead.MaskedLm,
                Vocab = 1000,
            },
            [16]
        );
        Assert.Equal(s.Parameters, s.Blocks.Sum(b => b.Parameters) + s.HeadParameters);
        Assert.Equal(128 * 128 + 128 + 2 * 128 + 1000, s.HeadParameters);
    }

    [Fact]
    public void Inner_widening_multiplies_block_macs_but_not_point_shapes()
    {
        var thin = ModelSummary.Of(new ModelConfig { Name = "cifar-resnet20" });
        var wide = ModelSummary.Of(new ModelConfig { Name = "cifar-resnet20", Widen = Widening.Parse("inner=4") });
        Assert.Equal("inner=4", wide.Widening);
        for (int i = 1; i < thin.Blocks.Count; i++)
        {
            Assert.Equal(thin.Blocks[i].Shape, wide.Blocks[i].Shape);
            Assert.True(wide.Blocks[i].Macs > 3 * thin.Blocks[i].Macs);
        }
    }
}
