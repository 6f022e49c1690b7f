using System.Text.Json;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using WideThenNarrow.Export;
using WideThenNarrow.Models;
using WideThenNarrow.Serving;
using WideThenNarrow.Tests.Cli;
using WideThenNarrow.Tests.Export;
using WideThenNarrow.Tests.Text;
using static TorchSharp.torch;

namespace WideThenNarrow.Tests.Serving;

/// <summary><c>wtn predict</c>: files prepared as training prepared its batches, on both engines.</summary>
public class PredictorTests
{
    [Fact]
    public void Image_files_give_the_probabilities_of_the_training_batches_on_both_engines()
    {
        var dir = TestData.NewTempFolder("predict-images");
        try
        {
            using var scope = NewDisposeScope();
            var config = new ModelConfig { Name = "cifar-resnet20", InputChannels = 1 };
            using var model = ModelFactory.Create(config);
            OnnxExportTests.Train(model, 3);
            using var batch = OnnxExportTests.Images(5);
            OnnxExport.Write(
                model,
                config,
                Path.Combine(dir, "thin.onnx"),
                ModelExport.ImageInput(TestData.FashionMnist),
                batch.Input
            );

            // The first five test images as PNG files, as a user would have them.
            var pictures = Path.Combine(dir, "pictures");
            Directory.CreateDirectory(pictures);
            var pixels = TestData.FashionMnist.Test.Images.narrow(0, 0, 5).contiguous().data<byte>().ToArray();
            for (int i = 0; i < 5; i++)
            {
                using var image = new Image<Rgb24>(28, 28);
                for (int p = 0; p < 28 * 28; p++)
                    image[p % 28, p / 28] = new Rgb24(pixels[i * 784 + p], pixels[i * 784 + p], pixels[i * 784 + p]);
                image.SaveAsPng(Path.Combine(pictures, $"{i}.png"));
            }
            Tensor expected;
            using (no_grad())
                expected = model.call(batch.Input).softmax(-1);

            foreach (var engine in new[] { InferenceEngine.Onnx, InferenceEngine.Torch })
            {
                using var predictor = Predictor.Open(Path.Combine(dir, "thin.json"), engine);
                var results = predictor.PredictImages(Predictor.ImageFiles([pictures]), topK: 10);
                Assert.Equal(5, results.Count);
                for (int i = 0; i < 5; i++)
                {
                    Assert.Equal(Path.Combine(pictures, $"{i}.png"), results[i].Input);
                    Assert.Equal(
                        TestData.FashionMnist.Classes,
                        results[i].Top.OrderBy(c => c.Label).Select(c => c.Name)
                    );
                    foreach (var c in results[i].Top)
                        Assert.Equal(expected[i, c.Label].item<float>(), c.Probability, 1e-4);
                    Assert.True(
                        results[i]
                            .Top.Zip(results[i].Top.Skip(1))
                            .All(p => p.First.Probability >= p.Second.Probability),
                        "best first"
                    );
                }
            }

            // The CLI: ONNX Runtime by default when the export has a graph.
            var (code, stdout, stderr) = WtnProcess.Run(
                $"--threads 1 predict \"{Path.Combine(dir, "thin.json")}\" \"{Path.Combine(pictures, "0.png")}\" --top 2 --json"
            );
            Assert.True(code == 0, stderr);
            var json = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal("onnx", json.GetProperty("engine").GetString());
            var top = json.GetProperty("predictions")[0].GetProperty("top");
            Assert.Equal(2, top.GetArrayLength());
            Assert.Equal(expected[0].argmax().item<long>(), top[0].GetProperty("label").GetInt64());
            (code, _, stderr) = WtnProcess.Run(
                $"--threads 1 predict \"{Path.Combine(dir, "thin.json")}\" one review --engine torch"
            );
            Assert.Equal(2, code);
            Assert.Contains("one: no such image file or folder", stderr);
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }

    [Fact]
    public void Texts_are_tokenised_as_in_fine_tuning_on_both_engines()
    {
        var dir = TestData.NewTempFolder("predict-text");
        try
        {
            using var scope = NewDisposeScope();
            var vocab = Path.Combine(dir, "vocab.txt");
            File.WriteAllLines(vocab, TextFixture.Vocab);
            var config = new ModelConfig
            {
                Name = "bert-tiny",
                Vocab = TextFixture.Tokenizer.VocabSize,
                MaxPositions = 64,
            };
            using var model = ModelFactory.Create(config);
            model.eval();
            using var batch = OnnxExportTests.Text(4, 24); // the held-out texts' first four, [CLS] ... [SEP], truncated to 24
            var input = new ExportInput
            {
                Kind = "tokens",
                Vocab = vocab,
                MaxLength = 24,
                Classes = ["negative", "positive"],
            };
            OnnxExport.Write(model, config, Path.Combine(dir, "bert.onnx"), input, batch.Input);
            Tensor expected;
            using (no_grad())
                expected = model.call(batch.Input).softmax(-1);
            foreach (var engine in new[] { InferenceEngine.Onnx, InferenceEngine.Torch })
            {
                using var predictor = Predictor.Open(Path.Combine(dir, "bert.json"), engine);
                var results = predictor.PredictTexts(TextFixture.HeldOutTexts.Take(4).ToList(), topK: 2);
                for (int i = 0; i < 4; i++)
                    foreach (var c in results[i].Top)
                        Assert.Equal(expected[i, c.Label].item<float>(), c.Probability, 1e-4);
                Assert.Throws<WtnException>(() => predictor.PredictImages(["x.png"], 1));
            }
        }
        finally
        {
            TestData.DeleteFolder(dir);
        }
    }
}
