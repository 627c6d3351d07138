using System.CommandLine;
using Chroma.Model;
using System.Text.Json;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>`chroma info [FILE]`: devices found, and a model file's configuration and size.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var file = new Argument<string?>("model") { Description = "A model .safetensors file.", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print the devices and the model as one JSON object on stdout." };
        var cmd = new Command("info", "Show the devices Chroma can use and, for a model file, its configuration.") { file, json };
        cmd.SetAction(r =>
        {
            string? path = r.GetValue(file) is { } p ? CliConventions.ExistingFile("model", p, "a .safetensors model file") : null;
            var info = path is null ? null : ModelFile.ReadInfo(path);
            var devices = new List<(string Name, string Status)> { ("cpu", CpuDevice.Instance.Name) };
            foreach (var kind in new[] { DeviceKind.Cuda, DeviceKind.OpenCL })
            {
                var (gpu, why) = GpuDevice.TryOpen(kind);
                devices.Add((kind.ToString().ToLowerInvariant(), gpu?.Name ?? why));
                gpu?.Dispose();
            }
            using (var auto = Device.Open())
                devices.Add(("auto", $"{auto.Name} ({auto.SelectionReason})"));

            if (r.GetValue(json))
            {
                var result = new Dictionary<string, object?>
                {
                    ["devices"] = devices.Select(d => new { name = d.Name, status = d.Status }).ToList(),
                    ["model"] = info is null ? null : new
                    {
                        path, parameters = info.ParameterCount, tensors = info.TensorCount,
                        width = info.Config.Width, classes = info.Config.Classes, fusion_kernel = info.Config.FusionKernel, input_size = info.Config.InputSize,
                        metadata = info.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value),
                    },
                };
                Console.Out.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
                return CliConventions.Done;
            }
            var table = new Table().AddColumns("device", "status");
            foreach (var (name, status) in devices) table.AddRow(Markup.Escape(name), Markup.Escape(status));
            CliConsole.Out.Write(table);
            if (info is not null)
            {
                var t = new Table().AddColumns("model", Markup.Escape(path!));
                t.AddRow("parameters", $"{info.ParameterCount:N0} ({info.ParameterCount / 1e6:F2} M)");
                t.AddRow("tensors", info.TensorCount.ToString());
                foreach (var (k, v) in info.Metadata.OrderBy(kv => kv.Key))
                    t.AddRow(Markup.Escape(k), Markup.Escape(v.Length > 200 ? v[..200] + "..." : v));
                CliConsole.Out.Write(t);
            }
            return CliConventions.Done;
        });
        return cmd;
    }
}
