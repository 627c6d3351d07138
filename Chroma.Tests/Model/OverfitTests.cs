using System.Diagnostics;
using Chroma.Kernels;
using Chroma.Model;
using Chroma.Training;
using Chroma.Training.Data;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>
/// End-to-end learning: the training step Trainer runs (training-mode forward, joint loss and
/// backward, ADADELTA over the one parameter buffer) must memorize one small batch.
/// </summary>
public sealed class OverfitTests(ITestOutputHelper output)
{
    const int N = 4, Size = 64, Classes = 3;
    static readonly int[] Labels = [0, 1, 2, 1];

    /// <summary>
    /// Four 64x64 sRGB images with colour structure: a diagonal two-colour gradient, a coloured blob
    /// on a tinted background, horizontal colour bands with a smooth lightness ramp, and a radial
    /// pattern; each a smooth function of position, so chrominance is predictable from context.
    /// </summary>
    internal static float[] SyntheticRgb(int image)
    {
        var rgb = new float[3 * Size * Size];
        for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                double u = x / (Size - 1.0), v = y / (Size - 1.0);
                (double r, double g, double b) = image switch
                {
                    0 => (0.9 * (u + v) / 2 + 0.05, 0.3 + 0.2 * v, 0.85 - 0.7 * (u + v) / 2),
                    1 => Math.Exp(-((u - 0.4) * (u - 0.4) + (v - 0.6) * (v - 0.6)) / 0.03) is var blob
                        ? (0.2 + 0.7 * blob, 0.5 - 0.2 * blob, 0.3 + 0.1 * blob) : default,
                    2 => (v < 0.33 ? 0.8 : 0.2, v is >= 0.33 and < 0.66 ? 0.75 : 0.25, v >= 0.66 ? 0.8 : 0.3) is var band
                        ? (band.Item1 * (0.5 + 0.5 * u), band.Item2 * (0.5 + 0.5 * u), band.Item3 * (0.5 + 0.5 * u)) : default,
                    _ => Math.Sqrt((u - 0.5) * (u - 0.5) + (v - 0.5) * (v - 0.5)) is var d
                        ? (0.5 + 0.4 * Math.Cos(8 * d), 0.5 + 0.4 * Math.Sin(6 * d), 0.4 + 0.3 * d) : default,
                };
                rgb[0 * Size * Size + y * Size + x] = (float)r;
                rgb[1 * Size * Size + y * Size + x] = (float)g;
                rgb[2 * Size * Size + y * Size + x] = (float)b;
            }
        return rgb;
    }

    [Fact]
    public void Adadelta_overfits_one_batch()
    {
        var device = CpuDevice.Instance;
        var inputs = new float[N * Size * Size];
        var targets = new float[N * 2 * (Size / 2) * (Size / 2)];
        for (int i = 0; i < N; i++)
        {
            var l = new float[Size * Size];
            var ab = new float[2 * Size * Size];
            LabColor.RgbToLab(SyntheticRgb(i), Size, Size, l, ab);
            for (int p = 0; p < l.Length; p++) inputs[i * l.Length + p] = l[p] / 100f;
            var normalized = Augmentation.TargetFromAb(ab, Size, Size);
            normalized.CopyTo(targets, i * normalized.Length);
        }

        using var network = new ColorizationNetwork(new ColorizerConfig(0.0625, Classes, 1, Size), device, seed: 1);
        using var input = device.FromArray(inputs, N, 1, Size, Size);
        using var target = device.FromArray(targets, N, 2, Size / 2, Size / 2);
        using var squareAverage = device.Zeros(network.Parameters.Values.Length);
        using var accumulatedDelta = device.Zeros(network.Parameters.Values.Length);
        using var loss = new JointLoss();

        // ADADELTA's first steps are about sqrt(eps / (1 - rho)) = 3e-3 per weight and grow as its
        // accumulated updates do: on this batch the loss falls 10x after about 230 steps (3 s on a
        // loaded 2-core machine); the bound leaves 2.5x headroom and stops as soon as 10x is reached.
        const int maxSteps = 600;
        var clock = Stopwatch.StartNew();
        float first = float.NaN, last = float.NaN;
        int step = 0;
        while (step < maxSteps && !(last <= first / 10))
        {
            network.Parameters.ZeroGradients();
            var (ab, logits) = network.Forward(input, null, training: true);
            var terms = loss.Backward(network, ab, logits, target, Labels);
            Adadelta.Step(network.Parameters.Values, network.Parameters.Gradients, squareAverage, accumulatedDelta);
            network.Parameters.MarkChanged();
            if (step == 0) first = terms.Total;
            last = terms.Total;
            if (step % 50 == 0) output.WriteLine($"step {step}: loss {terms.Total:G5} (colour {terms.Color:G5}, class {terms.Class:G5}) at {clock.Elapsed.TotalSeconds:F1} s");
            step++;
        }
        output.WriteLine($"{step} steps in {clock.Elapsed.TotalSeconds:F1} s: loss {first:G5} -> {last:G5} ({first / last:F1}x)");
        Assert.True(last <= first / 10, $"after {step} steps the loss fell from {first:G5} to {last:G5} only ({first / last:F1}x, expected 10x)");
    }
}
