using Chroma.Kernels;
using Xunit;

namespace Chroma.Tests.Kernels;

public class BatchNormTests
{
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

    static (int N, int C, int S) Layout(int[] shape) => (shape[0], shape[1], shape.Length == 4 ? shape[2] * shape[3] : 1);

    /// <summary>Values in [-1,1) plus an offset of 0, 10, 20 or 30 by channel, so a variance that cancels would show.</summary>
    static double[] Input(int seed, int[] shape)
    {
        var (n, c, s) = Layout(shape);
        var x = TestData.Uniform(seed, n * c * s);
        for (int i = 0; i < x.Length; i++) x[i] += 10.0 * (i / s % c % 4);
        return TestData.RoundToFloat(x);
    }

    /// <summary>float64 batch mean and biased variance per channel.</summary>
    static (double[] Mean, double[] Var) Moments(double[] x, int n, int c, int s)
    {
        var mean = new double[c];
        var var = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            for (int i = 0; i < n; i++) for (int j = 0; j < s; j++) mean[ch] += x[(i * c + ch) * s + j];
            mean[ch] /= n * s;
            for (int i = 0; i < n; i++) for (int j = 0; j < s; j++) { double d = x[(i * c + ch) * s + j] - mean[ch]; var[ch] += d * d; }
            var[ch] /= n * s;
        }
        return (mean, var);
    }

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
    public void Training_forward_matches_reference(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        var x = Input(20, shape);
        using var p = new Params(dev, c, 21);
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd);
        // |y| is a few units; float32 normalization of values up to 30 leaves ~1e-5 absolute error.
        Compare.Close("y", BatchNorm.Reference.ForwardTraining(x, n, c, s, p.Gamma, p.Beta, BatchNorm.DefaultEps), ty.ToArray(), 1e-5, 5e-5);
        var (mean, var) = Moments(x, n, c, s);
        Compare.Close("saveMean", mean, p.SaveMean.ToArray(), 1e-6, 1e-6);
        Compare.Close("saveInvStd", var.Select(v => 1 / Math.Sqrt(v + BatchNorm.DefaultEps)).ToArray(), p.SaveInvStd.ToArray(), 2e-5, 0);
    }

    [Theory, MemberData(nameof(Cases))]
    public void Running_statistics_use_momentum_and_unbiased_variance(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        var x = Input(22, shape);
        using var p = new Params(dev, c, 23);
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        const float momentum = 0.25f;
        BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd, momentum);
        var (mean, var) = Moments(x, n, c, s);
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

        // A second step with the default momentum moves the statistics again from the updated values.
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

    [Theory, MemberData(nameof(Cases))]
    public void Inference_forward_matches_reference(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        var x = TestData.RoundToFloat(TestData.Uniform(24, n * c * s, -2, 2));
        using var p = new Params(dev, c, 25);
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        const float eps = 1e-3f;
        BatchNorm.ForwardInference(tx, p.G, p.B, p.RM, p.RV, ty, eps);
        var expected = BatchNorm.Reference.ForwardInference(x, n, c, s, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, eps);
        Compare.Close("y", expected, ty.ToArray(), 1e-5, 1e-6);
        // Inference must leave the running statistics alone.
        Compare.Close("runningMean", p.RunningMean, p.RM.ToArray(), 0, 0);
        Compare.Close("runningVar", p.RunningVar, p.RV.ToArray(), 0, 0);
    }

    [Theory, MemberData(nameof(Cases))]
    public void Backward_matches_finite_differences_of_training_forward(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        int count = n * c * s;
        var x = Input(26, shape);
        var dy = TestData.RoundToFloat(TestData.Uniform(27, count));
        using var p = new Params(dev, c, 28);
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        using var tdy = TestData.Tensor(dev, dy, shape);
        // Backward accumulates: start every gradient at 0.5 and subtract it afterwards.
        using var tdx = TestData.Tensor(dev, Enumerable.Repeat(0.5, count).ToArray(), shape);
        using var tdg = TestData.Tensor(dev, Enumerable.Repeat(0.5, c).ToArray(), c);
        using var tdb = TestData.Tensor(dev, Enumerable.Repeat(0.5, c).ToArray(), c);
        BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd);
        BatchNorm.Backward(tx, p.G, p.SaveMean, p.SaveInvStd, tdy, tdx, tdg, tdb);
        float[] Less(Tensor t) => t.ToArray().Select(v => v - 0.5f).ToArray();
        // The reference is the training forward, so dx includes the terms through the batch mean and variance.
        GradCheck.Check("batchnorm",
            i => BatchNorm.Reference.ForwardTraining(i[0], n, c, s, i[1], i[2], BatchNorm.DefaultEps),
            [x, p.Gamma, p.Beta], dy, [Less(tdx), Less(tdg), Less(tdb)], rtol: 1e-3, atol: 1e-4);
    }

    /// <summary>
    /// Shapes above the CPU path's sequential threshold (32K elements), so channels run in parallel.
    /// The GPU path takes only the 4-D one: 900 channels are 900 groups, which take seconds on the simulator.
    /// </summary>
    public static TheoryData<string, int[]> LargeCases() => new()
    {
        { "cpu", [4, 16, 24, 24] },
        { "cpu", [40, 900] },
        { "gpu", [4, 16, 24, 24] },
    };

    /// <summary>
    /// Too large for finite differences, so backward is compared with the closed-form gradient in float64
    /// (the formula the small cases check against finite differences).
    /// </summary>
    [Theory, MemberData(nameof(LargeCases))]
    public void Large_input_training_forward_and_backward_match_float64(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        int count = n * c * s, m = n * s;
        var x = Input(31, shape);
        var dy = TestData.RoundToFloat(TestData.Uniform(32, count));
        using var p = new Params(dev, c, 33);
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        using var tdy = TestData.Tensor(dev, dy, shape);
        using var tdx = dev.Zeros(shape);
        using var tdg = dev.Zeros(c);
        using var tdb = dev.Zeros(c);
        BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd);
        BatchNorm.Backward(tx, p.G, p.SaveMean, p.SaveInvStd, tdy, tdx, tdg, tdb);
        Compare.Close("y", BatchNorm.Reference.ForwardTraining(x, n, c, s, p.Gamma, p.Beta, BatchNorm.DefaultEps), ty.ToArray(), 1e-5, 1e-4);

        var (mean, var) = Moments(x, n, c, s);
        var (dx, dgamma, dbeta) = ClosedFormBackward(x, dy, n, c, s, p.Gamma);
        // Sums over up to 2304 values: float32 accumulation error grows with m.
        Compare.Close("dbeta", dbeta, tdb.ToArray(), 1e-4, 1e-3);
        Compare.Close("dgamma", dgamma, tdg.ToArray(), 1e-4, 1e-3);
        Compare.Close("dx", dx, tdx.ToArray(), 1e-4, 1e-5);
        var expectedVar = new double[c];
        for (int ch = 0; ch < c; ch++) expectedVar[ch] = 0.9 * p.RunningVar[ch] + 0.1 * var[ch] * m / (m - 1);
        Compare.Close("runningVar", expectedVar, p.RV.ToArray(), 1e-5, 0);
    }


    /// <summary>
    /// Training-mode gradients in float64 by the closed form (the formula the small cases check
    /// against finite differences): dx, dgamma, dbeta for upstream gradient dy.
    /// </summary>
    static (double[] Dx, double[] Dgamma, double[] Dbeta) ClosedFormBackward(double[] x, double[] dy, int n, int c, int s, double[] gamma)
    {
        var (mean, var) = Moments(x, n, c, s);
        int m = n * s;
        var dx = new double[x.Length];
        var dgamma = new double[c];
        var dbeta = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            double invStd = 1 / Math.Sqrt(var[ch] + BatchNorm.DefaultEps);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < s; j++)
                {
                    int k = (i * c + ch) * s + j;
                    dbeta[ch] += dy[k];
                    dgamma[ch] += dy[k] * (x[k] - mean[ch]) * invStd;
                }
            for (int i = 0; i < n; i++)
                for (int j = 0; j < s; j++)
                {
                    int k = (i * c + ch) * s + j;
                    double xhat = (x[k] - mean[ch]) * invStd;
                    dx[k] = gamma[ch] * invStd / m * (m * dy[k] - dbeta[ch] - xhat * dgamma[ch]);
                }
        }
        return (dx, dgamma, dbeta);
    }

    static double[] Relu64(double[] v) => Relu.Reference.Forward(v);

    /// <summary>
    /// An <see cref="Input"/> (seeds from <paramref name="seed"/> on) whose batch-norm output with
    /// these parameters has no value within 1e-3 of 0, where relu's kink would make finite differences meaningless.
    /// </summary>
    static double[] KinkFreeInput(int seed, int[] shape, double[] gamma, double[] beta)
    {
        var (n, c, s) = Layout(shape);
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var x = Input(seed + attempt, shape);
            var z = BatchNorm.Reference.ForwardTraining(x, n, c, s, gamma, beta, BatchNorm.DefaultEps);
            if (z.All(v => Math.Abs(v) > 1e-3)) return x;
        }
        throw new InvalidOperationException("no kink-free input found");
    }

    [Theory, MemberData(nameof(Cases))]
    public void Fused_relu_training_forward_matches_reference(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        var x = Input(40, shape);
        using var p = new Params(dev, c, 41);
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd, relu: true);
        var expected = Relu64(BatchNorm.Reference.ForwardTraining(x, n, c, s, p.Gamma, p.Beta, BatchNorm.DefaultEps));
        Assert.Contains(expected, v => v == 0);   // the ReLU clips something
        Compare.Close("y", expected, ty.ToArray(), 1e-5, 5e-5);
        var (mean, _) = Moments(x, n, c, s);
        Compare.Close("saveMean", mean, p.SaveMean.ToArray(), 1e-6, 1e-6);
    }

    [Theory, MemberData(nameof(Cases))]
    public void Fused_relu_inference_forward_matches_reference(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        var x = TestData.RoundToFloat(TestData.Uniform(42, n * c * s, -2, 2));
        using var p = new Params(dev, c, 43);
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        BatchNorm.ForwardInference(tx, p.G, p.B, p.RM, p.RV, ty, relu: true);
        var expected = Relu64(BatchNorm.Reference.ForwardInference(x, n, c, s, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, BatchNorm.DefaultEps));
        Compare.Close("y", expected, ty.ToArray(), 1e-5, 1e-6);
        // In place (y = x), as the inference path of a layer may run it.
        BatchNorm.ForwardInference(tx, p.G, p.B, p.RM, p.RV, tx, relu: true);
        Compare.Close("y in place", expected, tx.ToArray(), 1e-5, 1e-6);
    }

    [Theory, MemberData(nameof(Cases))]
    public void Fused_relu_backward_matches_finite_differences(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        int count = n * c * s;
        using var p = new Params(dev, c, 44);
        var x = KinkFreeInput(45, shape, p.Gamma, p.Beta);
        var dy = TestData.RoundToFloat(TestData.Uniform(46, count));
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        using var tdy = TestData.Tensor(dev, dy, shape);
        using var tdx = TestData.Tensor(dev, Enumerable.Repeat(0.5, count).ToArray(), shape);
        using var tdg = TestData.Tensor(dev, Enumerable.Repeat(0.5, c).ToArray(), c);
        using var tdb = TestData.Tensor(dev, Enumerable.Repeat(0.5, c).ToArray(), c);
        BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd, relu: true);
        BatchNorm.Backward(tx, p.G, p.SaveMean, p.SaveInvStd, tdy, tdx, tdg, tdb, reluOutput: ty);
        float[] Less(Tensor t) => t.ToArray().Select(v => v - 0.5f).ToArray();
        GradCheck.Check("batchnorm+relu",
            i => Relu64(BatchNorm.Reference.ForwardTraining(i[0], n, c, s, i[1], i[2], BatchNorm.DefaultEps)),
            [x, p.Gamma, p.Beta], dy, [Less(tdx), Less(tdg), Less(tdb)], rtol: 1e-3, atol: 1e-4);
    }

    /// <summary>
    /// Values 1000 + [-1, 1): sums of raw values and squares in float would cancel the variance
    /// (1e6 against 0.3) away; the shifted one-pass statistics keep it.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void Training_statistics_survive_a_large_offset(string path, int[] shape)
    {
        var dev = TestDevices.Get(path);
        var (n, c, s) = Layout(shape);
        var x = TestData.RoundToFloat(TestData.Uniform(47, n * c * s).Select(v => 1000 + v).ToArray());
        using var p = new Params(dev, c, 48);
        using var tx = TestData.Tensor(dev, x, shape);
        using var ty = dev.Zeros(shape);
        BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd);
        var (mean, var) = Moments(x, n, c, s);
        Compare.Close("saveMean", mean, p.SaveMean.ToArray(), 1e-7, 0);
        Compare.Close("saveInvStd", var.Select(v => 1 / Math.Sqrt(v + BatchNorm.DefaultEps)).ToArray(), p.SaveInvStd.ToArray(), 1e-4, 0);
        // x - mean loses float32 digits at 1000 (spacing 6e-5), whatever the statistics: ~2e-4 in y.
        Compare.Close("y", BatchNorm.Reference.ForwardTraining(x, n, c, s, p.Gamma, p.Beta, BatchNorm.DefaultEps), ty.ToArray(), 0, 5e-4);
    }

    /// <summary>Every CPU vector width this machine accelerates (scalar always), on shapes whose segments and rows end in partial vectors.</summary>
    public static TheoryData<string, int[]> CpuWidthCases()
    {
        var d = new TheoryData<string, int[]>();
        foreach (var width in Enum.GetValues<BatchNorm.CpuWidth>())
            if (width != BatchNorm.CpuWidth.Auto && BatchNorm.IsAccelerated(width))
            {
                d.Add(width.ToString(), [2, 3, 7, 9]);   // S = 63
                d.Add(width.ToString(), [5, 37]);        // rows of 37 channels
            }
        return d;
    }

    [Theory, MemberData(nameof(CpuWidthCases))]
    public void Cpu_widths_match_float64_with_and_without_relu(string widthName, int[] shape)
    {
        var width = Enum.Parse<BatchNorm.CpuWidth>(widthName);
        var dev = TestDevices.Get("cpu");
        var (n, c, s) = Layout(shape);
        int count = n * c * s;
        var x = Input(50, shape);
        var dy = TestData.RoundToFloat(TestData.Uniform(51, count));
        var previous = BatchNorm.CpuWidthOnThisThread;
        BatchNorm.CpuWidthOnThisThread = width;
        try
        {
            foreach (bool relu in new[] { false, true })
            {
                using var p = new Params(dev, c, 52);
                using var tx = TestData.Tensor(dev, x, shape);
                using var ty = dev.Zeros(shape);
                using var tdy = TestData.Tensor(dev, dy, shape);
                using var tdx = dev.Zeros(shape);
                using var tdg = dev.Zeros(c);
                using var tdb = dev.Zeros(c);
                string tag = relu ? " (relu)" : "";
                BatchNorm.ForwardTraining(tx, p.G, p.B, p.RM, p.RV, ty, p.SaveMean, p.SaveInvStd, relu: relu);
                var z = BatchNorm.Reference.ForwardTraining(x, n, c, s, p.Gamma, p.Beta, BatchNorm.DefaultEps);
                var y = ty.ToArray();
                Compare.Close("y" + tag, relu ? Relu64(z) : z, y, 1e-5, 5e-5);
                BatchNorm.Backward(tx, p.G, p.SaveMean, p.SaveInvStd, tdy, tdx, tdg, tdb, relu ? ty : null);
                // The mask is the kernel's own output, so a value at the kink cannot flip it.
                var masked = relu ? dy.Select((v, k) => y[k] > 0 ? v : 0).ToArray() : dy;
                var (dx, dgamma, dbeta) = ClosedFormBackward(x, masked, n, c, s, p.Gamma);
                Compare.Close("dbeta" + tag, dbeta, tdb.ToArray(), 1e-4, 1e-4);
                Compare.Close("dgamma" + tag, dgamma, tdg.ToArray(), 1e-4, 1e-4);
                Compare.Close("dx" + tag, dx, tdx.ToArray(), 1e-4, 1e-5);

                using var ti = dev.Zeros(shape);
                BatchNorm.ForwardInference(tx, p.G, p.B, p.RM, p.RV, ti, relu: relu);
                var rm = TestData.ToDouble(p.RM.ToArray());
                var rv = TestData.ToDouble(p.RV.ToArray());
                var zi = BatchNorm.Reference.ForwardInference(x, n, c, s, p.Gamma, p.Beta, rm, rv, BatchNorm.DefaultEps);
                Compare.Close("inference y" + tag, relu ? Relu64(zi) : zi, ti.ToArray(), 1e-5, 1e-4);
            }
        }
        finally { BatchNorm.CpuWidthOnThisThread = previous; }
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
