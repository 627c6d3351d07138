using System.CommandLine;
using Chroma.Model;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>`chroma init`: a randomly initialised model file (He initialization, seeded).</summary>
public static class InitCommand
{
    public static Command Create()
    {
        var width = new Option<double>("--width") { Description = "Channel width multiplier (1.0 = the paper's model).", DefaultValueFactory = _ => 1.0 };
        var classes = new Option<int>("--classes") { Description = "Number of scene classes.", DefaultValueFactory = _ => 205 };
        var fusion = new Option<int>("--fusion-kernel") { Description = "Fusion convolution kernel: 1 (paper) or 3 (authors' release).", DefaultValueFactory = _ => 1 };
        var seed = new Option<int>("--seed") { Description = "Random seed of the initialization.", DefaultValueFactory = _ => 0 };
        var half = new Option<bool>("--fp16") { Description = "Store weights as float16." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing output file." };
        var output = new Option<string>("--output", "-o") { Description = "Output .safetensors file.", Required = true };
        var cmd = new Command("init", "Write a randomly initialised model.") { width, classes, fusion, seed, half, overwrite, output };
        cmd.SetAction(r =>
        {
            var config = new ColorizerConfig(r.GetValue(width), r.GetValue(classes), r.GetValue(fusion));
            config.Validate();
            string path = r.GetValue(output)!;
            if (File.Exists(path) && !r.GetValue(overwrite))
                throw new CliException($"{path}: already exists (pass --overwrite to replace it).");
            using var network = new ColorizationNetwork(config, CpuDevice.Instance, r.GetValue(seed));
            ModelFile.Save(network, path, r.GetValue(half) ? SafeTensorDType.F16 : SafeTensorDType.F32, overwrite: true);
            AnsiConsole.MarkupLineInterpolated($"wrote {path}: width {config.Width}, {config.Classes} classes, {network.Parameters.ParameterCount / 1e6:F2} M parameters");
            return 0;
        });
        return cmd;
    }
}
