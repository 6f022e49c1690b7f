using System.Globalization;
using System.Text;
using System.Text.Json;
using WideThenNarrow.Method;

namespace WideThenNarrow.Reporting;

/// <summary>Writes results.json, report.md, accuracy.png and imitation.png into the experiment folder.</summary>
public static class ExperimentReport
{
    /// <summary>Writes the four files, each to a temp name and renamed, so a reader (or a second writer) never sees half a file.</summary>
    public static void Write(ExperimentResult r, string dir)
    {
        Directory.CreateDirectory(dir);
        Atomic(Path.Combine(dir, "results.json"), tmp =>
            File.WriteAllText(tmp, JsonSerializer.Serialize(r, StageContext.Json))
        );
        Atomic(Path.Combine(dir, "accuracy.png"), tmp => ExperimentPlots.Accuracy(r, tmp));
        bool imitationPlot = false,
            computePlot = false,
            accuracyComputePlot = false;
        Atomic(Path.Combine(dir, "imitation.png"), tmp => imitationPlot = ExperimentPlots.Imitation(r, tmp));
        Atomic(Path.Combine(dir, MaskedLmComputePlot), tmp => computePlot = ExperimentPlots.MaskedLmCompute(r, tmp));
        Atomic(Path.Combine(dir, ComputePlot), tmp => accuracyComputePlot = ExperimentPlots.Compute(r, tmp));
        Atomic(Path.Combine(dir, "report.md"), tmp =>
            File.WriteAllText(tmp, Markdown(r, imitationPlot, computePlot, accuracyComputePlot))
        );
    }

    /// <summary>Test top-1 against training compute, one point per arm with its spread over seeds.</summary>
    public const string ComputePlot = "compute.png";

    /// <summary>Masked-LM experiments: held-out masked-token top-1 against training compute.</summary>
    public const string MaskedLmComputePlot = "mlm-compute.png";

