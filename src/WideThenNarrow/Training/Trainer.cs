using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;
using WideThenNarrow.Config;
using WideThenNarrow.Data;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>
/// Runs a <see cref="TrainingJob"/>: the loop, optimiser, schedule, clipping, evaluation, metrics, checkpoints,
/// exact resume, NaN and infinity stop and cancellation. Cancellation finishes the current step, writes a checkpoint and
/// throws <see cref="OperationCanceledException"/>.
/// </summary>
public sealed class Trainer
{
    const int StateVersion = 1;
    static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    readonly TrainingJob _job;
    readonly TrainerSettings _s;
    readonly string _ckptDir;
    readonly int _bpe;
    readonly long _totalSteps;
    readonly int _epochs;
    RunState _st = new();
    string? _lastCheckpoint;
    string? _bestCheckpoint;

    Trainer(TrainingJob job)
    {
        _job = job;
        _s = job.Settings;
        _ckptDir = Path.Combine(job.RunDir, "checkpoints");
        _bpe = job.Train.BatchesPerEpoch;
        if (_bpe <= 0)
            throw new WtnException(
                $"stage {job.Stage}: the training data has no batches ({job.Train.Count} examples, batch size {job.Train.BatchSize})"
            );
        if (_s.Steps < 0 || _s.Epochs < 0)
            throw new WtnException("epochs and steps must be >= 0");
        _totalSteps = _s.Steps > 0 ? _s.Steps : (long)_s.Epochs * _bpe;
        if (_totalSteps <= 0)
            throw new WtnException($"stage {job.Stage}: no budget; set epochs or steps to a positive number");
        _epochs = (int)((_totalSteps + _bpe - 1) / _bpe);
    }

    /// <summary>Runs the job to its budget (or from its newest checkpoint when <see cref="TrainingJob.Resume"/>).</summary>
    public static TrainingResult Run(TrainingJob job, CancellationToken cancel = default) =>
        new Trainer(job).Run(cancel);

    /// <summary>Converts modules to the precision's dtype. Call before collecting parameters: TorchSharp replaces them.</summary>
    public static void ApplyPrecision(Precision precision, params nn.Module[] modules)
    {
        if (precision == Precision.Bfloat16)
            foreach (var m in modules)
                m.to(ScalarType.BFloat16);
    }

    /// <summary>
    /// Mean loss and top-1 of <paramref name="objective"/> over one pass of <paramref name="data"/>, outside any run
    /// (e.g. the thin network right after stage 2). The caller sets the modules' modes (eval for a test).
    /// </summary>
    public static (double? Loss, double? Top1) Evaluate(
        ITrainingObjective objective,
        IBatchSource data,
        Device device
    ) => Evaluate(objective, data, device, b => b, null);

    /// <summary>One pass over <paramref name="data"/> under no_grad; <paramref name="prepare"/> adapts each batch, <paramref name="onBatch"/> sees its 1-based index.</summary>
    static (double? Loss, double? Top1) Evaluate(
        ITrainingObjective objective,
        IBatchSource data,
        Device device,
        Func<Batch, Batch> prepare,
        Action<int>? onBatch
    )
    {
        var acc = new Accumulator();
        data.ForEachNoGrad(device, (batch, i) =>
        {
            var output = objective.Compute(prepare(batch), training: false);
            acc.Add(output.Loss.ToDouble(), batch.Size, output, batch.Labels);
            onBatch?.Invoke(i);
        });
        return acc.Count == 0 ? (null, null) : (acc.LossSum / acc.Count, acc.Top1);
    }

