using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests.Kernels;

/// <summary>
/// Batch norm through the op harness (Chroma.Kernels/Harness/BatchNormOp.cs: training and inference, 4-D and 2-D, with
/// and without the fused ReLU, a large offset, shapes large enough for the CPU's parallel path; check against the
/// float64 forward, saved and running statistics; grad against the closed form and central differences), on both
/// paths and every CPU vector width; plus what the harness does not express: a chosen momentum over two steps,
/// inference in place, folding, and argument checks.
/// </summary>
public class BatchNormTests
{
    static readonly BatchNormOp Op = BatchNormOp.Instance;

    static bool IsLarge(OpCase c) => BatchNormOp.Shape.Of(c).Count > 32768;

    /// <summary>4-D [N,C,H,W] (S = H*W) and 2-D [N,C] (S = 1) cases, odd sizes, on both paths.</summary>
    public static TheoryData<string, int[]> Cases()
    {
        var d = new TheoryData<string, int[]>();
        foreach (var p in new[] { "cpu", "gpu" })
        {
            d.Add(p, [2, 3, 7, 9]);
            d.Add(p, [5, 4]);
        }
        return d;
    }

    /// <summary>
    /// Both paths with every small case; the grad theory takes the training ones but those at an offset of 1000, where
    /// x - mean keeps only ~1e-4 of float32's precision (their forward and statistics are what they check).
    /// </summary>
    public static TheoryData<string, string> PathsAndCases(bool backward) =>
        HarnessAssert.PathsAndCases(Op, c => !IsLarge(c) && (!backward || c.Flag("training") && !c.Sizes.ContainsKey("offset")));

    /// <summary>Check mode: y (over a sentinel) against the float64 forward; the saved statistics and the running ones (moved by training, untouched by inference).</summary>
    [Theory, MemberData(nameof(PathsAndCases), false)]
    public void Forward_matches_reference(string path, string name)
    {
        HarnessAssert.Check(Op, path, name, seed: 20);
    }

    /// <summary>
    /// Grad mode: dx, dgamma, dbeta (accumulating onto non-zero starts) against the closed form, then central differences
    /// of the float64 training forward, so dx includes the terms through the batch mean and variance (and the ReLU's mask).
    /// </summary>
    [Theory, MemberData(nameof(PathsAndCases), true)]
    public void Backward_matches_closed_form_and_finite_differences(string path, string name)
    {
        HarnessAssert.Grad(Op, path, name, seed: 26);
    }

    /// <summary>
    /// Shapes above the CPU path's sequential threshold (32K elements), so channels run in parallel: too large for
    /// central differences, so backward is compared with the closed form alone. The GPU path takes only the 4-D one:
    /// 900 channels are 900 groups, which take seconds on the simulator.
    /// </summary>
    public static TheoryData<string, string> LargeCases() => new()
    {
        { "cpu", "n4c16h24w24" },
        { "cpu", "n40c900" },
        { "gpu", "n4c16h24w24" },
    };

    [Theory, MemberData(nameof(LargeCases))]
    public void Large_input_training_forward_and_backward_match_float64(string path, string name)
    {
        Assert.True(IsLarge(Op.Case(name)));
        using (var run = Op.Prepare(TestDevices.Get(path), Op.Case(name), seed: 31))
            HarnessAssert.Passes(OpHarness.Check(run));
        using (var run = Op.Prepare(TestDevices.Get(path), Op.Case(name), seed: 32))
            HarnessAssert.Passes(OpHarness.Grad(run));
    }

    /// <summary>Every CPU vector width this machine accelerates (scalar always), on shapes whose segments (S = 63) and rows (37 channels) end in partial vectors, in every mode.</summary>
    public static TheoryData<string, string> CpuWidthCases()
    {
        var d = new TheoryData<string, string>();
        foreach (var width in Enum.GetValues<BatchNorm.CpuWidth>())
            if (width != BatchNorm.CpuWidth.Auto && BatchNorm.IsAccelerated(width))
                foreach (var c in Op.CheckCases.Where(c => c.Name.StartsWith("n2c3h7w9", StringComparison.Ordinal) && !c.Sizes.ContainsKey("offset") ||
                                                           c.Name.StartsWith("n5c37", StringComparison.Ordinal)))
                    d.Add(width.ToString(), c.Name);
        return d;
    }

    [Theory, MemberData(nameof(CpuWidthCases))]
    public void Cpu_widths_match_float64_with_and_without_relu(string widthName, string name)
    {
        var previous = BatchNorm.CpuWidthOnThisThread;
        BatchNorm.CpuWidthOnThisThread = Enum.Parse<BatchNorm.CpuWidth>(widthName);
        try
        {
            using (var run = Op.Prepare(TestDevices.Get("cpu"), Op.Case(name), seed: 50))
                HarnessAssert.Passes(OpHarness.Check(run));
            using (var run = Op.Prepare(TestDevices.Get("cpu"), Op.Case(name), seed: 51))
                if (run.HasBackward) HarnessAssert.Passes(OpHarness.Grad(run));
        }
        finally { BatchNorm.CpuWidthOnThisThread = previous; }
    }

