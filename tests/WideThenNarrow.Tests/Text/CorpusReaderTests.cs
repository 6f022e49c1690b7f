using WideThenNarrow.Data.Text;

namespace WideThenNarrow.Tests.Text;

public class CorpusReaderTests
{
    static readonly Lazy<ImdbDataset> Imdb = new(() =>
        ImdbReviews.Load(Path.Combine(TestData.Ensure("imdb"), "reviews.json"))
    );

    [Fact]
    public void Imdb_has_the_standard_25k_25k_split_with_balanced_labels_and_no_html_breaks()
    {
        var d = Imdb.Value;
        Assert.Equal(25000, d.Train.Count);
        Assert.Equal(25000, d.Test.Count);
        Assert.Equal(12500, d.Train.Count(e => e.Label == 1));
        Assert.Equal(12500, d.Test.Count(e => e.Label == 1));
        Assert.All(d.Train.Concat(d.Test), e =>
            Assert.DoesNotContain("<br", e.Text, StringComparison.OrdinalIgnoreCase)
        );
        Assert.StartsWith("Once again Mr. Costner", d.Test[0].Text);
    }

    [Fact]
    public void Truncated_imdb_json_is_refused_in_one_line_naming_the_file()
    {
        var folder = TestData.NewTempFolder("imdb-bad");
        try
        {
            var source = File.ReadAllBytes(Path.Combine(TestData.Ensure("imdb"), "reviews.json"));
            var truncated = Path.Combine(folder, "reviews.json");
            File.WriteAllBytes(truncated, source[..(source.Length / 3)]);
            var e = Assert.Throws<WtnException>(() => ImdbReviews.Load(truncated));
            Assert.Contains(truncated, e.Message);
            Assert.DoesNotContain('\n', e.Message);

            var tooShort = Path.Combine(folder, "short.json");
            File.WriteAllText(tooShort, "[{\"t\":\"fine\",\"s\":0}]");
            e = Assert.Throws<WtnException>(() => ImdbReviews.Load(tooShort));
            Assert.Contains(tooShort, e.Message);
            Assert.Contains("50000", e.Message);
        }
        finally
        {
            TestData.DeleteFolder(folder);
        }
    }

    [Fact]
    public void Brown_drops_tags_and_rebuilds_readable_text()
    {
        var docs = BrownCorpus.Read(TestData.Ensure("brown"));
        Assert.Equal(BrownCorpus.FileCount, docs.Count);
        Assert.StartsWith(
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced \"no evidence\" that any irregularities took place.",
            docs[0]
        );
        Assert.DoesNotContain("/at ", docs[0]);
        Assert.DoesNotContain("/nn", string.Concat(docs.Take(20)));
        Assert.True(docs.Sum(d => d.Split(' ').Length) > 900_000);
    }

    [Fact]
    public void Corrupt_brown_and_text_files_are_refused_naming_the_file()
    {
        var folder = TestData.NewTempFolder("text-bad");
        try
        {
            var brown = Path.Combine(folder, "ca01");
            File.WriteAllText(brown, "\tThe/at jury said/vbd\n");
            var e = Assert.Throws<WtnException>(() => BrownCorpus.Read(folder));
            Assert.Contains(brown, e.Message);

            var txt = Path.Combine(folder, "bad.txt");
            File.WriteAllBytes(txt, [0x54, 0x68, 0xC3, 0x28, 0x65]);
            e = Assert.Throws<WtnException>(() => PlainTextCorpus.Read(folder));
            Assert.Contains(txt, e.Message);
        }
        finally
        {
            TestData.DeleteFolder(folder);
        }
    }

    [Fact]
    public void Sotu_reads_every_speech()
    {
        var docs = PlainTextCorpus.Read(TestData.Ensure("sotu"));
        Assert.Equal(233, docs.Count);
        Assert.StartsWith("Fellow-Citizens of the Senate and House of Representatives", docs[0]);
    }
}
