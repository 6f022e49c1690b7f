using WideThenNarrow.Data.Text;
using WideThenNarrow.Models;

namespace WideThenNarrow.Method;

/// <summary>
/// <c>wide: {import: FOLDER}</c> with a HuggingFace BERT folder: the experiment is resolved before it runs so that
/// models.wide is the checkpoint's architecture (from config.json), the text is tokenised with its vocab.txt (cased or
/// not per tokenizer_config.json), and the thin network has the checkpoint's depth unless models.thin.layers says
/// otherwise; its width (hidden, heads, intermediate) is the experiment file's. Where the widths differ, stage 2
/// compares hidden states through learned projections that exist in stage 2 only (<see cref="ImitationAdapters"/>),
/// as TinyBERT does; attention transfers per head where the head counts are equal (else imitation.average_heads).
/// </summary>
public static class HuggingFaceImport
{
    /// <summary>The experiment with the import's architecture and vocabulary filled in; unchanged unless wide.import is a folder.</summary>
    public static ExperimentConfig Resolve(ExperimentConfig c)
    {
        if (c.Wide?.Import is not { } folder || !HuggingFaceBert.IsFolder(folder))
            return c;
        if (c.Data.Text is not { } text)
            throw new WtnException(
                $"wide.import: {folder} is a HuggingFace BERT folder, which needs a text experiment (data.text)"
            );
        var hf = HuggingFaceBert.ReadConfig(folder);
        var vocab = Path.GetFullPath(HuggingFaceBert.VocabPath(folder));
        if (text.Vocab is { } own && Path.GetFullPath(own) != vocab)
            throw new WtnException(
                $"data.text.vocab: {own} is not the imported BERT's {vocab}; leave data.text.vocab out, the import sets it"
            );
        var tokenizer = TextTokenizer.Load(vocab, hf.Lowercase);
        if (tokenizer.VocabSize != hf.Vocab)
            throw new WtnException(
                $"wide.import: {vocab} has {tokenizer.VocabSize} tokens but {HuggingFaceBert.ConfigFile} says vocab_size {hf.Vocab}; the folder's files are not of one model"
            );
        int longest = Math.Max(text.SequenceLength, text.MaxLength);
        if (longest > hf.MaxPositions)
            throw new WtnException(
                $"data.text: sequences of {longest} tokens (sequence_length {text.SequenceLength}, max_length {text.MaxLength}) exceed the imported BERT's max_position_embeddings {hf.MaxPositions}; shorten them"
            );
        var wide = new ModelSpec
        {
            Name = "bert",
            Layers = hf.Layers,
            Hidden = hf.Hidden,
            Heads = hf.Heads,
            Intermediate = hf.Intermediate,
            MaxPositions = hf.MaxPositions,
            TypeVocab = hf.TypeVocab,
        };
        var thin = c.Models.Thin with { Layers = c.Models.Thin.Layers ?? hf.Layers };
        return c with
        {
            Models = c.Models with { Wide = wide, Thin = thin },
            Data = c.Data with { Text = text with { Vocab = vocab, Lowercase = hf.Lowercase } },
        };
    }
}
