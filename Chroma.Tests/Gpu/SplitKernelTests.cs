using Chroma.Kernels;
using Chroma.Tests.Kernels;
using Xunit;

namespace Chroma.Tests.Gpu;

/// <summary>
/// The split forms of the GPU kernels (split-K products, the implicit-GEMM convolution's split depth
/// and ordered reduction, split channel reductions, the device-side losses) against the float64
/// references, on the test GPU (ILGPU's CPU accelerator in CI, PoCL's OpenCL device in the second CI
/// run, CUDA with CHROMA_TEST_GPU=cuda). The test GPU's own plans rarely split (2 simulated
/// multiprocessors), so every test runs under <see cref="GpuDevice.PlanAs"/> a target with the device's
/// group size and 132 multiprocessors, as an H100's plans would split, and checks that its shape does split.
/// </summary>
public sealed class SplitKernelTests
{
    static GpuDevice Gpu => (GpuDevice)TestDevices.Get("gpu");

    /// <summary>
    /// An H100-sized plan (264 groups to fill) with groups of at most 16 threads, which every test GPU
    /// runs (the simulator's limit; PoCL's CPU device allows 4096): small groups keep the test shapes
    /// small while still split, and make the plans the same on both test GPUs.
    /// </summary>
    static GpuTarget Wide(GpuDevice gpu) => new("132-SM target, 16-thread groups", 132, Math.Min(16, gpu.Target.MaxGroupSize), gpu.Target.WarpSize);

    public static TheoryData<bool, bool> Transposes => new() { { false, false }, { false, true }, { true, false }, { true, true } };

    [Theory, MemberData(nameof(Transposes))]
    public void Split_K_product_matches_reference(bool transA, bool transB)
    {
        var gpu = Gpu;
        const int m = 5, n = 7, k = 301;   // k not a multiple of the 16-deep stages
        var wide = Wide(gpu);
        var plan = Gemm.PlanGpu(wide, transA, transB, m, n, k);
        Assert.True(plan.Splits > 1, $"plan {plan} does not split");
        Assert.NotNull(plan.Reduce);
        var a = TestData.RoundToFloat(TestData.Uniform(1, m * k));
        var b = TestData.RoundToFloat(TestData.Uniform(2, k * n));
        var c = TestData.RoundToFloat(TestData.Uniform(3, m * n));
        using var ta = TestData.Tensor(gpu, a, transA ? [k, m] : [m, k]);
        using var tb = TestData.Tensor(gpu, b, transB ? [n, k] : [k, n]);
        using var tc = TestData.Tensor(gpu, c, m, n);
        using (gpu.PlanAs(wide)) Gemm.Multiply(ta, tb, tc, transA, transB, alpha: 0.75f, beta: -0.5f);
        var expected = Gemm.Reference.Multiply(transA, transB, m, n, k, 0.75, a, b, -0.5, c);
        Compare.Close("split-K gemm", expected, tc.ToArray(), 1e-5, 2e-6 * k);
    }

    [Fact]
    public void Split_K_is_deterministic()
    {
        var gpu = Gpu;
        const int m = 6, n = 9, k = 700;
        using var ta = TestData.Tensor(gpu, TestData.Uniform(4, m * k), m, k);
        using var tb = TestData.Tensor(gpu, TestData.Uniform(5, k * n), k, n);
        using var c1 = gpu.Zeros(m, n);
        using var c2 = gpu.Zeros(m, n);
        using (gpu.PlanAs(Wide(gpu)))
        {
            Gemm.Multiply(ta, tb, c1);
            Gemm.Multiply(ta, tb, c2);
        }
        Assert.Equal(c1.ToArray(), c2.ToArray());
    }

    /// <summary>Shapes whose forward, input-gradient and weight-gradient products all split on the wide target.</summary>
    public static TheoryData<string> ConvCases => new() { "k3s1p1", "k3s2p1", "k1s1p0", "k3s1p2d2g2", "k3s2p1d3g2" };

