using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Chroma.Model;
using Chroma.Training;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>
/// `chroma bench`: quick timings on a chosen device — a square GEMM, inference of one 512x512
/// photo, and a 224x224 training step (forward, joint loss, backward, ADADELTA). For careful CPU
/// figures use the BenchmarkDotNet project (benchmarks/); this command exists to time GPUs and
/// machines where only the built tool is available. With --json the same timings are one JSON
/// object on stdout, for scripts that compare runs:
/// <code>
/// {"device": "...", "device_selection": "...", "processor": "...", "cores": 2, "entries": [
///   {"what": "gemm", "size": 1024, "median_ms": 12.3, "best_ms": 11.0, "gflops": 195.2},
///   {"what": "inference 512x512", "width": 0.25, "batch": 1, "median_ms": ..., "best_ms": ..., "images_per_s": ...},
///   {"what": "training step 224x224", "width": 0.25, "batch": 16, "median_ms": ..., "best_ms": ..., "images_per_s": ...}]}
/// </code>
/// (gflops from the best time, images_per_s from the median, as in the table). On a GPU each entry also
/// has "launches", "copies" (host&lt;-&gt;device), "syncs" and "allocations": what one more run did, read
/// from the device's execution log (<see cref="GpuLog"/>). `chroma bench --op NAME` times one op of the op harness
/// instead, optionally beside PyTorch (<see cref="OpBench"/>).
/// </summary>
public static class BenchCommand
{
    /// <summary>One timed thing: a GEMM (Size set) or a network pass (Width and Batch set).</summary>
    sealed record Entry(string What, double MedianSeconds, double BestSeconds, int? Size = null, double? Width = null, int? Batch = null)
    {
        /// <summary>On a GPU: what one more run did, from the device's execution log.</summary>
        public LogCounts? Log { get; init; }

        public double Gflops => 2.0 * Size!.Value * Size.Value * Size.Value / BestSeconds / 1e9;
        public double ImagesPerSecond => Batch!.Value / MedianSeconds;
    }

