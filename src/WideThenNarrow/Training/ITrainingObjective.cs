using WideThenNarrow.Data;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>
/// What one step optimises. The trainer owns the loop (optimiser, schedule, clipping, checkpoints, resume,
/// NaN checks, metrics, progress); an objective only says how a batch becomes a loss. Plain task training,
/// layerwise imitation of one block, distillation and FitNets hints are each one small objective.
/// </summary>
public interface ITrainingObjective
{
    /// <summary>
    /// Computes the loss for one batch (inside the caller's dispose scope). <paramref name="training"/> is false
    /// during evaluation (called under no_grad).
    /// </summary>
    ObjectiveOutput Compute(Batch batch, bool training);
}

/// <summary>
/// <see cref="Loss"/>: the scalar to minimise. <see cref="Logits"/>: class scores when the objective has them
/// (the trainer then reports top-1 against the batch labels, or against <see cref="Targets"/> when the objective
/// scored only some of the batch, e.g. a masked LM's masked positions), else null. <see cref="Parts"/>: named scalar
/// components to log (e.g. "task", "kd", "mse"), or null.
/// </summary>
public readonly record struct ObjectiveOutput(
    Tensor Loss,
    Tensor? Logits = null,
    IReadOnlyDictionary<string, Tensor>? Parts = null,
    Tensor? Targets = null
);
