using WideThenNarrow.Method;
using WideThenNarrow.Method.Stages;
using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Export;

/// <summary>
/// <c>wtn export</c>: finished stages of an experiment (runs/EXPERIMENT/seed-S/STAGE) as PyTorch weights or ONNX
/// graphs with their manifests. <paramref name="config"/> is the experiment's resolved config; <paramref name="verifyStage"/>
/// refuses a finished stage trained under other settings than the config's (the runner's check, with the data open).
/// </summary>
public sealed class ExperimentExport(
    ExperimentConfig config,
    string experimentDir,
    string dataDir,
    IProgress<string>? log,
    Action<long, string, IExperimentDataset> verifyStage
)
{
    string ExperimentDir => experimentDir;

    static IReadOnlyList<string> DeclaredStages(ExperimentConfig c) =>
        [.. StageCatalogue.Declared(c).Select(s => s.Name)];

    static string SeedDir(string experimentDir, long seed) => StageCatalogue.SeedDir(experimentDir, seed);

    void VerifyStage(long seed, string stage, IExperimentDataset dataset) => verifyStage(seed, stage, dataset);

    /// <summary>
    /// <c>wtn export</c>: the final weights of <paramref name="stage"/>, finished for <paramref name="seed"/>, as a PyTorch
    /// state_dict with torchvision / HuggingFace names at <paramref name="outPath"/> (.safetensors or .pth), plus the
    /// manifest that rebuilds the network (<see cref="ModelExport"/>). Reads the stage folder only: safe during a run.
    /// </summary>
    public ExportManifest Export(string stage, long seed, string outPath)
    {
        if (!OnnxExport.IsOnnx(outPath))
            ModelExport.CheckPath(outPath);
        if (stage == "wide" && config.Wide?.Import is { } imported)
            throw new WtnException(
                $"--stage wide: the wide network is imported from {imported}, which is a PyTorch state_dict already"
            );
        var declared = DeclaredStages(config);
        if (!declared.Contains(stage))
            throw new WtnException(
                $"--stage: '{stage}' is not a stage of experiment {config.Name}; its stages: {string.Join(", ", declared)}"
            );
        var seedDir = SeedDir(ExperimentDir, seed);
        if (!Directory.Exists(seedDir))
        {
            var present = SeedsPresent();
            throw new WtnException(
                $"--seed {seed}: {seedDir} does not exist; "
                    + (
                        present.Count > 0
                            ? $"seeds run so far: {string.Join(", ", present)}"
                            : $"nothing has run yet under {ExperimentDir}"
                    )
            );
        }
        var dir = Path.Combine(seedDir, stage);
        if (!StageSummary.IsDone(dir))
            throw new WtnException(
                $"--stage {stage}: seed {seed} has not finished it ({dir} has no {StageSummary.FileName}); wtn report shows where it stands"
            );
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log);
        return ExportStage(stage, seed, outPath, dataset);
    }

    /// <summary>Seeds with a folder under the experiment (seed-S), in order.</summary>
    List<long> SeedsPresent() =>
        Directory.Exists(ExperimentDir)
            ? Directory
                .GetDirectories(ExperimentDir, "seed-*")
                .Select(d => long.TryParse(Path.GetFileName(d)["seed-".Length..], out var s) ? s : (long?)null)
                .OfType<long>()
                .Order()
                .ToList()
            : [];

    /// <summary>One finished stage's export, with the experiment's data already open (its model config and input).</summary>
    ExportManifest ExportStage(string stage, long seed, string outPath, IExperimentDataset dataset)
    {
        var dir = Path.Combine(SeedDir(ExperimentDir, seed), stage);
        var summary = StageSummary.TryLoad(dir) ?? throw new WtnException($"{dir}: stage {stage} is not done");
        VerifyStage(seed, stage, dataset);
        var data = DownstreamStage.IsDownstream(stage) ? ((MaskedLmExperimentDataset)dataset).Downstream() : dataset;
        var modelConfig = data.ModelConfig(config.Models.Spec(summary.Model), summary.Model);
        using var model = ModelFactory.Create(modelConfig);
        summary.LoadWeights(dir, model);
        var source = $"experiment {config.Name}, seed {seed}, stage {stage}";
        // NAME.onnx comes with NAME.safetensors: the manifest rebuilds the network from the state_dict, and ONNX
        // Runtime has checked the graph against it before OnnxExport returns.
        bool onnx = OnnxExport.IsOnnx(outPath);
        var weightsPath = onnx ? OnnxExport.WeightsPath(outPath) : outPath;
        using var scope = NewDisposeScope();
        var manifest = onnx
            ? OnnxExport
                .Write(
                    model,
                    modelConfig,
                    outPath,
                    data.ExportInput(),
                    data.ExampleInput(2, CPU),
                    source,
                    summary.TestTop1,
                    summary.ValTop1
                )
                .Manifest
            : ModelExport.Write(
                model,
                modelConfig,
                outPath,
                data.ExportInput(),
                source,
                summary.TestTop1,
                summary.ValTop1
            );
        // The file is read back as a user would (manifest, checksum, strict load) and must give the same outputs.
        try
        {
            using var back = ModelExport.Load(ModelExport.ManifestPath(weightsPath));
            model.eval();
            var input = data.ExampleInput(2, CPU);
            using (no_grad())
                if (!model.call(input).eq(back.call(input)).all().item<bool>())
                    throw new WtnException(
                        $"{weightsPath}: the network read back from the exported file gives other outputs than stage {stage}'s weights; please report this"
                    );
        }
        catch
        {
            ModelExport.Delete(weightsPath); // a file that does not give the stage's network back must not stay
            if (onnx && File.Exists(outPath))
                File.Delete(outPath);
            throw;
        }
        return manifest;
    }

    /// <summary>
    /// <c>wtn export --stage all</c>: every finished stage of every seed folder under the experiment, each as
    /// <paramref name="outDir"/>/seed-S-STAGE<paramref name="extension"/> plus its manifest (<see cref="Export"/>).
    /// </summary>
    public IReadOnlyList<ExportManifest> ExportAll(string outDir, string extension = ".safetensors")
    {
        if (!ModelExport.WeightExtensions.Contains(extension) && !OnnxExport.IsOnnx(extension))
            throw new WtnException(
                $"--format: '{extension.TrimStart('.')}' is not one of {string.Join(", ", ModelExport.WeightExtensions.Append(".onnx").Select(e => e.TrimStart('.')))}"
            );
        var done = SeedsPresent()
            .SelectMany(seed => DeclaredStages(config).Select(stage => (seed, stage)))
            .Where(x => StageSummary.IsDone(Path.Combine(SeedDir(ExperimentDir, x.seed), x.stage)))
            .ToList();
        if (done.Count == 0)
            throw new WtnException(
                $"{ExperimentDir}: no stage has finished yet, so there is nothing to export; wtn report shows where the stages stand"
            );
        using var dataset = ExperimentDatasets.Load(config.Data, dataDir, log); // once for every stage
        return done.Select(x =>
                ExportStage(x.stage, x.seed, Path.Combine(outDir, $"seed-{x.seed}-{x.stage}{extension}"), dataset)
            )
            .ToList();
    }
}
