using WideThenNarrow.Models;

namespace WideThenNarrow.Tests.Models;

/// <summary>The small custom BERT the model and method tests build: 2 heads, vocabulary 50, 16 positions.</summary>
internal static class TinyBert
{
    /// <summary>A masked-LM BERT of these sizes (add a <c>with</c> for widening, dropout, a classifier head...).</summary>
    public static ModelConfig MaskedLm(
        int layers = 2,
        int hidden = 32,
        int intermediate = 64,
        int vocab = 50,
        int maxPositions = 16
    ) =>
        new()
        {
            Name = "bert",
            Layers = layers,
            Hidden = hidden,
            Heads = 2,
            Intermediate = intermediate,
            Vocab = vocab,
            MaxPositions = maxPositions,
            Head = BertHead.MaskedLm,
        };
}