    /// <summary>Whether <paramref name="dir"/> holds the final report of <paramref name="seeds"/> seeds (results.json of a run whose every stage had finished).</summary>
    public static bool HasFinal(string dir, int seeds)
    {
        var path = Path.Combine(dir, "results.json");
        if (!File.Exists(path))
            return false;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            return root.TryGetProperty("partial", out var p)
                && p.ValueKind == JsonValueKind.False
                && root.TryGetProperty("seeds", out var n)
                && n.TryGetInt32(out var done)
                && done == seeds;
        }
        catch (JsonException)
        {
            return false;
        } // a damaged results.json is rewritten
    }

    static void Atomic(string path, Action<string> write) =>
        WriteFailure.Replace(
            path,
            write,
            "the stages' results are kept: free space and run `wtn report` (or the same `wtn run`) again"
        );

    public static string Markdown(
        ExperimentResult r,
        bool imitationPlot,
        bool computePlot = false,
        bool accuracyComputePlot = false
    )
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"# {r.Experiment}");
        sb.AppendLine();
        sb.AppendLine(
            string.Create(
                inv,
                $"{r.Dataset}: {r.TrainExamples} training, {r.ValidationExamples} validation and {r.TestExamples} test examples; {r.Seeds} seed(s). "
            )
                + "Top-1 of each finished network, mean ± sample standard deviation over seeds: on the validation split (every choice "
                + "during training was made on it) and on the test split (scored once per network). Does the thin network trained by the method "
                + "beat the thin and the deeper networks trained the standard way, and at what cost?"
        );
        if (r.Partial)
        {
            sb.AppendLine();
            sb.AppendLine(
                string.Create(
                    inv,
                    $"**Interim report** ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC): {r.StagesDone} of {r.Status.Count} stages done; "
                )
                    + "rows appear as their stages finish, and [Progress](#progress) shows the rest. `wtn run` with the same file resumes the run."
            );
        }
        sb.AppendLine();
        if (r.Methods.Count == 0)
        {
            sb.AppendLine(
                "No method has finished yet: rows appear when the last stage of a method is done for a seed."
            );
            Paragraph(sb, MachinesLine(r));
        }
        else
        {
            sb.AppendLine(
                "| method | parameters | MACs | val top-1 | test top-1 | training compute | + wide stage | wall time per stage | latency b=1 | latency b=64 |"
            );
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|");
            foreach (var m in r.Methods)
                sb.AppendLine(
                    inv,
                    $"| {m.Method}{SeedsNote(m, r.Seeds)} | {Count(m.Cost.Parameters)} | {(m.Cost.Macs is { } macs ? Count(macs) : "n/a")} | {Pct(m.ValTop1)} | {Pct(m.TestTop1)} | {Compute(m.TrainMacs)} | {Compute(m.WideMacs)} | {Stages(m)} | {m.Cost.LatencyMs1:F2} ms | {m.Cost.LatencyMs64:F1} ms |"
                );
            if (r.Comparisons.Count > 0)
            {
                sb.AppendLine();
                sb.AppendLine(
                    "The method's test top-1 minus each other way's, in points, paired seed by seed (mean ± sample standard deviation of the differences); "
                        + "p of a paired t-test over the seeds (two or more) and of McNemar's test on the test examples (discordant pairs summed over the seeds); "
                        + "McNemar's test asks whether these networks differ on these test examples and cannot see how much training runs vary, so with several seeds its p is optimistic; "
                        + "McNemar per pair: how many pairs, each tested on its own, the method wins and loses at p < 0.05; "
                        + "the verdict follows the t-test when there are several seeds, else McNemar's test, and says tie unless p < 0.05:"
                );
                sb.AppendLine();
                sb.AppendLine(
                    "| method | against | difference | method higher in | p (t-test) | p (McNemar) | McNemar per pair | verdict |"
                );
                sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---|");
                foreach (var c in r.Comparisons)
                    sb.AppendLine(
                        inv,
                        $"| {c.Method} | {c.Against} | {Points(c.Difference)} | {c.SeedsBetter} of {c.Difference.N} {c.PairedBy}(s) | {P(c.TTest?.P)} | {P(c.McNemar?.P)} | {PerPair(c)} | {c.Verdict} |"
                    );
                if (r.Comparisons.Any(c => c.PairedBy != "seed"))
                {
                    sb.AppendLine();
                    sb.AppendLine(
                        "Fine-tuned rows pair by experiment seed and fine-tuning seed: both encoders fine-tuned with the same data order and, "
                            + "where the shapes agree, the same fresh pooler and classifier, each at the learning rate chosen for it. The fine-tuning seeds "
                            + "of an experiment seed share one pretrained encoder, so their spread and the t-test over them measure the fine-tuning's variation, not the pretraining's."
                    );
                }
            }
            if (r.WideImport is { } import)
            {
                sb.AppendLine();
                sb.AppendLine(
                    $"The wide network was imported (`wide.import`: {import}), not trained in this run: every seed's imitation and distillation "
                        + "use this one network, so the spread over seeds is the students' alone, and its training compute is in no row's "
                        + "\"+ wide stage\" column (count it from the run that trained it)."
                );
            }
            Paragraph(sb, Reused(r));
            Paragraph(sb, MachinesLine(r));
            sb.AppendLine();
            sb.AppendLine(
                "Architectures: "
                    + string.Join("; ", r.Methods.Select(m => $"{m.Model} = {m.Cost.Architecture}").Distinct())
                    + "."
            );
            var threads = string.Join(" or ", r.Methods.Select(m => m.Cost.Threads).Distinct().Order());
            var engines = string.Join(
                " or ",
                r.Methods.Select(m =>
                        m.Cost.Engine == Serving.InferenceBench.Onnx
                            ? "ONNX Runtime (its exported graph, as served)"
                            : "TorchSharp eager mode"
                    )
                    .Distinct()
            );
            sb.AppendLine(
                $"Latency: median forward pass of the final network in eval mode on {engines}, on {threads} thread(s) of this machine."
                    + (
                        r.Methods.Any(m => m.Cost.Contended)
                            ? " Measured while another wtn process of this run was training, so slower than alone: the run's final report measures it again."
                            : ""
                    )
            );
            sb.AppendLine();
            sb.AppendLine(
                "Any finished stage's network as PyTorch weights plus a manifest that rebuilds it: `wtn export FOLDER --stage STAGE --seed S -o NAME.safetensors` (or `-o NAME.onnx` for an ONNX graph as well), FOLDER being this report's folder (`finetune` is the method's thin network)."
            );
            sb.AppendLine();
            sb.AppendLine("![test accuracy per epoch](accuracy.png)");
            if (accuracyComputePlot)
            {
                sb.AppendLine();
                sb.AppendLine(
                    $"![test top-1 against training compute, mean ± sd over seeds; hollow: with the wide stage]({ComputePlot})"
                );
            }
            var pretrained = r.Methods.Where(m => m.Perplexity is not null).ToList();
            if (pretrained.Count > 0)
            {
                sb.AppendLine();
                sb.AppendLine("## Masked-LM pretraining");
                sb.AppendLine();
                sb.AppendLine(
                    "Held-out pretraining text (never trained on), its masked tokens scored once per finished encoder:"
                );
                sb.AppendLine();
                sb.AppendLine("| method | masked-token top-1 | perplexity | training compute | + wide stage |");
                sb.AppendLine("|---|---:|---:|---:|---:|");
                foreach (var m in pretrained)
                    sb.AppendLine(
                        inv,
                        $"| {m.Method}{SeedsNote(m, r.Seeds)} | {Pct(m.TestTop1)} | {(m.Perplexity!.N > 1 ? $"{m.Perplexity.Mean:F1} ± {m.Perplexity.Spread:F1}" : $"{m.Perplexity.Mean:F1}")} | {Compute(m.TrainMacs)} | {Compute(m.WideMacs)} |"
                    );
                if (computePlot)
                {
                    sb.AppendLine();
                    sb.AppendLine($"![masked-token top-1 against training compute]({MaskedLmComputePlot})");
                }
            }
        }
        var fineTuned = r.Methods.Where(m => m.Downstream is not null).ToList();
        if (fineTuned.Count > 0)
            Downstream(sb, fineTuned, r.Seeds);
        if (imitationPlot)
        {
            sb.AppendLine();
            sb.AppendLine("## Stage 2: layerwise imitation");
            sb.AppendLine();
            sb.AppendLine("![imitation loss per block](imitation.png)");
            sb.AppendLine();
            var first = r.PerSeed.Select(s => s.GetValueOrDefault("imitation")).FirstOrDefault(s => s is not null);
            if (first?.Blocks is { } blocks)
            {
                sb.AppendLine("| unit | point | wide point | loss at start | loss at end | seconds |");
                sb.AppendLine("|---:|---|---:|---:|---:|---:|");
                foreach (var b in blocks)
                    sb.AppendLine(
                        inv,
                        $"| {b.Block} | {b.Point} | {b.WidePoint} | {b.FirstLoss:G4} | {b.LastLoss:G4} | {b.Seconds:F1} |"
                    );
                sb.AppendLine();
                sb.AppendLine("(first seed)");
            }
            if (first?.EmbeddingsCopied is { Count: > 0 } embeddings)
                sb.AppendLine()
                    .AppendLine(
                        $"Copied from the wide network instead of imitated (equal shapes): the embeddings' {string.Join(", ", embeddings)}."
                    );
            if (first?.HeadCopied is { } copied)
                sb.AppendLine()
                    .AppendLine(
                        copied
                            ? "The head was copied from the wide network."
                            : "The head could not be copied (shapes differ); stage 3 trains it."
                    );
            if (first?.Adapters is { Count: > 0 } fates)
            {
                sb.AppendLine();
                sb.AppendLine(
                    "Adapter pairs (full widening): "
                        + string.Join(
                            "; ",
                            fates.Select(f =>
                                $"point {f.Point} ({f.Name}): {f.Kind.ToString().ToLowerInvariant()}, {f.Reason}"
                            )
                        )
                        + "."
                );
            }
        }
        if (r.Partial)
        {
            sb.AppendLine();
            sb.AppendLine("## Progress");
            sb.AppendLine();
            sb.AppendLine("| seed | stage | state | detail |");
            sb.AppendLine("|---:|---|---|---|");
            foreach (var x in r.Status)
                sb.AppendLine(
                    inv,
                    $"| {x.Seed} | {x.Stage} | {x.State.ToString().ToLowerInvariant()} | {x.Describe()} |"
                );
            sb.AppendLine();
            sb.AppendLine(
                r.Left is { } left
                    ? $"Left: {left.Describe()}"
                    : "Left: not estimated until a stage has recorded its speed or finished (the estimate prices the stages' work at the paces of those started, else finished)."
            );
            if (r.Methods.Count == 0 && r.Status.Any(x => x.State == StageState.Started && x.Curve is not null))
            {
                // Shown with the methods' table once one has finished; until then, the started stages' curves are all it has.
                sb.AppendLine();
                sb.AppendLine("![test accuracy per epoch so far](accuracy.png)");
            }
        }
        return sb.ToString();
    }

    /// <summary>A paragraph of its own (a blank line, then the text), or nothing when there is no text.</summary>
    static void Paragraph(StringBuilder sb, string? text)
    {
        if (text is null)
            return;
        sb.AppendLine();
        sb.AppendLine(text);
    }

    /// <summary>Where the finished stages trained: one machine, or each of several (their digits may differ).</summary>
    internal static string? MachinesLine(ExperimentResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        var machines = r.Machines;
        if (machines.Count == 0 && r.StagesWithoutMachines == 0)
            return null;
        static string Count(int n, string what) => n == 1 ? $"1 {what}" : $"{n} {what}s";
        string Use(MachineStages m) =>
            string.Create(
                inv,
                $"{m.Machine.Describe()} ({Count(m.Stages, "stage")}, {Count(m.Sessions, "training session")})"
            );
        var text = machines.Count switch
        {
            0 => "",
            1 => $"Trained on one machine: {Use(machines[0])}.",
            _ =>
                $"Trained on {machines.Count} machines or thread counts (the same settings can give other digits on each: "
                    + $"docs/training.md, \"Runs longer than a machine's life\"): {string.Join("; ", machines.Select(Use))}.",
        };
        if (r.StagesWithoutMachines > 0)
            text +=
                (text.Length > 0 ? " " : "")
                + $"{Count(r.StagesWithoutMachines, "stage")} finished before wtn recorded machines (no record).";
        return text;
    }

    /// <summary>
    /// "Reused from earlier runs (same settings, not trained in this one): seed 0 wide, imitation from /runs/A/seed-0."
    /// (<c>wtn run --reuse-from</c>), or null when every done stage was trained in this run.
    /// </summary>
    internal static string? Reused(ExperimentResult r)
    {
        var groups = r
            .Status.Where(x => x.State == StageState.Done && x.ReusedFrom is not null)
            .GroupBy(x => (x.Seed, From: Path.GetDirectoryName(x.ReusedFrom!) ?? x.ReusedFrom!))
            .Select(g =>
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"seed {g.Key.Seed} {string.Join(", ", g.Select(x => x.Stage))} from {g.Key.From}"
                )
            )
            .ToList();
        return groups.Count == 0
            ? null
            : $"Reused from earlier runs (same settings, not trained in this one): {string.Join("; ", groups)}.";
    }

    /// <summary>The downstream rows' fine-tunings: the lrs tried on validation, the one chosen, and the chosen lr's test top-1 over the fine-tuning seeds.</summary>
    static void Downstream(StringBuilder sb, IReadOnlyList<MethodRow> rows, int seeds)
    {
        var inv = CultureInfo.InvariantCulture;
        var lrs = rows.SelectMany(m => m.Downstream!.Lrs.Select(t => t.Lr)).Distinct().Order().ToList();
        int fineTuneSeeds = rows.Max(m => m.Downstream!.FineTuneSeeds);
        sb.AppendLine();
        sb.AppendLine("## Downstream fine-tuning");
        sb.AppendLine();
        sb.AppendLine(
            lrs.Count > 1
                ? string.Create(
                    inv,
                    $"Each pretrained encoder is fine-tuned at every learning rate of the grid on fine-tuning seed 0; the one with the best validation top-1 "
                )
                    + "(its best epoch's; ties go to the smaller learning rate) is chosen for that encoder"
                    + (
                        fineTuneSeeds > 1
                            ? string.Create(inv, $", and fine-tuning seeds 1 to {fineTuneSeeds - 1} run at it only")
                            : ""
                    )
                    + ". The test split is scored only for the chosen learning rate's networks: the others have validation numbers alone."
                : string.Create(
                    inv,
                    $"Each pretrained encoder is fine-tuned with {fineTuneSeeds} fine-tuning seeds at one learning rate."
                )
        );
        sb.AppendLine(
            "Each fine-tuning seed initialises the fresh pooler and classifier and orders the training data with its own generator seed, derived from the "
                + "experiment seed and the fine-tuning seed alone (the same for every encoder). Test top-1: mean ± sample standard deviation over the chosen "
                + "learning rate's fine-tuning seeds"
                + (seeds > 1 ? " of every experiment seed" : "")
                + "; validation top-1 per learning rate: fine-tuning seed 0's"
                + (seeds > 1 ? ", mean ± sample standard deviation over experiment seeds" : "")
                + ", the chosen one in bold."
        );
        sb.AppendLine();
        sb.AppendLine(
            "| method | chosen lr | "
                + string.Join(" | ", lrs.Select(lr => $"val top-1 at lr {Lr(lr)}"))
                + " | fine-tunings tested | test top-1 |"
        );
        sb.AppendLine("|---|---:|" + string.Concat(lrs.Select(_ => "---:|")) + "---:|---:|");
        foreach (var m in rows)
        {
            var d = m.Downstream!;
            var chosen = d.ChosenLrs.Distinct().Order().ToList();
            string Chosen() =>
                chosen.Count == 1
                    ? Lr(chosen[0])
                    : string.Join(
                        ", ",
                        chosen.Select(lr =>
                            d.ChosenLrs.Count(x => x == lr) is var n
                                ? string.Create(inv, $"{Lr(lr)} ({n} seed{(n == 1 ? "" : "s")})")
                                : ""
                        )
                    );
            string Val(double lr) =>
                d.Lrs.FirstOrDefault(t => t.Lr == lr) is { } t
                    ? (t.Chosen > 0 ? $"**{Pct(t.ValBestTop1)}**" : Pct(t.ValBestTop1))
                    : "";
            sb.AppendLine(
                inv,
                $"| {m.Method}{SeedsNote(m, seeds)} | {Chosen()} | {string.Join(" | ", lrs.Select(Val))} | {m.TestTop1?.N ?? 0} | {Pct(m.TestTop1)} |"
            );
        }
    }

    /// <summary>A learning rate as the experiment file would write it: "0.0002", "1E-05".</summary>
    public static string Lr(double lr) => lr.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>" (2 of 3 seeds)" on a row whose last stage has not finished for every seed yet.</summary>
    public static string SeedsNote(MethodRow m, int seeds) =>
        m.SeedsDone < seeds ? $" ({m.SeedsDone} of {seeds} seeds)" : "";

    static string Stages(MethodRow m) => string.Join(" + ", m.Stages.Select(s => $"{s} {Seconds(m.StageSeconds[s])}"));

    static string Seconds(Stat? s) =>
        s is null ? "?"
        : s.Mean >= 5400 ? StageStatus.Duration(s.Mean) // hours, as the Progress table says them
        : s.Mean >= 600 ? $"{s.Mean / 60:F1} min"
        : $"{s.Mean:F0} s";

    /// <summary>A difference of fractions in signed points: "+0.40", or "+0.40 ± 0.12" over several seeds.</summary>
    public static string Points(Stat d) =>
        string.Create(
            CultureInfo.InvariantCulture,
            $"{100 * d.Mean:+0.00;-0.00;0.00}{(d.N > 1 ? $" ± {100 * d.Spread:F2}" : "")}"
        );

    public static string Pct(Stat? s) =>
        s is null ? "n/a"
        : s.N > 1 ? $"{100 * s.Mean:F2} ± {100 * s.Spread:F2}%"
        : $"{100 * s.Mean:F2}%";

    /// <summary>"won 2, lost 0 of 3": the pairs McNemar's test separates at p &lt; 0.05, each pair tested on its own.</summary>
    static string PerPair(Comparison c) =>
        c.McNemarEach is { } each ? $"won {c.McNemarPairsAhead}, lost {c.McNemarPairsBehind} of {each.Count}" : "n/a";

    static string P(double? p) =>
        p is { } v && !double.IsNaN(v)
            ? (v < 0.001 ? "< 0.001" : v.ToString("F3", CultureInfo.InvariantCulture))
            : "n/a";

    /// <summary>Training multiply-accumulates, e.g. "3.41 PMAC" (mean over seeds; they hardly differ).</summary>
    public static string Compute(Stat? macs) => macs is null ? "n/a" : Macs((long)Math.Min(macs.Mean, long.MaxValue));

    /// <summary>A count of multiply-accumulates with its unit, e.g. "3.41 TMAC", "0 MAC".</summary>
    public static string Macs(long n) => Count(n) is var c && char.IsDigit(c[^1]) ? c + " MAC" : c + "MAC";

    public static string Count(long n) =>
        n >= 1_000_000_000_000_000 ? $"{n / 1e15:F2} P"
        : n >= 1_000_000_000_000 ? $"{n / 1e12:F2} T"
        : n >= 1_000_000_000 ? $"{n / 1e9:F2} G"
        : n >= 1_000_000 ? $"{n / 1e6:F2} M"
        : n >= 1_000 ? $"{n / 1e3:F1} k"
        : n.ToString(CultureInfo.InvariantCulture);
}