    static readonly Dictionary<string, Chroma.Kernels.Harness.Conv2dOp.Shape> Convs = new()
    {
        ["k3s1p1"] = new(2, 8, 8, 15, 13, 3, 1, 1, Bias: true, InputGradient: true),
        ["k3s2p1"] = new(4, 8, 9, 9, 7, 3, 2, 1, Bias: true, InputGradient: true),
        ["k1s1p0"] = new(3, 70, 66, 5, 7, 1, 1, 0, Bias: true, InputGradient: true),
        // two groups of 8 channels (depths of 72 and more split), dilated: partials [G, splits, M, N], reduced per group
        ["k3s1p2d2g2"] = new(2, 16, 16, 11, 9, 3, 1, 2, Bias: true, InputGradient: true, Dilation: 2, Groups: 2),
        ["k3s2p1d3g2"] = new(4, 16, 18, 13, 11, 3, 2, 1, Bias: true, InputGradient: true, Dilation: 3, Groups: 2),
    };

    static Conv2d.ConvArgs Args(Chroma.Kernels.Harness.Conv2dOp.Shape c) => c.Args;

    [Theory, MemberData(nameof(ConvCases))]
    public void Implicit_gemm_convolution_with_split_depth_matches_reference(string name)
    {
        var gpu = Gpu;
        var c = Convs[name];
        var wide = Wide(gpu);
        foreach (var mode in new[] { Conv2d.GpuMode.Forward, Conv2d.GpuMode.InputGradient, Conv2d.GpuMode.WeightGradient })
        {
            var plan = Conv2d.PlanGpu(wide, Args(c), mode);
            Assert.True(plan.Splits > 1, $"{name} {mode}: plan {plan} does not split");
            // Dilation 1 with one group keeps the plain kernel; the rest take the general one, grid z = groups x splits.
            bool plain = c.Dilation == 1 && c.Groups == 1;
            Assert.Equal(plain ? "Conv2d.ImplicitGemmKernel" : "Conv2d.GeneralImplicitGemmKernel", plan.Product.Kernel);
            Assert.Equal(c.Groups * plan.Splits, plan.Product.Grid.Z);
        }
        // The bias gradient splits where there are values enough (at least 4 per thread of each group).
        if (name == "k3s1p1") Assert.True(Conv2d.PlanGpuBias(wide, Args(c)).Splits > 1, $"{name}: the bias gradient does not split");

        var x = TestData.RoundToFloat(TestData.Uniform(10, c.XCount));
        var w = TestData.RoundToFloat(TestData.Uniform(11, c.WCount));
        var b = TestData.RoundToFloat(TestData.Uniform(12, c.Cout));
        var dy = TestData.RoundToFloat(TestData.Uniform(13, c.YCount));
        using var tx = TestData.Tensor(gpu, x, c.XShape);
        using var tw = TestData.Tensor(gpu, w, c.WShape);
        using var tb = TestData.Tensor(gpu, b, c.Cout);
        using var ty = TestData.Tensor(gpu, Enumerable.Repeat(7.0, c.YCount).ToArray(), c.YShape);
        using var tdy = TestData.Tensor(gpu, dy, c.YShape);
        const float start = 0.5f; // backward accumulates into the gradients
        using var tdx = TestData.Tensor(gpu, Enumerable.Repeat((double)start, c.XCount).ToArray(), c.XShape);
        using var tdw = TestData.Tensor(gpu, Enumerable.Repeat((double)start, c.WCount).ToArray(), c.WShape);
        using var tdb = TestData.Tensor(gpu, Enumerable.Repeat((double)start, c.Cout).ToArray(), c.Cout);
        using (gpu.PlanAs(wide))
        {
            Conv2d.Forward(tx, tw, tb, ty, c.Stride, c.Pad, c.Dilation, c.Groups, relu: true);
            Conv2d.Backward(tx, tw, tdy, tdx, tdw, tdb, c.Stride, c.Pad, c.Dilation, c.Groups);
        }
        int depth = c.GroupCin * c.K * c.K;
        var expected = c.Reference(x, w, b).Select(v => Math.Max(v, 0)).ToArray();
        Compare.Close($"{name} forward + bias + ReLU", expected, ty.ToArray(), 1e-5, 2e-6 * depth);
        var (dx, dw, db) = c.ReferenceBackward(x, w, dy);
        Compare.Close($"{name} dx", dx.Select(v => v + start).ToArray(), tdx.ToArray(), 1e-5, 2e-6 * c.GroupCout * c.K * c.K);
        Compare.Close($"{name} dw", dw.Select(v => v + start).ToArray(), tdw.ToArray(), 1e-5, 2e-6 * c.N * c.Ho * c.Wo);
        Compare.Close($"{name} db", db.Select(v => v + start).ToArray(), tdb.ToArray(), 1e-5, 2e-6 * c.N * c.Ho * c.Wo);
    }

