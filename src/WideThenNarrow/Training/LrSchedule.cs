using WideThenNarrow.Config;

namespace WideThenNarrow.Training;

/// <summary>
/// The learning rate as a pure function of the global step. TorchSharp's schedulers keep hidden state and cannot
/// be checkpointed, so the trainer derives the rate from the persisted step and sets it on every group each step.
/// </summary>
public sealed class LrSchedule
{
    readonly ScheduleConfig _c;
    readonly double _baseLr;
    readonly long _total,
        _warmup,
        _stepsPerEpoch;

    public LrSchedule(ScheduleConfig config, double baseLr, long totalSteps, long stepsPerEpoch)
    {
        if (totalSteps <= 0)
            throw new WtnException(
                $"schedule: the budget is {totalSteps} steps; set epochs or steps to a positive number"
            );
        if (config.Gamma <= 0)
            throw new WtnException($"schedule.gamma must be positive, got {config.Gamma}");
        if (config.Name == ScheduleKind.Step && config.StepEpochs <= 0)
            throw new WtnException($"schedule.step_epochs must be positive, got {config.StepEpochs}");
        if (config.MinLr < 0 || config.MinLr > baseLr)
            throw new WtnException($"schedule.min_lr must be in [0, optimizer.lr], got {config.MinLr}");
        _c = config;
        _baseLr = baseLr;
        _total = totalSteps;
        _stepsPerEpoch = Math.Max(1, stepsPerEpoch);
        _warmup = config.WarmupSteps > 0 ? config.WarmupSteps : (long)Math.Round(config.WarmupEpochs * _stepsPerEpoch);
        if (_warmup < 0 || _warmup >= totalSteps && _warmup > 0)
            throw new WtnException(
                $"schedule: warm-up ({_warmup} steps) must be shorter than the budget ({totalSteps} steps)"
            );
    }

    public long TotalSteps => _total;
    public long WarmupSteps => _warmup;

    int MilestonesPassed(long step)
    {
        int passed = 0;
        foreach (var m in _c.Milestones)
            if (step >= (long)Math.Round(m * _stepsPerEpoch))
                passed++;
        return passed;
    }

    /// <summary>The base learning rate for the step about to be taken (0-based).</summary>
    public double At(long step)
    {
        if (step < _warmup)
            return _baseLr * (_c.WarmupStartFactor + (1 - _c.WarmupStartFactor) * step / (double)_warmup);
        double epochs = step / (double)_stepsPerEpoch;
        double t = (step - _warmup) / (double)Math.Max(1, _total - _warmup); // progress after warm-up, in [0, 1)
        return _c.Name switch
        {
            ScheduleKind.Constant => _baseLr,
            ScheduleKind.Step => _baseLr * Math.Pow(_c.Gamma, Math.Floor(epochs / _c.StepEpochs + 1e-9)),
            ScheduleKind.MultiStep => _baseLr * Math.Pow(_c.Gamma, MilestonesPassed(step)),
            ScheduleKind.Cosine => _c.MinLr + (_baseLr - _c.MinLr) * 0.5 * (1 + Math.Cos(Math.PI * t)),
            ScheduleKind.Linear => _baseLr + (_c.MinLr - _baseLr) * t,
            _ => throw new ArgumentOutOfRangeException(nameof(_c.Name)),
        };
    }
}
