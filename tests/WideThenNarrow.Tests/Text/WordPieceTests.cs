using WideThenNarrow.Data.Text;

namespace WideThenNarrow.Tests.Text;

public class WordPieceTests
{
    [Fact]
    public void First_merge_is_the_most_frequent_pair()
    {
        // HuggingFace's course example: ##u ##g occurs 10 + 5 + 5 = 20 times, more than any other pair.
        var counts = new Dictionary<string, long>
        {
            ["hug"] = 10,
            ["pug"] = 5,
            ["pun"] = 12,
            ["bun"] = 4,
            ["hugs"] = 5,
        };
        var vocab = WordPieceTrainer.Train(
            counts,
            new WordPieceTrainerOptions(VocabSize: 14, MinWordCount: 1, MinPairCount: 1)
        );
        Assert.Equal(TextTokenizer.SpecialTokens, vocab.Take(5));
        var alphabet = new[] { "h", "##u", "##g", "p", "##n", "b", "##s" };
        Assert.Equal(alphabet.Order(StringComparer.Ordinal), vocab.Skip(5).Take(7).Order(StringComparer.Ordinal));
        Assert.Equal("##ug", vocab[12]);
        // p ##u was 17 before that merge but only "pun" (12) keeps it after, so ##u ##n (16) comes next.
        Assert.Equal("##un", vocab[13]);
    }

    [Fact]
    public void Vocabulary_on_real_text_is_deterministic_sized_and_starts_with_BERT_special_tokens()
    {
        var counts = WordPieceTrainer.CountWords(TextFixture.TrainTexts);
        var a = WordPieceTrainer.Train(counts, TextFixture.Options);
        var b = WordPieceTrainer.Train(WordPieceTrainer.CountWords(TextFixture.TrainTexts), TextFixture.Options);
        Assert.Equal(a, b);
        Assert.Equal(TextFixture.Options.VocabSize, a.Count);
        Assert.Equal(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], a.Take(5));
        Assert.Equal(a.Count, a.Distinct().Count());
        Assert.Contains("the", a);
        Assert.Contains("##s", a);
        Assert.All(a.Skip(5), t => Assert.False(string.IsNullOrWhiteSpace(t)));

        var folder = TestData.NewTempFolder("vocab-bytes");
        try
        {
            WordPieceTrainer.WriteVocab(Path.Combine(folder, "a.txt"), a);
            WordPieceTrainer.WriteVocab(Path.Combine(folder, "b.txt"), b);
            Assert.Equal(
                File.ReadAllBytes(Path.Combine(folder, "a.txt")),
                File.ReadAllBytes(Path.Combine(folder, "b.txt"))
            );
        }
        finally
        {
            TestData.DeleteFolder(folder);
        }
    }

    [Fact]
    public void Tokenizer_round_trips_training_text_and_rarely_falls_back_to_unk_on_held_out_text()
    {
        var tok = TextFixture.Tokenizer;
        foreach (var text in TextFixture.TrainTexts.Take(10))
        {
            var ids = tok.Encode(text);
            Assert.DoesNotContain(TextTokenizer.UnkId, ids);
            Assert.Equal(TextTokenizer.Words(text), Reassemble(ids));
            Assert.Equal(Squeeze(string.Join(" ", TextTokenizer.Words(text))), Squeeze(tok.Decode(ids)));
        }
        var heldOut = TextFixture.HeldOutTexts.SelectMany(tok.Encode).ToArray();
        Assert.True(heldOut.Length > 10000);
        double unk = heldOut.Count(i => i == TextTokenizer.UnkId) / (double)heldOut.Length;
        Assert.True(unk < 0.002, $"unk rate {unk:P3}");
    }

    [Fact]
    public void Pre_tokenisation_lowercases_strips_accents_splits_punctuation_and_keeps_symbols()
    {
        Assert.Equal(
            ["cafe", "costs", "$", "5", ",", "isn", "'", "t", "it", "<", "br", "/", ">", "ok"],
            TextTokenizer.Words("Café costs $5, isn't it\t<br />\nOK")
        );
    }

    [Fact]
    public void Vocab_without_a_special_token_is_refused_with_the_file_name()
    {
        var folder = TestData.NewTempFolder("bad-vocab");
        try
        {
            var path = Path.Combine(folder, "vocab.txt");
            // Special tokens are found by name wherever the vocabulary keeps them (a HuggingFace vocab.txt: [UNK] at 100).
            File.WriteAllText(path, "[UNK]\n[PAD]\n[CLS]\n[SEP]\n[MASK]\nthe\n");
            Assert.Equal(new SpecialTokenIds(1, 0, 2, 3, 4), TextTokenizer.Load(path).Specials);
            File.WriteAllText(path, "[UNK]\n[PAD]\n[CLS]\n[SEP]\nthe\n");
            var e = Assert.Throws<WtnException>(() => TextTokenizer.Load(path));
            Assert.Contains(path, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        finally
        {
            TestData.DeleteFolder(folder);
        }
    }

    static List<string> Reassemble(int[] ids)
    {
        var vocab = TextFixture.Vocab;
        var words = new List<string>();
        foreach (var piece in ids.Select(i => vocab[i]))
            if (piece.StartsWith("##"))
                words[^1] += piece[2..];
            else
                words.Add(piece);
        return words;
    }

    static string Squeeze(string s) => string.Concat(s.Where(c => !char.IsWhiteSpace(c)));
}
