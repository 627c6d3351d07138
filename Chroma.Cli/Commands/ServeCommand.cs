using System.CommandLine;
using System.Runtime.InteropServices;
using Chroma.Cli.Serve;
using Chroma.Model;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>`chroma serve`: a local web page and HTTP API for colorizing photos (docs/SERVE.md).</summary>
public static class ServeCommand
{
    /// <summary>
    /// Workers when --workers is not given: 1 on the CPU path, whose kernels already split each photo
    /// over every core (a second worker would split the same cores and double the memory); 2 on a GPU,
    /// so that one worker decodes, resizes and encodes on the host while the other's network runs.
    /// </summary>
    public static int DefaultWorkers(Device device) => device is CpuDevice ? 1 : 2;

    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "TCP port; 0 takes any free one (the URL printed says which).", DefaultValueFactory = _ => ServeSettings.DefaultPort };
        var host = new Option<string>("--host") { Description = "Address to listen on: 127.0.0.1 (this machine only), ::1, localhost; 0.0.0.0, :: or an interface's address let other machines in.", DefaultValueFactory = _ => "127.0.0.1" };
        var model = new Option<string?>("--model") { Description = "Model .safetensors file (default: the shipped model)." };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda, opencl, cuda:N or opencl:N.", DefaultValueFactory = _ => "auto" };
        var workers = new Option<int?>("--workers") { Description = "Photos colorized at once, each worker with its own copy of the model (default: 1 on the CPU, 2 on a GPU)." };
        var queue = new Option<int>("--queue") { Description = "Requests that may wait for a worker; further ones are answered 503 with Retry-After.", DefaultValueFactory = _ => ServeSettings.DefaultQueue };
        var maxUpload = new Option<int>("--max-upload-mb") { Description = "Largest request body in MiB (413 above).", DefaultValueFactory = _ => ServeSettings.DefaultMaxUploadMb };
        var maxPixels = new Option<int>("--max-pixels") { Description = "Largest working size of the local path, in pixels, as for colorize (a request's max_pixels may ask for less).", DefaultValueFactory = _ => Colorizer.DefaultMaxWorkingPixels };
        var maxImagePixels = new Option<long>("--max-image-pixels") { Description = "Largest photo accepted, in pixels (413 above; a worker needs about 50 bytes per pixel).", DefaultValueFactory = _ => ServeSettings.DefaultMaxImagePixels };
        var timeout = new Option<double>("--timeout") { Description = "Seconds a request may wait and be colorized before it is answered 504.", DefaultValueFactory = _ => ServeSettings.DefaultTimeoutSeconds };
        var cmd = new Command("serve", "Serve a web page and an HTTP API that colorize photos (POST /api/colorize, GET /api/health; docs/SERVE.md). Ctrl-C stops it.")
        {
            port, host, model, device, workers, queue, maxUpload, maxPixels, maxImagePixels, timeout,
        };
        cmd.SetAction(r => Run(new ServeSettings
        {
            Port = r.GetValue(port),
            Host = r.GetValue(host)!,
            Queue = r.GetValue(queue),
            MaxUploadBytes = (long)r.GetValue(maxUpload) << 20,
            MaxPixels = r.GetValue(maxPixels),
            MaxImagePixels = r.GetValue(maxImagePixels),
            Timeout = TimeSpan.FromSeconds(r.GetValue(timeout)),
        }, r.GetValue(model), r.GetValue(device), r.GetValue(workers), r.GetValue(maxUpload), r.GetValue(timeout)));
        return cmd;
    }

    static void Check(ServeSettings settings, int? workers, int maxUploadMb, double timeoutSeconds)
    {
        if (settings.Port is < 0 or > 65535) throw new CliException($"--port must be between 0 and 65535 (0: any free port).");
        if (workers is < 1 or > 64) throw new CliException("--workers must be between 1 and 64.");
        if (settings.Queue is < 1 or > 100_000) throw new CliException("--queue must be between 1 and 100000.");
        if (maxUploadMb is < 1 or > 2047) throw new CliException("--max-upload-mb must be between 1 and 2047.");
        ColorizeCommand.CheckOptions(settings.MaxPixels, saturation: null);
        if (settings.MaxImagePixels < 64 * 64 || settings.MaxImagePixels > ImageFile.MaxMegapixels * 1_000_000L)
            throw new CliException($"--max-image-pixels must be between {64 * 64} and {ImageFile.MaxMegapixels * 1_000_000L} ({ImageFile.MaxMegapixels} megapixels, the most ImageFile decodes).");
        if (!(timeoutSeconds > 0 && timeoutSeconds <= 86_400)) throw new CliException("--timeout must be more than 0 and at most 86400 seconds.");
    }

    static int Run(ServeSettings settings, string? modelPath, string? deviceName, int? workers, int maxUploadMb, double timeoutSeconds)
    {
        Check(settings, workers, maxUploadMb, timeoutSeconds);
        ColorizeServer.ParseHost(settings.Host); // before any model is loaded (the server parses it again to bind)

        // One colorizer per worker, each on its own device (a GPU context each; the CPU device is shared).
        var colorizers = new List<Colorizer>();
        string modelName, device, deviceReason;
        try
        {
            var (first, name) = ColorizeCommand.OpenColorizer(modelPath, () => CliRunner.OpenDevice(deviceName), null, settings.MaxPixels);
            colorizers.Add(first);
            modelName = name == ColorizeCommand.BuiltInModelName ? name : Path.GetFileName(name);
            device = first.Network.Device.Name;
            deviceReason = first.Network.Device.SelectionReason;
            int count = workers ?? DefaultWorkers(first.Network.Device);
            while (colorizers.Count < count)
                colorizers.Add(ColorizeCommand.OpenColorizer(modelPath, () => CliRunner.OpenDevice(deviceName), null, settings.MaxPixels).Colorizer);
        }
        catch
        {
            foreach (var c in colorizers) c.Dispose();
            throw;
        }

        var server = ColorizeServer.Create(settings with { ModelName = modelName, DeviceName = device }, colorizers);
        try
        {
            return Serve(server, deviceReason).GetAwaiter().GetResult();
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Listens until Ctrl-C (exit 130) or SIGTERM (a service manager's stop: exit 0), then stops cleanly.</summary>
    static async Task<int> Serve(ColorizeServer server, string deviceReason)
    {
        var settings = server.Settings;
        using var stop = new CancellationTokenSource();
        int exitCode = CliConventions.Done;
        void OnSignal(PosixSignalContext signal)
        {
            // A second Ctrl-C while stopping is not cancelled: the runtime ends the process at once.
            if (stop.IsCancellationRequested) return;
            signal.Cancel = true;
            if (signal.Signal == PosixSignal.SIGINT) exitCode = CliConventions.Interrupted;
            stop.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        try
        {
            await server.StartAsync(stop.Token);
        }
        catch (IOException e)
        {
            throw new CliException($"cannot listen on {settings.Host} port {settings.Port}: {e.Message}", CliConventions.SomeFailed);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return exitCode;
        }
        // The URL alone on stdout (the result, for scripts); what is served, on stderr.
        CliConsole.Out.WriteLine(server.Url!.ToString());
        string workers = server.Pool.Workers == 1 ? "1 worker" : $"{server.Pool.Workers} workers";
        CliConsole.Error.MarkupLineInterpolated(
            $"chroma serve: {settings.ModelName} on {settings.DeviceName} ({deviceReason}); {workers}, queue {settings.Queue}, uploads up to {settings.MaxUploadBytes >> 20} MB, photos up to {ColorizeServer.Megapixels(settings.MaxImagePixels)} megapixels. Ctrl-C stops it.");
        if (!IsLoopback(settings.Host))
            CliConsole.WriteWarning($"--host {settings.Host} is not loopback: anyone who can reach this machine can use the server (there is no authentication).");

        try { await Task.Delay(Timeout.Infinite, stop.Token); }
        catch (OperationCanceledException) { }
        CliConsole.Error.MarkupLine("chroma serve: stopping (photos being colorized are finished first)");
        await server.StopAsync(TimeSpan.FromSeconds(10));
        return exitCode;
    }

    static bool IsLoopback(string host) => ColorizeServer.ParseHost(host) is not { } address || System.Net.IPAddress.IsLoopback(address);
}
