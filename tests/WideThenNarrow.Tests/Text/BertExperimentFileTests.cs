using WideThenNarrow.Config;
using WideThenNarrow.Method;
using WideThenNarrow.Orchestration;
using WideThenNarrow.Models;

namespace WideThenNarrow.Tests.Text;

public class BertExperimentFileTests
{
    [Theory]
    [InlineData("imdb-bert.yaml")]
    [InlineData("imdb-bert-quick.yaml")]
    public void Bert_experiment_files_parse_strictly_and_describe_the_whole_track(string file)
    {
        var config = ConfigLoader.Load<ExperimentConfig>(Path.Combine(TestData.RepoRoot, "experiments", file));
        var text = Assert.IsType<WideThenNarrow.Data.Text.TextDataOptions>(config.Data.Text);
        Assert.InRange(text.VocabSize, 8000, 16000);
        if (file == "imdb-bert.yaml") Assert.Equal(0, text.ImdbTestPerClass); // the full 25,000-review test set
        Assert.NotNull(config.Wide);
        Assert.NotNull(config.Imitation);
        Assert.NotNull(config.Finetune);
        Assert.NotNull(config.Standard);
        Assert.NotNull(config.Downstream);

        BertSizes Sizes(ModelSpec spec, string key) => BertSizes.From(spec.ToModelConfig(2, 0, 0, key) with { Vocab = text.VocabSize, MaxPositions = 512 });
        var thin = Sizes(config.Models.Thin, "thin");
        var wide = Sizes(config.Models.Wide, "wide");
        // Inner x4: same residual width and head size, four times the heads and the feed-forward size.
        Assert.Equal(thin.Hidden, wide.Hidden);
        Assert.Equal(thin.Layers, wide.Layers);
        Assert.Equal(4 * thin.Heads, wide.Heads);
        Assert.Equal(4 * thin.Intermediate, wide.Intermediate);
        Assert.True(config.Imitation!.AverageHeads || thin.Heads == wide.Heads);
        var deeper = Sizes(config.Models.Deeper!, "deeper");
        Assert.True(deeper.Layers > thin.Layers);

        // The baselines get the budget of stages 2 and 3 together.
        long methodSteps = (thin.Layers + 1) * config.Imitation.Train.Steps + config.Finetune!.Train.Steps;
        Assert.Equal(methodSteps, config.Standard!.Train.Steps);
        _ = new ExperimentRunner(config, Path.GetTempPath(), TestData.DataDir, TorchSharp.torch.CPU); // its checks pass
    }
}
