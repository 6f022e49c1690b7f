using WideThenNarrow.Models;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Models;

// Counts live tensors process-wide, so it runs with no other test alongside.
[Collection("torch-rng")]
public class ForwardMemoryTests
{
    [Theory]
    [InlineData("cifar-resnet20", 1, 28)]
    [InlineData("resnet18", 3, 64)]
    [InlineData("resnet50", 3, 64)]
    public void A_forward_pass_disposes_its_intermediates_as_it_goes(string name, int channels, int size)
    {
        manual_seed(0);
        var model = ModelFactory.Create(new ModelConfig { Name = name, InputChannels = channels, Classes = 10, ImageSize = size }, CPU);
        model.eval();
        using var x = randn(2, channels, size, size);
        var input = new ModelInput(x);
        using (no_grad())
        using (NewDisposeScope())
        {
            long before = Tensor.TotalCount;
            using var logits = model.call(input);
            long alive = Tensor.TotalCount - before;
            // Only the logits outlive the pass (cifar-resnet20 left 74, resnet50 170, all alive until the
            // scope ended, before blocks disposed their intermediates).
            Assert.True(alive <= 2, $"{name}: {alive} tensors still alive after one forward pass");
            Assert.Equal(new long[] { 2, 10 }, logits.shape);
        }

        // Training mode: the same, and backward still works (autograd holds its own references).
        model.train();
        using (NewDisposeScope())
        {
            var logits = model.call(input);
            logits.sum().backward();
            Assert.All(model.parameters(), p => Assert.NotNull(p.grad));
        }
    }
}
