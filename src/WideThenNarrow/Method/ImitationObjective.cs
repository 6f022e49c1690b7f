using TorchSharp;
using WideThenNarrow.Data;
using WideThenNarrow.Losses;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// Stage 2 for one unit of thin blocks first..last (usually one block k): make thin point last reproduce its wide
/// point, <c>MSE(U_k h_k^S, h_map(k)^B)</c>, plus an optional attention KL (single-block units). The wide network runs in eval mode under no_grad; frozen thin blocks run in
/// eval mode (their batch-norm statistics stay put) and, in student mode, under no_grad.
/// </summary>
public sealed class ImitationObjective : ITrainingObjective
{
    readonly StagedModel thin,
        wide;
    readonly int block,
        first;
    readonly int[] map;
    readonly ImitationAdapters adapters;
    readonly ImitationOptions options;
    readonly IWideActivationSource wideSource;

    public ImitationObjective(
        StagedModel thin,
        StagedModel wide,
        BlockRange blocks,
        int[] layerMap,
        ImitationAdapters adapters,
        ImitationOptions options,
        IWideActivationSource? wideSource = null
    )
    {
        this.thin = thin;
        this.wide = wide;
        first = blocks.First;
        block = blocks.Last;
        map = layerMap;
        this.adapters = adapters;
        this.options = options;
        this.wideSource = wideSource ?? new OnTheFlyWideActivations(wide);
        if (options.AttentionWeight > 0 && block > 0 && (thin is not IAttentionModel || wide is not IAttentionModel))
            throw new WtnException("imitation.attention_weight > 0 needs transformer models (IAttentionModel)");
        if (first != block && options.AttentionWeight > 0)
            throw new WtnException("imitation.attention_weight > 0 needs single-block units (imitation.unit: block)");
    }

    /// <summary>The unit's last block, whose point is imitated.</summary>
    public int Block => block;

    public ObjectiveOutput Compute(Batch batch, bool training)
    {
        SetModes(training);
        var input = batch.Input;
        int target = map[block];
        bool withAttention = options.AttentionWeight > 0 && block > 0 && target > 0;
        // The wide side: its input to the block that produces the target point, and the target itself.
        bool teacherInput = first > 0 && options.Input == ImitationInput.Teacher;
        Tensor wideTarget;
        Tensor? wideAttention = null,
            x = null;
        using (no_grad())
        {
            // One wide pass gives the target and, in teacher mode, the thin unit's input; with attention the
            // target block itself is re-run to expose its attention probabilities.
            int targetPoint = withAttention ? target - 1 : target;
            var pts = teacherInput
                ? wideSource.Points(batch, targetPoint, map[first - 1])
                : wideSource.Points(batch, targetPoint);
            wideTarget = pts[0];
            if (teacherInput)
                x = pts[1];
            if (withAttention)
                (wideTarget, wideAttention) = ((IAttentionModel)wide).ForwardBlockWithAttention(
                    target,
                    wideTarget,
                    input
                );
        }
        if (teacherInput)
            x = adapters.Down(first - 1, x!);
        else if (first > 0)
            x = ThinOwnInput(batch);
        Tensor thinOut;
        Tensor? thinAttention = null;
        if (withAttention)
            (thinOut, thinAttention) = ((IAttentionModel)thin).ForwardBlockWithAttention(block, x!, input);
        else
        {
            Tensor? h = x;
            for (int k = first; k <= block; k++)
                h = thin.ForwardBlock(k, h, input);
            thinOut = h!;
        }

        var mse = ImitationLoss.Mse(
            adapters.Up(block, thinOut),
            wideTarget,
            thin.Points[block].Layout,
            options.Normalize
        );
        if (!withAttention)
            return new ObjectiveOutput(mse, Parts: new Dictionary<string, Tensor> { ["mse"] = mse });
        var kl = AttentionKlLoss.Compute(thinAttention!, wideAttention!, input.AttentionMask, options.AverageHeads);
        var loss = mse + options.AttentionWeight * kl;
        return new ObjectiveOutput(
            loss,
            Parts: new Dictionary<string, Tensor> { ["mse"] = mse, ["attention_kl"] = kl }
        );
    }

    /// <summary>Student mode: the thin network's own activation before the unit.</summary>
    Tensor ThinOwnInput(Batch batch)
    {
        if (options.EarlierBlocksLrFactor > 0)
            return thin.ForwardPoints(batch.Input, first - 1)[^1];
        using (no_grad())
            return thin.ForwardPoints(batch.Input, first - 1)[^1];
    }

    void SetModes(bool training)
    {
        wide.eval();
        thin.eval();
        if (!training)
            return;
        for (int k = first; k <= block; k++)
            foreach (var m in thin.BlockModules(k))
                m.train();
        if (options.Input == ImitationInput.Student && options.EarlierBlocksLrFactor > 0)
            for (int j = 0; j < first; j++)
                foreach (var m in thin.BlockModules(j))
                    m.train();
    }
}