    /// <summary>
    /// <see cref="Evaluate(ITrainingObjective, IBatchSource, Device)"/> plus, for a classifier (one label per example),
    /// whether each example in the data's order was classified right: what a paired test of two networks on the same
    /// examples needs (null for other objectives, e.g. a masked LM).
    /// </summary>
    public static (double? Loss, double? Top1, bool[]? Correct) EvaluateExamples(
        ITrainingObjective objective,
        IBatchSource data,
        Device device
    )
    {
        var acc = new Accumulator();
        var correct = new List<bool>();
        bool perExample = true;
        data.ForEachNoGrad(device, (batch, _) =>
        {
            var output = objective.Compute(batch, training: false);
            acc.Add(output.Loss.ToDouble(), batch.Size, output, batch.Labels);
            if (output is { Logits: { } logits, Targets: null } && logits.dim() == 2 && batch.Labels.dim() == 1)
                correct.AddRange(logits.argmax(-1).eq(batch.Labels).cpu().data<bool>());
            else
                perExample = false;
        });
        return acc.Count == 0
            ? (null, null, null)
            : (acc.LossSum / acc.Count, acc.Top1, perExample ? [.. correct] : null);
    }

    /// <summary>Newest step checkpoint in a run folder's checkpoints/, or null.</summary>
    public static string? LatestCheckpoint(string runDir)
    {
        var dir = Path.Combine(runDir, "checkpoints");
        return Directory.Exists(dir)
            ? Directory.GetFiles(dir, "step-*.ckpt").OrderBy(f => f, StringComparer.Ordinal).LastOrDefault()
            : null;
    }

