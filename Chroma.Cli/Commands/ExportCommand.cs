using System.CommandLine;
using System.Globalization;
using Chroma.Model;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>
/// `chroma export IN -o OUT`: a model or training checkpoint rewritten for shipping: the weights and
/// running statistics only (a checkpoint's optimizer state is dropped), optionally as float16, with
/// its metadata kept and extended (<c>--saturation</c>, <c>--set key=value</c>). This is how
/// models/chroma-default.safetensors was made from its training run.
/// </summary>
public static class ExportCommand
{
    /// <summary>Metadata that describes the weights' shapes; it is written from the configuration and cannot be set.</summary>
    static readonly HashSet<string> ConfigKeys = ["format", "format_version", "width", "classes", "fusion_kernel", "input_size"];

    public static Command Create()
    {
        var input = new Argument<string>("model") { Description = "A model or checkpoint .safetensors file." };
        var output = new Option<string>("--output", "-o") { Description = "Output .safetensors file.", Required = true };
        var half = new Option<bool>("--fp16") { Description = "Store weights as float16 (half the size)." };
        var saturation = new Option<float?>("--saturation") { Description = $"Default colour gain of the exported model (metadata '{ModelFile.SaturationKey}'; see `chroma colorize --saturation`)." };
        var set = new Option<string[]>("--set") { Description = "Add or replace a metadata entry, as key=value (repeatable).", AllowMultipleArgumentsPerToken = false };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing output file." };
        var average = new Option<string[]>("--average") { Description = "Average the weights (and batch-norm statistics) with these models or checkpoints of the same configuration, e.g. a run's last checkpoints (repeatable).", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("export", "Write a model (or a checkpoint's model) for shipping: optional float16, metadata, checkpoint averaging.") { input, output, half, saturation, set, overwrite, average };
        cmd.SetAction(r => Run(r.GetValue(input)!, r.GetValue(output)!, r.GetValue(half), r.GetValue(saturation), r.GetValue(set) ?? [], r.GetValue(overwrite), r.GetValue(average) ?? []));
        return cmd;
    }

    static int Run(string input, string output, bool half, float? saturation, string[] sets, bool overwrite, string[] average)
    {
        CliConventions.ExistingFile("model", input, "a .safetensors model file");
        foreach (var other in average) CliConventions.ExistingFile("--average", other, "a .safetensors model file");
        if (Path.GetFullPath(input) == Path.GetFullPath(output))
            throw new CliException($"{output}: the output would replace the input; choose another -o.");
        if (File.Exists(output) && !overwrite)
            throw new CliException($"{output}: already exists (pass --overwrite to replace it).");
        ColorizeCommand.CheckSaturation(saturation);
        var changes = new Dictionary<string, string>();
        foreach (var entry in sets)
        {
            int eq = entry.IndexOf('=');
            if (eq <= 0) throw new CliException($"--set '{entry}': expected key=value.");
            string key = entry[..eq];
            if (ConfigKeys.Contains(key)) throw new CliException($"--set '{key}': this entry follows from the weights and cannot be set.");
            if (key == ModelFile.SaturationKey) throw new CliException($"--set '{key}': use --saturation.");
            changes[key] = entry[(eq + 1)..];
        }
        if (saturation is { } gain) changes[ModelFile.SaturationKey] = gain.ToString("R", CultureInfo.InvariantCulture);

        using var network = ModelFile.Load(input, CpuDevice.Instance, out var metadata);
        var meta = new Dictionary<string, string>(metadata);
        if (average.Length > 0)
        {
            ModelFile.AverageWith(network, average);
            meta["averaged_with"] = string.Join(", ", average.Select(Path.GetFileName));
        }
        foreach (var (k, v) in changes) meta[k] = v;
        ModelFile.Save(network, output, half ? SafeTensorDType.F16 : SafeTensorDType.F32, meta, overwrite: true);
        AnsiConsole.MarkupLineInterpolated(
            $"wrote {output}: {network.Parameters.ParameterCount / 1e6:F2} M parameters as {(half ? "float16" : "float32")}, {new FileInfo(output).Length / 1e6:F1} MB, saturation {ModelFile.SaturationFromMetadata(meta, output).ToString("0.###", CultureInfo.InvariantCulture)}");
        return 0;
    }
}
