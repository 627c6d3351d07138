using System.CommandLine;
using Chroma.Model;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>`chroma info [FILE]`: devices found, and a model file's configuration and size.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var file = new Argument<string?>("model") { Description = "A model .safetensors file.", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("info", "Show the devices Chroma can use and, for a model file, its configuration.") { file };
        cmd.SetAction(r =>
        {
            var devices = new Table().AddColumns("device", "status");
            devices.AddRow("cpu", Markup.Escape(CpuDevice.Instance.Name));
            foreach (var kind in new[] { DeviceKind.Cuda, DeviceKind.OpenCL })
            {
                var (gpu, why) = GpuDevice.TryOpen(kind);
                devices.AddRow(kind.ToString().ToLowerInvariant(), Markup.Escape(gpu?.Name ?? why));
                gpu?.Dispose();
            }
            using (var auto = Device.Open())
                devices.AddRow("auto", Markup.Escape($"{auto.Name} ({auto.SelectionReason})"));
            AnsiConsole.Write(devices);

            if (r.GetValue(file) is { } path)
            {
                var info = ModelFile.ReadInfo(path);
                var t = new Table().AddColumns("model", Markup.Escape(path));
                t.AddRow("parameters", $"{info.ParameterCount:N0} ({info.ParameterCount / 1e6:F2} M)");
                t.AddRow("tensors", info.TensorCount.ToString());
                foreach (var (k, v) in info.Metadata.OrderBy(kv => kv.Key))
                    t.AddRow(Markup.Escape(k), Markup.Escape(v.Length > 200 ? v[..200] + "..." : v));
                AnsiConsole.Write(t);
            }
            return 0;
        });
        return cmd;
    }
}
