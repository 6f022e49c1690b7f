using System.Text.Json;
using WideThenNarrow.Data;
using WideThenNarrow.Method;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Reporting;
using WideThenNarrow.Training;
using static TorchSharp.torch;

namespace WideThenNarrow.Orchestration;

/// <summary>
/// <c>wtn run</c> of an experiment with a depth_study section: every (seed, depth) cell of the
/// <see cref="DepthStudy"/>, each in runs/NAME/seed-S/depth-L/, finished when its cell.json exists (then skipped); an
/// interrupted cell is redone from its start. The report is rewritten after every cell.
/// </summary>
public static class DepthStudyRunner
{
    /// <summary>The study on the experiment's data, as an <see cref="ExperimentResult"/>.</summary>
    public static ExperimentResult Run(
        ExperimentConfig config,
        int seeds,
        string experimentDir,
        string dataDir,
        Device device,
        IProgress<TrainingProgress>? progress,
        IProgress<string>? log,
        CancellationToken cancel
    )
    {
        using var data = ExperimentDatasets.Load(config.Data, dataDir, log);
        var study = Run(
            config,
            new DepthStudy(config, data, device, progress),
            data,
            seeds,
            experimentDir,
            log,
            cancel
        );
        return new ExperimentResult(
            config.Name,
            data.Name,
            data.TrainExamples,
            data.ValidationExamples,
            data.TestExamples,
            seeds,
            [],
            []
        )
        {
            DepthStudy = study,
        };
    }

    /// <summary>
    /// Every cell, seed by seed and depth by depth; results.json, report.md and the plot in the experiment folder are
    /// rewritten after each, so a long study shows what it has so far.
    /// </summary>
    static DepthStudyResult Run(
        ExperimentConfig config,
        DepthStudy depthStudy,
        IExperimentDataset dataset,
        int seeds,
        string experimentDir,
        IProgress<string>? log,
        CancellationToken cancel
    )
    {
        var cells = new List<DepthCell>();
        DepthStudyResult? result = null;
        for (int i = 0; i < seeds; i++)
        {
            long seed = config.SeedBase + i;
            var train = dataset.TrainSource(seed);
            foreach (var depth in config.DepthStudy!.Depths)
            {
                cells.Add(Cell(depthStudy, experimentDir, seed, depth, train, log, cancel));
                result = DepthStudyReport.Build(config, dataset, seeds, cells);
                DepthStudyReport.Write(result, experimentDir);
            }
        }
        return result!;
    }

    /// <summary>One cell: read back when its cell.json exists, else trained from its start (an interrupted one's folder deleted first).</summary>
    static DepthCell Cell(
        DepthStudy depthStudy,
        string experimentDir,
        long seed,
        int depth,
        IBatchSource train,
        IProgress<string>? log,
        CancellationToken cancel
    )
    {
        var dir = Path.Combine(StageCatalogue.SeedDir(experimentDir, seed), $"depth-{depth}");
        var done = Path.Combine(dir, "cell.json");
        if (File.Exists(done))
        {
            log?.Report($"seed {seed}, depth {depth}: already done, skipped");
            return JsonSerializer.Deserialize<DepthCell>(File.ReadAllText(done), CellJson)!;
        }
        if (Directory.Exists(dir))
        {
            log?.Report($"seed {seed}, depth {depth}: interrupted earlier; starting the cell again");
            Directory.Delete(dir, recursive: true);
        }
        var cell = depthStudy.Cell(seed, depth, train, dir, cancel);
        WriteFailure.Replace(done, tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(cell, CellJson)));
        log?.Report(
            $"seed {seed}, depth {depth}: top-point discrepancy "
                + string.Join(", ", cell.Arms.Select(a => $"{a.Arm} {a.Discrepancy[^1]:G3}"))
        );
        return cell;
    }

    // A network that drifted far gives an infinite discrepancy, which JSON spells only by name.
    static readonly JsonSerializerOptions CellJson = new(StageContext.Json)
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