    /// <summary>Loads only the module states of a checkpoint (e.g. best.ckpt of an earlier stage) into the given modules.</summary>
    public static void LoadModules(string checkpoint, IReadOnlyDictionary<string, nn.Module> modules)
    {
        var sections = CheckpointFile.Read(checkpoint);
        foreach (var (name, module) in modules)
        {
            if (!sections.TryGetValue("module/" + name, out var bytes))
                throw new WtnException(
                    $"checkpoint {checkpoint} has no module '{name}' (it has: {string.Join(", ", sections.Keys.Where(k => k.StartsWith("module/")).Select(k => k[7..]))})"
                );
            using var r = new BinaryReader(new MemoryStream(bytes));
            try
            {
                module.load(r, strict: true);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
            {
                throw new WtnException(
                    $"checkpoint {checkpoint}: module '{name}' does not match the model ({e.Message.Split('\n')[0]})",
                    e
                );
            }
        }
    }

    TrainingResult Run(CancellationToken cancel)
    {
        using var runLock = RunLock.Acquire(_job.RunDir);
        var dtype = CheckPrecision();
        using var opt = OptimizerSet.Create(_s.Optimizer, _job.ParameterGroups);
        var schedule = new LrSchedule(_s.Schedule, _s.Optimizer.Lr, _totalSteps, _bpe);
        var trainable = opt.Parameters.ToList();

        bool resumed = false;
        var existing = LatestCheckpoint(_job.RunDir);
        if (_job.Resume)
        {
            if (existing is null)
                throw new WtnException($"--resume: no checkpoint in {_ckptDir}; start without --resume");
            Restore(existing, opt);
            resumed = true;
        }
        else
        {
            if (existing is not null)
                throw new WtnException(
                    $"run folder {_job.RunDir} already has checkpoints; pass --resume to continue it or choose another --run-dir"
                );
            manual_seed(_s.Seed);
        }
        if (_job.ConfigYaml is not null)
            File.WriteAllText(Path.Combine(_job.RunDir, "config.yaml"), _job.ConfigYaml);
        var best = Path.Combine(_ckptDir, "best.ckpt");
        if (File.Exists(best))
            _bestCheckpoint = best;
        // A run stopped between its step checkpoint and the copy to best.ckpt (a full disk) resumes at that very
        // checkpoint with its state naming it the best: finish the copy, so best.ckpt is never an older epoch.
        if (
            resumed
            && _s.Checkpoint.KeepBest
            && existing is not null
            && _st.Best is { } b
            && b.Step == _st.Step
            && !CheckpointFile.SamePayload(existing, best)
        )
            CopyToBest(existing);

        using var log = new MetricsLog(_job.RunDir, _s.Logging.Tensorboard, resumed ? _st.Step : null);
        SessionLog.Append(_job.RunDir, _st.Step, resumed);
        var wall = Stopwatch.StartNew();
        double wallOffset = _st.ElapsedSeconds;
        TimeSpan Elapsed() => TimeSpan.FromSeconds(wallOffset + wall.Elapsed.TotalSeconds);
        Report(TrainingEventKind.Started, 0, schedule.At(Math.Min(_st.Step, _totalSteps - 1)), 0, Elapsed(), null);
        WriteProgress(0, Elapsed(), null);

        var stepTime = new StepTimeAverage();
        double sps = 0;
        // Plus the evaluations still to come (none known before this process's first).
        TimeSpan? Eta() =>
            stepTime.Slow > 0
                ? TimeSpan.FromSeconds(
                    stepTime.Slow * (_totalSteps - _st.Step)
                        + stepTime.Evaluation
                            * EvaluationsLeft(_st.Epoch, _epochs, _job.Eval is null ? -1 : _s.Eval.EveryEpochs)
                )
                : null;
        while (_st.Epoch < _epochs && _st.Step < _totalSteps)
        {
            SetMode(true);
            var epochClock = Stopwatch.StartNew();
            double epochSecondsOffset = _st.EpochSeconds;
            using (var batches = _job.Train.Epoch(_st.Epoch, _job.Device, _st.StepInEpoch).GetEnumerator())
            {
                while (_st.Step < _totalSteps)
                {
                    var stepClock = Stopwatch.StartNew();
                    using var scope = NewDisposeScope();
                    if (!batches.MoveNext())
                        break;
                    using var batch = batches.Current;
                    double lr = schedule.At(_st.Step);
                    opt.SetLearningRate(lr);
                    opt.Optimizer.zero_grad();
                    var output = _job.Objective.Compute(Cast(batch, dtype), training: true);
                    double loss = output.Loss.ToDouble();
                    StopIfNotFinite("loss", loss, _st.Step + 1);
                    output.Loss.backward();
                    if (_s.Optimizer.ClipGradNorm > 0)
                        nn.utils.clip_grad_norm_(trainable, _s.Optimizer.ClipGradNorm);
                    opt.Optimizer.step();

                    long n = batch.Size;
                    _st.EpochSums.Add(loss, n, output, batch.Labels);
                    _st.Window.Add(loss, n, output, batch.Labels);
                    _st.Step++;
                    _st.StepInEpoch++;

                    double sec = stepClock.Elapsed.TotalSeconds;
                    stepTime.Add(sec);
                    sps = n / Math.Max(stepTime.Fast, 1e-9);
                    var eta = Eta();
                    Report(TrainingEventKind.Step, loss, lr, sps, Elapsed(), eta);

                    if (_s.Logging.EverySteps > 0 && _st.Step % _s.Logging.EverySteps == 0)
                    {
                        Write(
                            log,
                            _st.Window.ToMetrics("step", _job.Stage, _st.Epoch, _st.Step, lr, null, null) with
                            {
                                SamplesPerSecond = sps,
                            }
                        );
                        _st.Window = new Accumulator();
                        WriteProgress(sps, Elapsed(), eta);
                    }
                    bool epochDone = _st.StepInEpoch >= _bpe || _st.Step >= _totalSteps;
                    if (cancel.IsCancellationRequested)
                    {
                        _st.EpochSeconds = epochSecondsOffset + epochClock.Elapsed.TotalSeconds;
                        _st.ElapsedSeconds = Elapsed().TotalSeconds;
                        var path = SaveCheckpoint(opt);
                        WriteProgress(sps, Elapsed(), eta);
                        throw new TrainingInterruptedException(_job.Stage, _st.Step, path, cancel);
                    }
                    if (!epochDone && _s.Checkpoint.EverySteps > 0 && _st.Step % _s.Checkpoint.EverySteps == 0)
                    {
                        _st.EpochSeconds = epochSecondsOffset + epochClock.Elapsed.TotalSeconds;
                        _st.ElapsedSeconds = Elapsed().TotalSeconds;
                        SaveCheckpoint(opt);
                    }
                }
            }
            double trainSeconds = epochSecondsOffset + epochClock.Elapsed.TotalSeconds;
            bool evaluate =
                _job.Eval is not null
                && (_st.Step >= _totalSteps || EvaluatesAfter(_st.Epoch, _epochs, _s.Eval.EveryEpochs));
            var evalClock = Stopwatch.StartNew();
            var (evalLoss, evalTop1) = evaluate ? Evaluate(dtype, Elapsed) : (null, null);
            if (evaluate)
                stepTime.AddEvaluation(evalClock.Elapsed.TotalSeconds);
            StopIfNotFinite("eval loss", evalLoss, _st.Step);
            var metrics = _st.EpochSums.ToMetrics(
                "epoch",
                _job.Stage,
                _st.Epoch,
                _st.Step,
                schedule.At(Math.Max(0, _st.Step - 1)),
                evalLoss,
                evalTop1
            ) with
            {
                Seconds = trainSeconds,
                SamplesPerSecond = _st.EpochSums.Count / Math.Max(trainSeconds, 1e-9),
            };
            Write(log, metrics);
            _st.History.Add(metrics);
            bool improved = IsBetter(metrics, _st.Best);
            if (improved)
                _st.Best = metrics;
            _st.Epoch++;
            _st.StepInEpoch = 0;
            _st.EpochSums = new Accumulator();
            _st.EpochSeconds = 0;
            _st.ElapsedSeconds = Elapsed().TotalSeconds;
            Report(
                TrainingEventKind.EpochEnd,
                metrics.TrainLoss,
                metrics.Lr,
                metrics.SamplesPerSecond,
                Elapsed(),
                null,
                metrics
            );
            // The step rate, not the epoch's mean: an epoch's seconds include pauses and the time before a resume.
            WriteProgress(sps, Elapsed(), Eta());
            var saved = SaveCheckpoint(opt);
            if (improved && _s.Checkpoint.KeepBest)
                CopyToBest(saved);
        }
        var result = new TrainingResult(
            _job.RunDir,
            _st.Best,
            _st.History.LastOrDefault(),
            _st.History.ToList(),
            _lastCheckpoint ?? LatestCheckpoint(_job.RunDir),
            _bestCheckpoint,
            _st.Step,
            Elapsed(),
            resumed
        );
        Report(TrainingEventKind.Finished, result.Last?.TrainLoss ?? 0, 0, 0, Elapsed(), TimeSpan.Zero, result.Last);
        WriteProgress(sps, Elapsed(), TimeSpan.Zero);
        return result;
    }

    /// <summary>
    /// Stops the run on a NaN or infinite value: training does not recover from one, and JSON (metrics.jsonl, the
    /// checkpoint's state) cannot hold it. A resume repeats the same steps, so it stops the same way.
    /// </summary>
    void StopIfNotFinite(string what, double? value, long step)
    {
        if (value is { } v && !double.IsFinite(v))
            throw new WtnException(
                $"stage {_job.Stage}: {what} is {v.ToString(CultureInfo.InvariantCulture)} at step {step} (epoch {_st.Epoch + 1}); last good checkpoint: {_lastCheckpoint ?? "none"}. Lower optimizer.lr or set optimizer.clip_grad_norm"
            );
    }

    void Write(MetricsLog log, EpochMetrics m)
    {
        StopIfNotFinite("train loss", m.TrainLoss, m.Step);
        foreach (var (part, value) in m.Parts ?? new Dictionary<string, double>())
            StopIfNotFinite($"loss part {part}", value, m.Step);
        log.Write(m);
    }

    /// <summary>Whether epoch <paramref name="epoch"/> (0-based) ends with an evaluation: every <paramref name="every"/>-th, and the last.</summary>
    static bool EvaluatesAfter(int epoch, int epochs, int every) =>
        epoch == epochs - 1 || (every > 0 && (epoch + 1) % every == 0);

    /// <summary>
    /// Evaluations from epoch <paramref name="epoch"/> (0-based, in progress or next) to the end, as the loop runs them
    /// (<see cref="EvaluatesAfter"/>); none when <paramref name="every"/> is negative (no evaluation data).
    /// </summary>
    internal static int EvaluationsLeft(int epoch, int epochs, int every) =>
        every < 0
            ? 0
            : Enumerable
                .Range(Math.Max(0, epoch), Math.Max(0, epochs - Math.Max(0, epoch)))
                .Count(e => EvaluatesAfter(e, epochs, every));

    /// <summary>RUN/progress.json for readers outside the process (logging cadence, epoch ends, start and finish).</summary>
    void WriteProgress(double sps, TimeSpan elapsed, TimeSpan? eta) =>
        new RunProgressFile(
            _job.Stage,
            Math.Min(_st.Epoch, _epochs - 1) + 1,
            _epochs,
            _st.Step,
            _totalSteps,
            sps,
            elapsed.TotalSeconds,
            eta?.TotalSeconds,
            _st.History.LastOrDefault(m => m.EvalTop1 is not null)?.EvalTop1,
            DateTime.UtcNow
        ).Write(_job.RunDir);

    ScalarType CheckPrecision()
    {
        var want = _s.Precision == Precision.Bfloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        foreach (var g in _job.ParameterGroups)
        foreach (var p in g.Parameters)
            if (p.dtype != want)
                throw new ArgumentException(
                    $"parameter group '{g.Name}' has {p.dtype} parameters but precision is {_s.Precision}; call Trainer.ApplyPrecision before building the groups"
                );
        return want;
    }

    /// <summary>Floating inputs follow the model's dtype (bfloat16 runs); ids and masks stay as they are.</summary>
    static Batch Cast(Batch b, ScalarType dtype)
    {
        var x = b.Input.Input;
        if (!x.is_floating_point() || x.dtype == dtype)
            return b;
        return new Batch(new ModelInput(x.to(dtype), b.Input.AttentionMask, b.Input.TokenTypeIds), b.Labels);
    }

    void SetMode(bool training)
    {
        foreach (var m in _job.Modules.Values)
            m.train(training);
        foreach (var m in _job.EvalOnlyModules)
            m.eval();
    }

    (double? Loss, double? Top1) Evaluate(ScalarType dtype, Func<TimeSpan> elapsed)
    {
        SetMode(false);
        var result = Evaluate(
            _job.Objective,
            _job.Eval!,
            _job.Device,
            b => Cast(b, dtype),
            i =>
                Report(
                    TrainingEventKind.Evaluating,
                    0,
                    0,
                    0,
                    elapsed(),
                    null,
                    stepInEpoch: i,
                    stepsPerEpoch: _job.Eval!.BatchesPerEpoch
                )
        );
        SetMode(true);
        return result;
    }

    /// <summary>Higher eval top-1, else lower eval loss, else lower train loss.</summary>
    static bool IsBetter(EpochMetrics m, EpochMetrics? best)
    {
        if (best is null)
            return true;
        if (m.EvalTop1 is { } t && best.EvalTop1 is { } bt)
            return t > bt;
        if (m.EvalLoss is { } l && best.EvalLoss is { } bl)
            return l < bl;
        return m.TrainLoss < best.TrainLoss;
    }

    void Report(
        TrainingEventKind kind,
        double loss,
        double lr,
        double sps,
        TimeSpan elapsed,
        TimeSpan? eta,
        EpochMetrics? metrics = null,
        string? checkpoint = null,
        int? stepInEpoch = null,
        int? stepsPerEpoch = null
    ) =>
        _job.Progress?.Report(
            new TrainingProgress(
                kind,
                _job.Stage,
                Math.Min(_st.Epoch, _epochs - 1),
                _epochs,
                _st.Step,
                _totalSteps,
                stepInEpoch ?? _st.StepInEpoch,
                stepsPerEpoch ?? _bpe,
                loss,
                lr,
                sps,
                elapsed,
                eta,
                metrics,
                checkpoint
            )
        );

    void CopyToBest(string stepCheckpoint)
    {
        var best = Path.Combine(_ckptDir, "best.ckpt");
        var tmp = best + ".tmp";
        WriteFailure.Replace(
            best,
            tmp,
            () => File.Copy(stepCheckpoint, tmp, overwrite: true),
            why =>
                $"cannot write {best}: {why}; {stepCheckpoint} is written: free space on that disk and run the same command again to resume (best.ckpt is copied then)"
        );
        _bestCheckpoint = best;
    }

    string SaveCheckpoint(OptimizerSet opt)
    {
        var path = Path.Combine(_ckptDir, $"step-{_st.Step:D9}.ckpt");
        _st.Version = StateVersion;
        _st.Stage = _job.Stage;
        _st.ConfigYaml = _job.ConfigYaml;
        using (var rng = get_rng_state())
            _st.TorchRng = rng.bytes.ToArray();
        var sections = new List<(string, Action<BinaryWriter>)>
        {
            ("state", w => w.Write(JsonSerializer.SerializeToUtf8Bytes(_st, Json))),
            ("optimizer", w => ((TorchSharp.Modules.OptimizerHelper)opt.Optimizer).save_state_dict(w)),
        };
        foreach (var (name, module) in _job.Modules)
            sections.Add(("module/" + name, w => module.save(w)));
        CheckpointFile.Write(path, sections);
        _lastCheckpoint = path;
        // Keep the newest KeepLast step checkpoints (at least this one).
        var all = Directory.GetFiles(_ckptDir, "step-*.ckpt").OrderBy(f => f, StringComparer.Ordinal).ToList();
        foreach (var old in all.Take(Math.Max(0, all.Count - Math.Max(1, _s.Checkpoint.KeepLast))))
            File.Delete(old);
        Report(
            TrainingEventKind.CheckpointSaved,
            0,
            0,
            0,
            TimeSpan.FromSeconds(_st.ElapsedSeconds),
            null,
            checkpoint: path
        );
        return path;
    }

    void Restore(string path, OptimizerSet opt)
    {
        var sections = CheckpointFile.Read(path);
        if (!sections.TryGetValue("state", out var state) || !sections.TryGetValue("optimizer", out var optBytes))
            throw new WtnException($"checkpoint {path} lacks its trainer state; it is not a resumable wtn checkpoint");
        _st = JsonSerializer.Deserialize<RunState>(state, Json)
            ?? throw new WtnException($"checkpoint {path}: empty trainer state");
        if (_st.Version != StateVersion)
            throw new WtnException($"checkpoint {path} has state version {_st.Version}, this wtn reads {StateVersion}");
        if (_st.Stage != _job.Stage)
            throw new WtnException($"checkpoint {path} belongs to stage '{_st.Stage}', not '{_job.Stage}'");
        // A run resumed under other settings would be neither the old run nor the new one.
        if (
            _st.ConfigYaml is { } was
            && _job.ConfigYaml is { } now
            && was != now
            && ConfigLoader.Changes(
                ConfigLoader.FlattenYaml(was, path),
                ConfigLoader.FlattenYaml(now, "the config"),
                _job.SettingDefault
            )
                is { Count: > 0 } changes
        )
            throw new WtnException(
                $"checkpoint {path} was written under other settings ({ConfigLoader.Describe(changes)}); "
                    + "resume with the settings the run started with, or start a new run folder"
            );
        LoadModules(path, _job.Modules);
        try
        {
            KeptScalar.LoadState(opt.Optimizer, optBytes);
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or EndOfStreamException)
        {
            throw new WtnException(
                $"checkpoint {path}: optimiser state does not match this job's optimiser or parameter groups ({e.Message})",
                e
            );
        }
        using (var rng = tensor(_st.TorchRng))
            set_rng_state(rng);
        _lastCheckpoint = path;
    }

    /// <summary>Everything besides tensors that exact resume needs; serialised as JSON into the checkpoint.</summary>
    sealed class RunState
    {
        public int Version { get; set; }
        public string Stage { get; set; } = "";

        /// <summary>The epoch in progress (or next) and how many of its batches are done.</summary>
        public int Epoch { get; set; }
        public int StepInEpoch { get; set; }
        public long Step { get; set; }
        public double ElapsedSeconds { get; set; }
        public double EpochSeconds { get; set; }
        public Accumulator EpochSums { get; set; } = new();
        public Accumulator Window { get; set; } = new();
        public List<EpochMetrics> History { get; set; } = [];
        public EpochMetrics? Best { get; set; }
        public byte[] TorchRng { get; set; } = [];
        public string? ConfigYaml { get; set; }
    }
}

/// <summary>
/// Seconds per training step, two ways. <see cref="Fast"/>: a moving average over about 10 steps, which follows a change
/// of speed quickly (the speed shown). <see cref="Slow"/>: the mean of the last <see cref="Horizon"/> steps or so (the plain
/// mean until then), for the time left, so that a minute's slowdown (another job on the machine) does not double an
/// estimate of hours. Once <see cref="Warmup"/> steps are in, a step counts as at most <see cref="OutlierFactor"/> times
/// the mean: one step that spans a pause (a stopped process, a suspended machine) is not a speed, and would otherwise
/// add its minutes to every step left for the next few hundred steps. <see cref="Evaluation"/>: the seconds an evaluation
/// takes, the fastest of this process's: every evaluation does the same work (the same network, the same test set),
/// so the fastest is the one that no pause or other job stretched, where the last one's would count a stopped
/// process's minutes once for every evaluation left.
/// </summary>
internal struct StepTimeAverage
{
    public const int Horizon = 300,
        Warmup = 10;
    public const double OutlierFactor = 4;
    long steps;

