using WideThenNarrow.Models;

namespace WideThenNarrow.Method.Stages;

/// <summary>
/// Text experiments: a network pretrained by stage <c>S</c> (masked LM) is fine-tuned on the downstream task as
/// stage <c>downstream_S</c>: a fresh classification model of the same spec takes every encoder tensor of the
/// pretrained one (same HuggingFace name and shape; the pooler and classifier start fresh, as in BERT), then trains
/// with the standard recipe on the downstream data.
/// </summary>
public static class DownstreamStage
{
    public const string Task = "IMDB";

    const string Prefix = "downstream_";

    public static string NameFor(string pretrainingStage) => Prefix + pretrainingStage;

    /// <summary>Whether <paramref name="stage"/> is a downstream stage (downstream_S).</summary>
    public static bool IsDownstream(string stage) => stage.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Pretraining stages whose networks are fine-tuned, with the model each trained.</summary>
    public static readonly (string Stage, string Model)[] Pretrained =
        [("finetune", "thin"), ("finetune_no_kd", "thin"), ("standard", "thin"), ("standard_matched", "thin"), ("standard_long", "thin"),
         ("kd", "thin"), ("fitnets", "thin"), ("deeper", "deeper")];

    public static StageSummary Run(StageContext downstream, string stage, string modelKey, StagedModel classifier, StagedModel pretrained,
        DownstreamStageConfig c, CancellationToken cancel)
    {
        int copied = CopyEncoder(pretrained, classifier);
        if (copied == 0) throw new WtnException($"{stage}: the pretrained {modelKey} network shares no encoder tensor with its classifier; check models.{modelKey}");
        return StandardStage.Run(downstream, stage, modelKey, classifier, c.Train, cancel);
    }

    /// <summary>
    /// Copies every tensor of <paramref name="from"/> whose name and shape <paramref name="to"/> also has. A masked-LM
    /// BERT and a classification BERT share exactly the encoder (bert.embeddings.*, bert.encoder.*): the heads are
    /// named cls.* and bert.pooler.* / classifier.*.
    /// </summary>
    public static int CopyEncoder(StagedModel from, StagedModel to)
    {
        var target = to.state_dict();
        int copied = 0;
        using var _ = TorchSharp.torch.no_grad();
        foreach (var (name, tensor) in from.state_dict())
        {
            if (!target.TryGetValue(name, out var dst) || !dst.shape.SequenceEqual(tensor.shape)) continue;
            dst.copy_(tensor);
            copied++;
        }
        return copied;
    }
}
