namespace WideThenNarrow.Method.Stages;

/// <summary>Baseline: the thin network from scratch with the standard recipe under a longer budget (its own section, standard_long).</summary>
[StageOrder(60)]
public sealed class StandardLongStage()
    : StandardStage("standard_long", c => c.StandardLong, "thin: standard, long budget", 60);