    public double Fast { get; private set; }
    public double Slow { get; private set; }
    public double Evaluation { get; private set; }

    public void AddEvaluation(double seconds) => Evaluation = Evaluation > 0 ? Math.Min(Evaluation, seconds) : seconds;

    public void Add(double seconds)
    {
        if (steps >= Warmup)
            seconds = Math.Min(seconds, OutlierFactor * Slow);
        Fast = steps == 0 ? seconds : 0.9 * Fast + 0.1 * seconds;
        Slow += (seconds - Slow) / Math.Min(++steps, Horizon);
    }
}

/// <summary>Running sums over an epoch or a logging window (serialisable so resume continues them exactly).</summary>
sealed class Accumulator
{
    public double LossSum { get; set; }
    public long Count { get; set; }
    public long Correct { get; set; }
    public long Scored { get; set; }
    public Dictionary<string, double> Parts { get; set; } = [];

    public double? Top1 => Scored > 0 ? Correct / (double)Scored : null;

    public void Add(double loss, long n, ObjectiveOutput output, Tensor labels)
    {
        LossSum += loss * n;
        Count += n;
        if (output.Targets is { } targets)
            labels = targets;
        if (output.Logits is { } logits && labels.dim() == logits.dim() - 1)
        {
            using var pred = logits.argmax(-1);
            using var scored = labels.ne(MaskedLmObjective.IgnoreIndex);
            using var hit = pred.eq(labels).logical_and_(scored);
            Correct += hit.sum().ToInt64();
            Scored += scored.sum().ToInt64();
        }
        if (output.Parts is not null)
            foreach (var (k, v) in output.Parts)
                Parts[k] = Parts.GetValueOrDefault(k) + v.ToDouble() * n;
    }

    public EpochMetrics ToMetrics(
        string kind,
        string stage,
        int epoch,
        long step,
        double lr,
        double? evalLoss,
        double? evalTop1
    ) =>
        new(
            kind,
            stage,
            epoch,
            step,
            lr,
            Count > 0 ? LossSum / Count : double.NaN,
            Top1,
            evalLoss,
            evalTop1,
            0,
            0,
            Parts.Count == 0 ? null : Parts.ToDictionary(p => p.Key, p => p.Value / Math.Max(1, Count))
        );
}