    public static Command Create()
    {
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or opencl.", DefaultValueFactory = _ => "auto" };
        var widths = new Option<double[]>("--width") { Description = "Model widths to time.", DefaultValueFactory = _ => [0.25, 1.0], AllowMultipleArgumentsPerToken = true };
        var gemm = new Option<int>("--gemm") { Description = "Side of the square GEMM to time (0: skip).", DefaultValueFactory = _ => 1024 };
        var batch = new Option<int?>("--batch") { Description = "Training batch (default: 16 at width < 1, 4 at width 1)." };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions (median and best are reported).", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print the timings as one JSON object on stdout, and nothing else." };
        var op = new Option<string?>("--op") { Description = $"Time one op of the op harness on its benchmark shapes (op_shapes.json), forward and forward+backward, instead: {Ops.Names}; `list` lists them." };
        var cases = new Option<string[]>("--case") { Description = "With --op: only these cases (a name, or a prefix such as w0.25).", AllowMultipleArgumentsPerToken = true };
        var peer = new Option<bool>("--peer") { Description = "With --op on the CPU: also time PyTorch (peer/ops_torch.py, same shapes) and print its median and the ratio." };
        var rounds = new Option<int>("--rounds") { Description = "With --op: rounds of timing (Chroma and the peer alternate; samples of all rounds pooled).", DefaultValueFactory = _ => 1 };
        var python = new Option<string?>("--python") { Description = "With --peer: the Python with torch (default /usr/bin/python3, else python3)." };
        var cmd = new Command("bench", "Time GEMM, inference and a training step on a device, or one op (--op).") { device, widths, gemm, batch, repeats, json, op, cases, peer, rounds, python };
        cmd.SetAction(r =>
        {
            using var dev = CliRunner.OpenDevice(r.GetValue(device));
            int reps = Math.Max(1, r.GetValue(repeats));
            bool asJson = r.GetValue(json);
            if (r.GetValue(op) is { } opName)
                return OpBench.Run(dev, opName, r.GetValue(cases) ?? [], reps, r.GetValue(rounds), r.GetValue(peer), r.GetValue(python), asJson);
            string processor = ProcessorName();
            if (!asJson)
            {
                AnsiConsole.MarkupLineInterpolated($"device: {dev.Name} ({dev.SelectionReason})");
                AnsiConsole.MarkupLineInterpolated($"processor: {processor}, {Environment.ProcessorCount} cores");
            }
            var entries = new List<Entry>();
            int n = r.GetValue(gemm);
            if (n > 0)
            {
                using var a = Random(dev, 1, n, n); using var b = Random(dev, 2, n, n); using var c = dev.Zeros(n, n);
                var (med, best) = Time(dev, reps, () => Gemm.Multiply(a, b, c));
                entries.Add(new Entry("gemm", med, best, Size: n) { Log = Count(dev, () => Gemm.Multiply(a, b, c)) });
            }
            foreach (var w in r.GetValue(widths)!)
            {
                using var net = new ColorizationNetwork(new ColorizerConfig(w, 205), dev, seed: 1);
                using var local = Random(dev, 3, 1, 1, 512, 512); using var global = Random(dev, 4, 1, 1, 224, 224);
                var (med, best) = Time(dev, reps, () => net.Forward(local, global, training: false));
                entries.Add(new Entry("inference 512x512", med, best, Width: w, Batch: 1) { Log = Count(dev, () => net.Forward(local, global, training: false)) });

                // The training step as `chroma train` runs it: the batch uploaded from host memory, the
                // loss left on the device (read once after the timing, as training reads it when logging).
                int bs = r.GetValue(batch) ?? (w >= 1.0 ? 4 : 16);
                var images = RandomValues(5, bs * 224 * 224);
                var targets = RandomValues(6, bs * 2 * 112 * 112);
                var labels = Enumerable.Range(0, bs).Select(i => i % 205).ToArray();
                using var step = new TrainingStep(net, bs, classification: true);
                (med, best) = Time(dev, reps, () => step.Run(images, targets, labels));
                var log = Count(dev, () => step.Run(images, targets, labels));
                step.ReadLoss();
                entries.Add(new Entry("training step 224x224", med, best, Width: w, Batch: bs) { Log = log });
            }
            if (asJson) Console.Out.WriteLine(Json(dev, processor, entries));
            else AnsiConsole.Write(Table(entries));
            return 0;
        });
        return cmd;
    }

    static Table Table(List<Entry> entries)
    {
        var table = new Table().AddColumns("what", "median", "best", "rate");
        bool logged = entries.Any(e => e.Log is not null);
        if (logged) table.AddColumns("launches", "copies", "syncs", "allocations");
        foreach (var e in entries)
        {
            var row = new List<string>();
            if (e.Size is int n) row.AddRange([$"GEMM {n}^3", Ms(e.MedianSeconds), Ms(e.BestSeconds), $"{e.Gflops:F1} GFLOP/s (best)"]);
            else
            {
                string batch = e.What.StartsWith("training", StringComparison.Ordinal) ? $", batch {e.Batch}" : "";
                row.AddRange([$"width {e.Width}: {e.What}{batch}", Ms(e.MedianSeconds), Ms(e.BestSeconds), $"{e.ImagesPerSecond:F2} images/s (median)"]);
            }
            if (logged)
                row.AddRange(e.Log is { } l ? [$"{l.Launches}", $"{l.Copies}", $"{l.Syncs}", $"{l.Allocations}"] : ["", "", "", ""]);
            table.AddRow(row.ToArray());
        }
        return table;
    }

    static string Json(Device dev, string processor, List<Entry> entries)
    {
        using var buffer = new MemoryStream();
        using (var j = new Utf8JsonWriter(buffer))
        {
            j.WriteStartObject();
            WriteMachine(j, dev, processor);
            j.WriteStartArray("entries");
            foreach (var e in entries)
            {
                j.WriteStartObject();
                j.WriteString("what", e.What);
                if (e.Size is int n) j.WriteNumber("size", n);
                if (e.Width is double w) j.WriteNumber("width", w);
                if (e.Batch is int b) j.WriteNumber("batch", b);
                j.WriteNumber("median_ms", Math.Round(e.MedianSeconds * 1e3, 4));
                j.WriteNumber("best_ms", Math.Round(e.BestSeconds * 1e3, 4));
                if (e.Size is not null) j.WriteNumber("gflops", Math.Round(e.Gflops, 3));
                else j.WriteNumber("images_per_s", Math.Round(e.ImagesPerSecond, 4));
                if (e.Log is { } l)
                {
                    j.WriteNumber("launches", l.Launches);
                    j.WriteNumber("copies", l.Copies);
                    j.WriteNumber("syncs", l.Syncs);
                    j.WriteNumber("allocations", l.Allocations);
                }
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The CPU's model name: /proc/cpuinfo's "model name" on Linux, else the architecture and OS.</summary>
    internal static string ProcessorName()
    {
        try
        {
            if (OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int colon and >= 0)
                        return line[(colon + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return $"{RuntimeInformation.OSArchitecture} ({RuntimeInformation.OSDescription})";
    }

    static Tensor Random(Device dev, int seed, params int[] shape) => dev.FromArray(RandomValues(seed, Tensor.ShapeLength(shape)), shape);

    static float[] RandomValues(int seed, int count)
    {
        var rng = new Random(seed);
        var v = new float[count];
        for (int i = 0; i < v.Length; i++) v[i] = (float)rng.NextDouble();
        return v;
    }

    /// <summary>What one run did on a GPU: kernel launches, host&lt;-&gt;device copies, synchronizations, device allocations.</summary>
    internal readonly record struct LogCounts(int Launches, int Copies, int Syncs, int Allocations);

    /// <summary>Runs <paramref name="run"/> once more with the GPU's execution log on; null on the CPU.</summary>
    static LogCounts? Count(Device dev, Action run)
    {
        if (dev is not GpuDevice gpu) return null;
        var log = new GpuLog();
        gpu.Log = log;
        try { run(); }
        finally { gpu.Log = null; }
        gpu.Synchronize(); // the bench's own wait, not counted
        return new LogCounts(log.Count(GpuEventKind.Launch), log.Count(GpuEventKind.Upload) + log.Count(GpuEventKind.Download),
            log.Count(GpuEventKind.Synchronize), log.Count(GpuEventKind.Allocate));
    }

    /// <summary>One warm-up, then <paramref name="reps"/> timed runs, each ending with a device synchronization.</summary>
    static (double Median, double Best) Time(Device dev, int reps, Action run)
    {
        run(); dev.Synchronize();
        var times = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            var sw = Stopwatch.StartNew();
            run(); dev.Synchronize();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return (times[times.Count / 2], times[0]);
    }

    /// <summary>A time for a table: three significant digits or so, from 0.01 ms to seconds.</summary>
    internal static string Ms(double seconds) => seconds >= 0.1 ? $"{seconds * 1e3:F0} ms" : seconds >= 0.01 ? $"{seconds * 1e3:F1} ms" : $"{seconds * 1e3:F2} ms";

    /// <summary>The machine part of a --json report, the same in `bench` and `bench --op`.</summary>
    internal static void WriteMachine(Utf8JsonWriter j, Device dev, string processor)
    {
        j.WriteString("device", dev.Name);
        j.WriteString("device_selection", dev.SelectionReason);
        j.WriteString("processor", processor);
        j.WriteNumber("cores", Environment.ProcessorCount);
    }
}
