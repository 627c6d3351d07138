using System.CommandLine;
using Chroma.Training;
using Chroma.Model;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>
/// `chroma forward`: the raw network on tensors, for parity checks against other implementations
/// (tools/torch). Input `local` [N,1,H,W] (L*/100), optional `global` [N,1,224,224]; output `ab`
/// and `logits`. With --train: batch norm in training mode, input `target_ab` and `label` (int64),
/// output adds `loss` [1] and `grad.NAME` for every weight and bias.
/// </summary>
public static class ForwardCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model .safetensors file.", Required = true };
        var input = new Option<string>("--input") { Description = "Input tensors (.safetensors).", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Output tensors (.safetensors).", Required = true };
        var train = new Option<bool>("--train") { Description = "Batch norm in training mode; also compute the joint loss and all gradients." };
        var alpha = new Option<double>("--alpha") { Description = "Weight of the classification loss.", DefaultValueFactory = _ => 1.0 / 300 };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or opencl.", DefaultValueFactory = _ => "cpu" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing output file." };
        var cmd = new Command("forward", "Run the network on raw tensors (parity checks).") { model, input, output, train, alpha, device, overwrite };
        cmd.SetAction(r =>
        {
            string outPath = r.GetValue(output)!;
            if (File.Exists(outPath) && !r.GetValue(overwrite)) throw new CliException($"{outPath}: already exists (pass --overwrite to replace it).");
            using var dev = CliRunner.OpenDevice(r.GetValue(device));
            using var net = ModelFile.Load(r.GetValue(model)!, dev);
            string inPath = r.GetValue(input)!;
            var file = SafeTensorsFile.Read(inPath);
            var result = RawForward.Run(net, file, inPath, r.GetValue(train), (float)r.GetValue(alpha));
            SafeTensorsFile.Write(outPath, result, new Dictionary<string, string> { ["source"] = "chroma forward" }, SafeTensorDType.F32, overwrite: true);
            AnsiConsole.MarkupLineInterpolated($"wrote {result.Count} tensors to {outPath}");
            return 0;
        });
        return cmd;
    }
}
