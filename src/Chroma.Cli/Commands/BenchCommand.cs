using System.CommandLine;
using System.Diagnostics;
using Chroma.Kernels;
using Chroma.Model;
using Chroma.Training;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>
/// `chroma bench`: quick timings on a chosen device — a square GEMM, inference of one 512x512
/// photo, and a 224x224 training step (forward, joint loss, backward, ADADELTA). For careful CPU
/// figures use the BenchmarkDotNet project (benchmarks/); this command exists to time GPUs and
/// machines where only the built tool is available.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or opencl.", DefaultValueFactory = _ => "auto" };
        var widths = new Option<double[]>("--width") { Description = "Model widths to time.", DefaultValueFactory = _ => [0.25, 1.0], AllowMultipleArgumentsPerToken = true };
        var gemm = new Option<int>("--gemm") { Description = "Side of the square GEMM to time (0: skip).", DefaultValueFactory = _ => 1024 };
        var batch = new Option<int?>("--batch") { Description = "Training batch (default: 16 at width < 1, 4 at width 1)." };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions (median and best are reported).", DefaultValueFactory = _ => 5 };
        var cmd = new Command("bench", "Time GEMM, inference and a training step on a device.") { device, widths, gemm, batch, repeats };
        cmd.SetAction(r =>
        {
            using var dev = CliRunner.OpenDevice(r.GetValue(device));
            int reps = Math.Max(1, r.GetValue(repeats));
            AnsiConsole.MarkupLineInterpolated($"device: {dev.Name} ({dev.SelectionReason})");
            var table = new Table().AddColumns("what", "median", "best", "rate");
            int n = r.GetValue(gemm);
            if (n > 0)
            {
                using var a = Random(dev, 1, n, n); using var b = Random(dev, 2, n, n); using var c = dev.Zeros(n, n);
                var (med, best) = Time(dev, reps, () => Gemm.Multiply(a, b, c));
                table.AddRow($"GEMM {n}^3", Ms(med), Ms(best), $"{2.0 * n * n * n / best / 1e9:F1} GFLOP/s (best)");
            }
            foreach (var w in r.GetValue(widths)!)
            {
                using var net = new ColorizationNetwork(new ColorizerConfig(w, 205), dev, seed: 1);
                using var local = Random(dev, 3, 1, 1, 512, 512); using var global = Random(dev, 4, 1, 1, 224, 224);
                var (med, best) = Time(dev, reps, () => net.Forward(local, global, training: false));
                table.AddRow($"width {w}: inference 512x512", Ms(med), Ms(best), $"{1 / med:F2} images/s (median)");

                int bs = r.GetValue(batch) ?? (w >= 1.0 ? 4 : 16);
                using var x = Random(dev, 5, bs, 1, 224, 224); using var t = Random(dev, 6, bs, 2, 112, 112);
                using var sq = dev.Zeros(net.Parameters.Values.Length); using var acc = dev.Zeros(net.Parameters.Values.Length);
                using var loss = new JointLoss();
                var labels = Enumerable.Range(0, bs).Select(i => i % 205).ToArray();
                (med, best) = Time(dev, reps, () =>
                {
                    net.Parameters.ZeroGradients();
                    var (ab, logits) = net.Forward(x, null, training: true);
                    loss.Backward(net, ab, logits, t, labels);
                    Adadelta.Step(net.Parameters.Values, net.Parameters.Gradients, sq, acc);
                    net.Parameters.MarkChanged();
                });
                table.AddRow($"width {w}: training step 224x224, batch {bs}", Ms(med), Ms(best), $"{bs / med:F2} images/s (median)");
            }
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
    }

    static Tensor Random(Device dev, int seed, params int[] shape)
    {
        var rng = new Random(seed);
        var v = new float[Tensor.ShapeLength(shape)];
        for (int i = 0; i < v.Length; i++) v[i] = (float)rng.NextDouble();
        return dev.FromArray(v, shape);
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

    static string Ms(double seconds) => $"{seconds * 1e3:F1} ms";
}
