using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Models;
using WideThenNarrow.Orchestration;

namespace WideThenNarrow.Tests.Text;

public class BertExperimentFileTests
{
    [Theory]
    [InlineData("imdb-bert.yaml")]
    [InlineData("imdb-bert-quick.yaml")]
    [InlineData("bert-study.yaml")]
    [InlineData("bert-study-h256.yaml")]
    public void Bert_experiment_files_parse_strictly_and_describe_the_whole_track(string file)
    {
        var config = ConfigLoader.Load<ExperimentConfig>(Path.Combine(TestData.RepoRoot, "experiments", file));
        var text = Assert.IsType<WideThenNarrow.Data.Text.TextDataOptions>(config.Data.Text);
        Assert.InRange(text.VocabSize, 8000, 16000);
        if (file != "imdb-bert-quick.yaml")
            Assert.Equal(0, text.ImdbTestPerClass); // the full 25,000-review test set
        Assert.NotNull(config.Wide);
        Assert.NotNull(config.Imitation);
        Assert.NotNull(config.Finetune);
        Assert.NotNull(config.Standard ?? config.Baseline<StandardStageConfig>("standard_matched"));
        Assert.NotNull(config.Downstream);

        BertSizes Sizes(ModelSpec spec, string key) =>
            BertSizes.From(spec.ToModelConfig(2, 0, 0, key) with { Vocab = text.VocabSize, MaxPositions = 512 });
        var thin = Sizes(config.Models.Thin, "thin");
        var wide = Sizes(config.Models.Wide, "wide");
        Assert.Equal(thin.Layers, wide.Layers);
        Assert.Equal(thin.Heads, wide.Heads); // the attention KL runs head by head
        Assert.False(config.Imitation!.AverageHeads);
        Assert.True(config.Imitation.CopyEmbeddings);
        if (file == "bert-study-h256.yaml")
        {
            // Twice S's residual width, heads and feed-forward layer: every imitation point through a projection.
            Assert.Equal(2 * thin.Hidden, wide.Hidden);
            Assert.Equal(2 * thin.HeadSize, wide.HeadSize);
            Assert.Equal(2 * thin.Intermediate, wide.Intermediate);
            // The arms that do not depend on the wide network are bert-study.yaml's, not repeated here.
            Assert.Null(config.Models.Deeper);
        }
        else
        {
            // Inner x4: same residual width and head count, each head and the feed-forward layer four times wider.
            Assert.Equal(thin.Hidden, wide.Hidden);
            Assert.Equal(4 * thin.HeadSize, wide.HeadSize);
            Assert.Equal(4 * thin.Intermediate, wide.Intermediate);
            var deeper = Sizes(config.Models.Deeper!, "deeper");
            Assert.True(deeper.Layers > thin.Layers);
        }

        var runner = new ExperimentRunner(config, Path.GetTempPath(), TestData.DataDir, TorchSharp.torch.CPU); // its checks pass
        if (config.Standard is { } standard)
        {
            // The baselines get the steps of stages 2 and 3 together (the embeddings are copied: the encoder layers imitate).
            long methodSteps = thin.Layers * config.Imitation.Train.Steps + config.Finetune!.Train.Steps;
            Assert.Equal(methodSteps, standard.Train.Steps);
            return;
        }
        // The study: the thin standard and the deeper arm cost what stages 2 + 3 cost, in multiply-accumulates.
        var costs = runner.StageCosts().ToDictionary(c => c.Stage, c => c.Cost);
        double method = costs["imitation"] + costs["finetune"];
        Assert.InRange(costs["standard_matched"] / method, 0.999, 1.001);
        if (config.Models.Deeper is not null)
            Assert.InRange(costs["deeper"] / method, 0.97, 1.03);
    }
}