    /// <summary>The float64 backward reference the test above uses, against central differences of the float64 forward.</summary>
    [Fact]
    public void Convolution_backward_reference_matches_central_differences()
    {
        var c = new Chroma.Kernels.Harness.Conv2dOp.Shape(2, 3, 4, 5, 7, 3, 2, 1, Bias: true, InputGradient: true);
        var x = TestData.Uniform(20, c.XCount);
        var w = TestData.Uniform(21, c.WCount);
        var b = TestData.Uniform(22, c.Cout);
        var dy = TestData.Uniform(23, c.YCount);
        var (dx, dw, db) = Conv2d.Reference.Backward(x, c.N, c.Cin, c.H, c.W, w, dy, c.Cout, c.K, c.Stride, c.Pad);
        GradCheck.Check("conv reference backward", i => c.Reference(i[0], i[1], i[2]), [x, w, b], dy,
            [TestData.ToFloat(dx), TestData.ToFloat(dw), TestData.ToFloat(db)], rtol: 1e-6, atol: 1e-6);
    }

    [Fact]
    public void Implicit_gemm_split_depth_is_deterministic()
    {
        var gpu = Gpu;
        var c = Convs["k3s1p1"];
        using var tx = TestData.Tensor(gpu, TestData.Uniform(30, c.XCount), c.XShape);
        using var tw = TestData.Tensor(gpu, TestData.Uniform(31, c.WCount), c.WShape);
        using var tdy = TestData.Tensor(gpu, TestData.Uniform(32, c.YCount), c.YShape);
        float[] WeightGradient()
        {
            using var dw = gpu.Zeros(c.WShape);
            using (gpu.PlanAs(Wide(gpu))) Conv2d.Backward(tx, tw, tdy, null, dw, null, c.Stride, c.Pad);
            return dw.ToArray();
        }
        Assert.Equal(WeightGradient(), WeightGradient());
    }

