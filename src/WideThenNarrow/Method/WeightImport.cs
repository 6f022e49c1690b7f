using TorchSharp.PyBridge;
using WideThenNarrow.Models;

namespace WideThenNarrow.Method;

/// <summary>Loads a trained network exported by PyTorch: a .pth/.pt state_dict or a .safetensors file, names as torchvision's.</summary>
public static class WeightImport
{
    public static void Load(StagedModel model, string file)
    {
        if (!File.Exists(file)) throw new WtnException($"wide.import: {file} does not exist");
        try
        {
            switch (Path.GetExtension(file).ToLowerInvariant())
            {
                case ".safetensors": model.load_safetensors(file); break;
                case ".pth" or ".pt" or ".bin": model.load_py(file); break;
                default: throw new WtnException($"wide.import: {file}: expected a .pth, .pt, .bin or .safetensors file");
            }
        }
        catch (Exception e) when (e is not WtnException)
        {
            throw new WtnException($"wide.import: {file} does not fit models.wide ({e.Message.Split('\n')[0]})", e);
        }
    }
}
