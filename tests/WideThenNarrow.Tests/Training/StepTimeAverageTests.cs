using WideThenNarrow.Training;

namespace WideThenNarrow.Tests.Training;

public class StepTimeAverageTests
{
    [Fact]
    public void The_time_left_follows_a_long_mean_and_the_speed_a_short_one()
    {
        var t = new StepTimeAverage();
        t.Add(3.0);
        t.Add(1.0);
        Assert.Equal(2.0, t.Slow, 12); // the plain mean while there are fewer steps than the horizon
        Assert.Equal(2.8, t.Fast, 12);

        t = new StepTimeAverage();
        for (int i = 0; i < StepTimeAverage.Horizon; i++)
            t.Add(1.0);
        for (int i = 0; i < 30; i++)
            t.Add(2.0); // 30 steps twice as slow: another job took half the machine for a while
        // The speed shown has almost caught up; the time left has moved by a tenth of the change.
        Assert.InRange(t.Fast, 1.95, 1.96);
        Assert.Equal(2 - Math.Pow(1 - 1.0 / StepTimeAverage.Horizon, 30), t.Slow, 9);
        Assert.InRange(t.Slow, 1.09, 1.10);
        for (int i = 0; i < 10 * StepTimeAverage.Horizon; i++)
            t.Add(2.0); // a lasting change: it gets there
        Assert.InRange(t.Slow, 1.99, 2.0);
    }

    [Fact]
    public void A_step_that_spans_a_pause_counts_as_four_steps_at_most()
    {
        var t = new StepTimeAverage();
        for (int i = 0; i < 500; i++)
            t.Add(0.5);
        t.Add(180); // the process was stopped for three minutes in the middle of this step
        Assert.Equal(0.5 + (4 * 0.5 - 0.5) / StepTimeAverage.Horizon, t.Slow, 12); // not 0.5 + 179.5 / 300 = 1.1 s
        Assert.Equal(0.9 * 0.5 + 0.1 * 2.0, t.Fast, 12);
        // A real slowdown to twice the step time is no outlier: it passes whole.
        t = new StepTimeAverage();
        for (int i = 0; i < 500; i++)
            t.Add(0.5);
        t.Add(1.0);
        Assert.Equal(0.5 + 0.5 / StepTimeAverage.Horizon, t.Slow, 12);
        // The first steps (warm-up, a resume's first batches) are taken as they come.
        t = new StepTimeAverage();
        t.Add(10);
        t.Add(0.5);
        Assert.Equal(5.25, t.Slow, 12);
    }

    [Fact]
    public void An_evaluation_that_spans_a_pause_is_not_the_time_of_the_evaluations_left()
    {
        var t = new StepTimeAverage();
        Assert.Equal(0, t.Evaluation); // none yet
        t.AddEvaluation(60);
        t.AddEvaluation(330); // the process was stopped for four and a half minutes during this one
        Assert.Equal(60, t.Evaluation);
        t = new StepTimeAverage();
        t.AddEvaluation(330); // the first one spanned the pause: the next one puts it right
        Assert.Equal(330, t.Evaluation);
        t.AddEvaluation(61);
        Assert.Equal(61, t.Evaluation);
    }

    [Fact]
    public void The_time_left_counts_the_evaluations_to_come_as_the_trainer_runs_them()
    {
        Assert.Equal(30, Trainer.EvaluationsLeft(0, 30, 1)); // every epoch
        Assert.Equal(3, Trainer.EvaluationsLeft(27, 30, 1));
        Assert.Equal(1, Trainer.EvaluationsLeft(29, 30, 1)); // the last epoch in progress
        Assert.Equal(0, Trainer.EvaluationsLeft(30, 30, 1)); // done
        Assert.Equal(4, Trainer.EvaluationsLeft(0, 10, 3)); // epochs 3, 6, 9 and the last (10)
        Assert.Equal(1, Trainer.EvaluationsLeft(0, 10, 0)); // only the last
        Assert.Equal(0, Trainer.EvaluationsLeft(0, 10, -1)); // no evaluation data
    }
}