    /// <summary>The fused-ReLU cases clip something (else they would not test the mask), and keep bn(x) off the kink in training.</summary>
    [Fact]
    public void Relu_cases_clip_values()
    {
        foreach (var c in Op.CheckCases.Where(c => c.Flag("relu", false)))
        {
            using var run = Op.Prepare(CpuDevice.Instance, c, seed: 20);
            Assert.Contains(run.Reference(run.Inputs), v => v == 0);
        }
    }

    static (int N, int C, int S) Layout(int[] shape) => (shape[0], shape[1], shape.Length == 4 ? shape[2] * shape[3] : 1);

    /// <summary>The harness's shape of a training case (its input: U[-1, 1) plus 0, 10, 20 or 30 by channel; its moments).</summary>
    static BatchNormOp.Shape Of(int[] shape) =>
        new(shape[0], shape[1], shape.Length == 4 ? shape[2] : 1, shape.Length == 4 ? shape[3] : 1, shape.Length, Training: true, Relu: false, Offset: null);

    /// <summary>Per-channel parameters [C] (float64 copies and tensors) and the saved-statistics outputs.</summary>
    sealed class Params : IDisposable
    {
        public readonly double[] Gamma, Beta, RunningMean, RunningVar;
        public readonly Tensor G, B, RM, RV, SaveMean, SaveInvStd;

        public Params(Device dev, int c, int seed)
        {
            Gamma = TestData.RoundToFloat(TestData.Uniform(seed, c, 0.5, 1.5));
            Beta = TestData.RoundToFloat(TestData.Uniform(seed + 1, c));
            RunningMean = TestData.RoundToFloat(TestData.Uniform(seed + 2, c));
            RunningVar = TestData.RoundToFloat(TestData.Uniform(seed + 3, c, 0.5, 2));
            G = TestData.Tensor(dev, Gamma, c);
            B = TestData.Tensor(dev, Beta, c);
            RM = TestData.Tensor(dev, RunningMean, c);
            RV = TestData.Tensor(dev, RunningVar, c);
            SaveMean = dev.Zeros(c);
            SaveInvStd = dev.Zeros(c);
        }

        public void Dispose()
        {
            G.Dispose(); B.Dispose(); RM.Dispose(); RV.Dispose(); SaveMean.Dispose(); SaveInvStd.Dispose();
        }
    }

