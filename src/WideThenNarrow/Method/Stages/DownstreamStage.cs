using WideThenNarrow.Models;

namespace WideThenNarrow.Method.Stages;

/// <summary>
/// Text experiments: a network pretrained by stage <c>S</c> (masked LM) is fine-tuned on the downstream task as
/// stage <c>downstream_S</c>: a fresh classification model of the same spec takes every encoder tensor of the
/// pretrained one (same HuggingFace name and shape; the pooler and classifier start fresh, as in BERT), then trains
/// with the standard recipe on the downstream data.
/// </summary>
public sealed class DownstreamStage(ExperimentStage pretraining) : ExperimentStage<DownstreamStageConfig>
{
    public const string Task = "IMDB";

    const string Prefix = "downstream_";

    /// <summary>Whether <paramref name="stage"/> is a downstream stage (downstream_S).</summary>
    public static bool IsDownstream(string stage) => stage.StartsWith(Prefix, StringComparison.Ordinal);

    public override string Name => Prefix + pretraining.Name;
    public override string Model => pretraining.Model;
    public override IReadOnlyList<string> StartsFrom => [pretraining.Name];

    public override IReadOnlyList<ReportRow> Rows =>
        [.. pretraining.Rows.Select(r => r with { Method = r.Method + RowSuffix(Task), Stages = [.. r.Stages, Name] })];

    /// <summary>What a downstream row adds to its pretrained row's name (the report puts the run's own task in).</summary>
    public static string RowSuffix(string task) => $", fine-tuned on {task}";

    public override DownstreamStageConfig? Section(ExperimentConfig c) => c.Downstream;
    public override bool IsDeclared(ExperimentConfig c) => c.Downstream is not null && pretraining.IsDeclared(c);

    public override string? Invalid(ExperimentConfig c) =>
        c is { Downstream: not null, Data.Text: null } ? "downstream fine-tunes pretrained text encoders: it needs data.text" : null;

    /// <summary>The pretrained network (from its finished stage's weights) fine-tuned with the one downstream recipe.</summary>
    internal override PlannedStage Plan(SeedPlan p, DownstreamStageConfig ds) =>
        p.Add(this, "downstream", ds, $"downstream {Model}", p.Cost(ds.Train, Model, on: p.Downstream()), () =>
        {
            var classifier = p.Downstream().Build(Model);
            return (classifier, () =>
            {
                using var pretrained = p.Load(pretraining.Name, Model);
                return Run(p.Downstream(), Name, Model, classifier, pretrained, ds, p.Cancel);
            });
        }) with { TestIn = p.Downstream };

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
