using TorchSharp;
using WideThenNarrow.Data;
using WideThenNarrow.Losses;
using WideThenNarrow.Models;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// Stage 2 for one thin block k: make thin point k reproduce its wide point, <c>MSE(U_k h_k^S, h_map(k)^B)</c>,
/// plus an optional attention KL. The wide network runs in eval mode under no_grad; frozen thin blocks run in
/// eval mode (their batch-norm statistics stay put) and, in student mode, under no_grad.
/// </summary>
public sealed class ImitationObjective : ITrainingObjective
{
    readonly StagedModel thin, wide;
    readonly int block;
    readonly int[] map;
    readonly ImitationAdapters adapters;
    readonly ImitationOptions options;
    readonly IWideActivationSource wideSource;

    public ImitationObjective(StagedModel thin, StagedModel wide, int block, int[] layerMap, ImitationAdapters adapters,
        ImitationOptions options, IWideActivationSource? wideSource = null)
    {
        this.thin = thin;
        this.wide = wide;
        this.block = block;
        map = layerMap;
        this.adapters = adapters;
        this.options = options;
        this.wideSource = wideSource ?? new OnTheFlyWideActivations(wide);
        if (options.AttentionWeight > 0 && block > 0 && (thin is not IAttentionModel || wide is not IAttentionModel))
            throw new WtnException("imitation.attention_weight > 0 needs transformer models (IAttentionModel)");
    }

    public int Block => block;

    public ObjectiveOutput Compute(Batch batch, bool training)
    {
        SetModes(training);
        var input = batch.Input;
        int target = map[block];
        bool withAttention = options.AttentionWeight > 0 && block > 0 && target > 0;
        // The wide side: its input to the block that produces the target point, and the target itself.
        bool teacherInput = block > 0 && options.Input == ImitationInput.Teacher;
        Tensor wideTarget;
        Tensor? wideAttention = null, x = null;
        using (no_grad())
        {
            // One wide pass gives the target and, in teacher mode, the thin block's input; with attention the
            // target block itself is re-run to expose its attention probabilities.
            int targetPoint = withAttention ? target - 1 : target;
            var pts = teacherInput ? wideSource.Points(batch, targetPoint, map[block - 1]) : wideSource.Points(batch, targetPoint);
            wideTarget = pts[0];
            if (teacherInput) x = pts[1];
            if (withAttention)
                (wideTarget, wideAttention) = ((IAttentionModel)wide).ForwardBlockWithAttention(target, wideTarget, input);
        }
        if (teacherInput) x = adapters.Down(block - 1, x!);
        else if (block > 0) x = ThinOwnInput(batch);
        Tensor thinOut;
        Tensor? thinAttention = null;
        if (withAttention) (thinOut, thinAttention) = ((IAttentionModel)thin).ForwardBlockWithAttention(block, x!, input);
        else thinOut = thin.ForwardBlock(block, x, input);

        var mse = ImitationLoss.Mse(adapters.Up(block, thinOut), wideTarget, thin.Points[block].Layout, options.Normalize);
        if (!withAttention) return new ObjectiveOutput(mse, Parts: new Dictionary<string, Tensor> { ["mse"] = mse });
        var kl = AttentionKlLoss.Compute(thinAttention!, wideAttention!, input.AttentionMask, options.AverageHeads);
        var loss = mse + options.AttentionWeight * kl;
        return new ObjectiveOutput(loss, Parts: new Dictionary<string, Tensor> { ["mse"] = mse, ["attention_kl"] = kl });
    }

    /// <summary>Student mode: the thin network's own activation before block k.</summary>
    Tensor ThinOwnInput(Batch batch)
    {
        if (options.EarlierBlocksLrFactor > 0) return thin.ForwardPoints(batch.Input, block - 1)[^1];
        using (no_grad()) return thin.ForwardPoints(batch.Input, block - 1)[^1];
    }

    void SetModes(bool training)
    {
        wide.eval();
        thin.eval();
        if (!training) return;
        foreach (var m in thin.BlockModules(block)) m.train();
        if (options.Input == ImitationInput.Student && options.EarlierBlocksLrFactor > 0)
            for (int j = 0; j < block; j++) foreach (var m in thin.BlockModules(j)) m.train();
    }
}