    [Theory, MemberData(nameof(Cases))]
    public void Running_statistics_use_momentum_and_unbiased_variance(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        var x = Of(shape).Input(22);
        using var p = new Params(dev, c, 23);
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        const float momentum = 0.25f;
        BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd, momentum);
        var (mean, var) = Of(shape).Moments(x);
        int m = n * s;
        var expectedMean = new double[c];
        var expectedVar = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            expectedMean[ch] = (1 - momentum) * p.RunningMean[ch] + momentum * mean[ch];
            expectedVar[ch] = (1 - momentum) * p.RunningVar[ch] + momentum * var[ch] * m / (m - 1);
        }
        Compare.Close("runningMean", expectedMean, p.RM.ToArray(), 1e-6, 1e-6);
        Compare.Close("runningVar", expectedVar, p.RV.ToArray(), 1e-5, 0);

        // A second step (the harness's check mode takes the first with the default momentum) with the default momentum moves the statistics again from the updated values.
        var runningMean1 = TestData.ToDouble(p.RM.ToArray());
        var runningVar1 = TestData.ToDouble(p.RV.ToArray());
        BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd);
        for (int ch = 0; ch < c; ch++)
        {
            expectedMean[ch] = (1 - BatchNorm.DefaultMomentum) * runningMean1[ch] + BatchNorm.DefaultMomentum * mean[ch];
            expectedVar[ch] = (1 - BatchNorm.DefaultMomentum) * runningVar1[ch] + BatchNorm.DefaultMomentum * var[ch] * m / (m - 1);
        }
        Compare.Close("runningMean after 2 steps", expectedMean, p.RM.ToArray(), 1e-6, 1e-6);
        Compare.Close("runningVar after 2 steps", expectedVar, p.RV.ToArray(), 1e-5, 0);
    }

    /// <summary>Inference in place (y = x), as the inference path of a layer may run it, with the fused ReLU.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void Fused_relu_inference_forward_in_place_matches_reference(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        var x = TestData.RoundToFloat(TestData.Uniform(42, n * c * s, -2, 2));
        using var p = new Params(dev, c, 43);
        using var tx = TestData.Tensor(dev, x, shape);
        BatchNorm.ForwardInference(tx, p.G, p.B, p.RM, p.RV, tx, relu: true);
        var expected = BatchNorm.Reference.ForwardInference(x, n, c, s, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, BatchNorm.DefaultEps)
            .Select(v => Math.Max(v, 0)).ToArray();
        Compare.Close("y in place", expected, tx.ToArray(), 1e-5, 1e-6);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Fold_into_preceding_layer_matches_float64(string path)
    {
        var dev = TestDevices.Get(path);
        const int c = 5, k = 6;
        using var p = new Params(dev, c, 53);
        var w = TestData.RoundToFloat(TestData.Uniform(54, c * k));
        var b = TestData.RoundToFloat(TestData.Uniform(55, c));
        using var tw = TestData.Tensor(dev, w, c, k);
        using var tb = TestData.Tensor(dev, b, c);
        using var fw = dev.Zeros(c, k);
        using var fb = dev.Zeros(c);
        BatchNorm.Fold(tw, tb, p.G, p.B, p.RM, p.RV, fw, fb);
        // bn(W x + b) at a few inputs x, in float64, against W' x + b'.
        var fwa = TestData.ToDouble(fw.ToArray());
        var fba = TestData.ToDouble(fb.ToArray());
        var input = TestData.Uniform(56, k);
        for (int o = 0; o < c; o++)
        {
            double z = b[o], folded = fba[o];
            for (int j = 0; j < k; j++) { z += w[o * k + j] * input[j]; folded += fwa[o * k + j] * input[j]; }
            double expected = p.Gamma[o] * (z - p.RunningMean[o]) / Math.Sqrt(p.RunningVar[o] + BatchNorm.DefaultEps) + p.Beta[o];
            Assert.True(Math.Abs(expected - folded) <= 1e-5 * (1 + Math.Abs(expected)), $"channel {o}: {folded} vs {expected}");
        }
        var e = Assert.Throws<ArgumentException>(() => BatchNorm.Fold(tw, p.G, p.G, p.B, p.RM, p.RV, fw, p.B.Slice(0, [c - 1])));
        Assert.Contains("foldedBias must have shape", e.Message);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Training_with_one_value_per_channel_is_rejected(string path)
    {
        var dev = TestDevices.Get(path);
        using var p = new Params(dev, 4, 29);
        foreach (var shape in new[] { new[] { 1, 4 }, [1, 4, 1, 1] })
        {
            using var x = dev.Zeros(shape);
            using var y = dev.Zeros(shape);
            var e = Assert.Throws<ArgumentException>(() => BatchNorm.ForwardTraining(x, p.G, p.B, p.RM, p.RV, y, p.SaveMean, p.SaveInvStd));
            Assert.Contains("more than 1 value per channel", e.Message);
            e = Assert.Throws<ArgumentException>(() => BatchNorm.Backward(x, p.G, p.SaveMean, p.SaveInvStd, y, y, p.SaveMean, p.SaveInvStd));
            Assert.Contains("more than 1 value per channel", e.Message);
            // Inference with one sample is fine.
            BatchNorm.ForwardInference(x, p.G, p.B, p.RM, p.RV, y);
        }
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Bad_shapes_are_rejected(string path)
    {
        var dev = TestDevices.Get(path);
        using var p = new Params(dev, 3, 30);
        using var x = dev.Zeros(2, 3, 5, 5);
        using var y = dev.Zeros(2, 3, 5, 5);
        using var yWrong = dev.Zeros(2, 3, 5, 4);
        using var x3 = dev.Zeros(2, 3, 5);
        using var c4 = dev.Zeros(4);

        var e = Assert.Throws<ArgumentException>(() => BatchNorm.ForwardTraining(x, c4, p.B, p.RM, p.RV, y, p.SaveMean, p.SaveInvStd));
        Assert.Contains("gamma must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => BatchNorm.ForwardTraining(x, p.G, p.B, p.RM, c4, y, p.SaveMean, p.SaveInvStd));
        Assert.Contains("runningVar must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => BatchNorm.ForwardTraining(x, p.G, p.B, p.RM, p.RV, yWrong, p.SaveMean, p.SaveInvStd));
        Assert.Contains("y must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => BatchNorm.ForwardInference(x3, p.G, p.B, p.RM, p.RV, x3));
        Assert.Contains("[N, C, H, W] or [N, C]", e.Message);
        e = Assert.Throws<ArgumentException>(() => BatchNorm.ForwardInference(x, p.G, c4, p.RM, p.RV, y));
        Assert.Contains("beta must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => BatchNorm.Backward(x, p.G, p.SaveMean, p.SaveInvStd, yWrong, y, p.SaveMean, p.SaveInvStd));
        Assert.Contains("dy must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => BatchNorm.Backward(x, p.G, p.SaveMean, p.SaveInvStd, y, y, c4, p.SaveInvStd));
        Assert.Contains("dgamma must have shape", e.Message);
    }
}
