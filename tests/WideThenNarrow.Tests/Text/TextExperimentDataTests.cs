using WideThenNarrow.Data.Text;

namespace WideThenNarrow.Tests.Text;

public class TextExperimentDataTests
{
    [Fact]
    public void Loads_subsets_builds_the_vocabulary_once_and_hits_every_cache_the_second_time()
    {
        TestData.Ensure("sotu");
        TestData.Ensure("brown");
        TestData.Ensure("imdb");
        var options = new TextDataOptions
        {
            VocabSize = 8000,
            PretrainDocuments = 400,
            ImdbTrainPerClass = 40,
            ImdbTestPerClass = 30,
            MaxLength = 64,
        };
        var first = TextExperimentData.Load(TestData.DataDir, options);
        var log = new List<string>();
        var second = TextExperimentData.Load(TestData.DataDir, options, new SyncLog(log));

        Assert.Equal(8000, first.VocabSize);
        Assert.StartsWith(Path.Combine(TestData.DataDir, "cache"), first.VocabPath);
        Assert.Equal(first.VocabPath, second.VocabPath);
        Assert.DoesNotContain(log, l => l.Contains("building"));
        Assert.Equal(6, log.Count);
        Assert.All(log, l => Assert.EndsWith("(cached)", l));
        Assert.Equal(first.Pretrain.Ids, second.Pretrain.Ids);

        // Of every 100 documents, the last is test text and the one before it validation text; neither trains.
        Assert.Equal(392, first.Pretrain.Count);
        Assert.Equal(4, first.PretrainValidation.Count);
        Assert.Equal(4, first.PretrainEval.Count);
        Assert.Equal(80, first.ImdbTrain.Count);
        Assert.Equal(40, first.ImdbTrainLabels.Count(l => l == 1));
        // IMDB's validation reviews are carved from the whole training half (10 % of each class), none of them trains.
        Assert.Equal(2500, first.ImdbValidation.Count);
        Assert.Equal(1250, first.ImdbValidationLabels.Count(l => l == 1));
        Assert.Equal(60, first.ImdbTest.Count);
        Assert.Equal(30, first.ImdbTestLabels.Count(l => l == 0));
        Assert.Equal(128, first.MaxPositions);
        Assert.Equal(3, first.ImdbTrainBatches(1).BatchesPerEpoch);
        Assert.True(first.MaskedLmTrain(1).Count > 100);
    }

    [Fact]
    public void Bad_options_name_the_key()
    {
        var e = Assert.Throws<WtnException>(() =>
            TextExperimentData.Load(TestData.DataDir, new TextDataOptions { VocabSize = 3 })
        );
        Assert.Contains("data.vocab_size", e.Message);
    }

    sealed class SyncLog(List<string> into) : IProgress<string>
    {
        public void Report(string value) => into.Add(value);
    }
}
