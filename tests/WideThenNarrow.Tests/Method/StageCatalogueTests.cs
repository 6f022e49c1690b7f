using WideThenNarrow.Method.Stages;

namespace WideThenNarrow.Tests.Method;

public class StageCatalogueTests
{
    /// <summary>The run order the catalogue had when it listed its stages by hand: folders, plans and reports depend on it.</summary>
    [Fact]
    public void The_catalogue_finds_the_stages_in_their_run_order()
    {
        Assert.Equal(
            [
                "wide",
                "imitation",
                "finetune",
                "finetune_no_kd",
                "standard",
                "standard_long",
                "standard_matched",
                "kd",
                "kd_finetune_recipe",
                "fitnets",
                "deeper",
                "downstream_finetune",
                "downstream_finetune_no_kd",
                "downstream_standard",
                "downstream_standard_matched",
                "downstream_standard_long",
                "downstream_kd",
                "downstream_kd_finetune_recipe",
                "downstream_fitnets",
                "downstream_deeper",
            ],
            StageCatalogue.All.Select(s => s.Name)
        );
    }

    [Fact]
    public void Every_stage_class_is_in_the_catalogue()
    {
        var classes = typeof(ExperimentStage)
            .Assembly.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract && typeof(ExperimentStage).IsAssignableFrom(t))
            .ToList();
        Assert.NotEmpty(classes);
        foreach (var t in classes)
            Assert.True(StageCatalogue.All.Any(s => s.GetType() == t), $"{t.Name} is not in the catalogue");
        Assert.Equal(StageCatalogue.All.Count, StageCatalogue.All.Select(s => s.Name).Distinct().Count());
    }
}