    [Theory, InlineData(false), InlineData(true)]
    public void Batch_norm_with_split_reductions_matches_reference(bool relu)
    {
        var gpu = Gpu;
        const int n = 3, c = 5, h = 15, w = 20, s = h * w;
        var wide = Wide(gpu);
        Assert.True(BatchNorm.PlanGpu(wide, n, c, s, backward: false).Split.Splits > 1);
        var x = TestData.RoundToFloat(TestData.Uniform(40, n * c * s, -1, 3));   // a mean far from 0
        var gamma = TestData.RoundToFloat(TestData.Uniform(41, c, 0.5, 1.5));
        var beta = TestData.RoundToFloat(TestData.Uniform(42, c));
        var dy = TestData.RoundToFloat(TestData.Uniform(43, n * c * s));
        using var tx = TestData.Tensor(gpu, x, n, c, h, w);
        using var tg = TestData.Tensor(gpu, gamma, c);
        using var tbeta = TestData.Tensor(gpu, beta, c);
        using var rm = gpu.Zeros(c);
        using var rv = TestData.Tensor(gpu, Enumerable.Repeat(1.0, c).ToArray(), c);
        using var ty = gpu.Zeros(n, c, h, w);
        using var mean = gpu.Zeros(c);
        using var invStd = gpu.Zeros(c);
        using var tdy = TestData.Tensor(gpu, dy, n, c, h, w);
        using var tdx = gpu.Zeros(n, c, h, w);
        using var tdg = gpu.Zeros(c);
        using var tdb = gpu.Zeros(c);
        using (gpu.PlanAs(wide))
        {
            BatchNorm.ForwardTraining(tx, tg, tbeta, rm, rv, ty, mean, invStd, relu: relu);
            BatchNorm.Backward(tx, tg, mean, invStd, tdy, tdx, tdg, tdb, relu ? ty : null);
        }
        double[] Forward(double[][] i)
        {
            var y = BatchNorm.Reference.ForwardTraining(i[0], n, c, s, i[1], i[2], BatchNorm.DefaultEps);
            return relu ? y.Select(v => Math.Max(v, 0)).ToArray() : y;
        }
        Compare.Close("batch norm y", Forward([x, gamma, beta]), ty.ToArray(), 1e-5, 5e-5);
        // Central differences step over the ReLU's kink only for outputs within h of 0: none here at h = 1e-5.
        GradCheck.Check($"batch norm backward (relu {relu})", Forward, [x, gamma, beta], dy, [tdx.ToArray(), tdg.ToArray(), tdb.ToArray()]);
    }

    [Fact]
    public void Device_side_mse_matches_reference_and_accumulates()
    {
        var gpu = Gpu;
        const int count = 5003;
        var wide = Wide(gpu);
        Assert.True(MseLoss.PlanGpu(wide, count).Partial.Groups > 1);
        var p = TestData.RoundToFloat(TestData.Uniform(50, count));
        var t = TestData.RoundToFloat(TestData.Uniform(51, count));
        using var tp = TestData.Tensor(gpu, p, count);
        using var tt = TestData.Tensor(gpu, t, count);
        using var loss = TestData.Tensor(gpu, [0.25], 1);
        using (gpu.PlanAs(wide))
        {
            MseLoss.Forward(tp, tt, loss, accumulate: true);
            MseLoss.Forward(tp, tt, loss, accumulate: true);
        }
        Compare.Close("mse accumulated twice", [0.25 + 2 * MseLoss.Reference.Forward(p, t)], loss.ToArray(), 1e-5, 1e-6);
        using (gpu.PlanAs(wide)) MseLoss.Forward(tp, tt, loss);
        Compare.Close("mse", [MseLoss.Reference.Forward(p, t)], loss.ToArray(), 1e-5, 1e-6);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Cross_entropy_with_device_labels_matches_reference(string path)
    {
        var dev = TestDevices.Get(path);
        const int n = 7, c = 11;
        var z = TestData.RoundToFloat(TestData.Uniform(60, n * c, -4, 4));
        int[] labels = [3, 0, 10, 5, 5, 1, 9];
        using var tz = TestData.Tensor(dev, z, n, c);
        using var tq = dev.Zeros(n, c);
        using var tl = dev.Zeros(n);
        using var loss = dev.Zeros(1);
        using var dz = dev.Zeros(n, c);
        SoftmaxCrossEntropy.CopyLabels(labels, c, tl);
        SoftmaxCrossEntropy.Forward(tz, tl, tq, loss);
        SoftmaxCrossEntropy.Backward(tq, tl, dz, 0.5f);
        Compare.Close("cross-entropy", [SoftmaxCrossEntropy.Reference.Forward(z, n, c, labels)], loss.ToArray(), 1e-6, 1e-6);
        GradCheck.Check("cross-entropy backward", i => [SoftmaxCrossEntropy.Reference.Forward(i[0], n, c, labels)], [z], [0.5], [dz.ToArray()]);
        var e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.CopyLabels([0, 1, 2, 3, 4, 5, 11], c, tl));
        Assert.Contains("labels[6] = 11", e.Message);
    }
}
