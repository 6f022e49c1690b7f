using TorchSharp.Modules;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Method;

/// <summary>
/// Recomputes a network's batch-norm running statistics from its own activations: the statistics are reset, then
/// up to <c>batches</c> training batches pass forward in training mode under no_grad with a cumulative average
/// (momentum None), and the momenta are restored. After stage 2 each thin block's statistics come from a short run
/// whose inputs were the wide network's (teacher input) or came from earlier blocks still in training, not from the
/// finished thin network below it (its effect on the demo's subset: docs/results.md).
/// </summary>
public static class BatchNormRecalibration
{
    /// <summary>The number of batch-norm layers recalibrated (0: nothing to do, e.g. a transformer) and of batches used.</summary>
    public static (int Layers, int Batches) Run(StagedModel model, IBatchSource data, Device device, int batches)
    {
        var norms = model.modules().OfType<BatchNorm>().ToList();
        if (norms.Count == 0 || batches <= 0)
            return (0, 0);
        var momenta = norms.Select(n => n.momentum).ToList();
        foreach (var n in norms)
        {
            n.reset_running_stats();
            n.momentum = null;
        }
        bool wasTraining = model.training;
        model.train();
        int seen = 0;
        try
        {
            seen = data.ForEachNoGrad(device, (batch, _) => model.call(batch.Input), batches);
        }
        finally
        {
            for (int i = 0; i < norms.Count; i++)
                norms[i].momentum = momenta[i];
            model.train(wasTraining);
        }
        return (norms.Count, seen);
    }
}
