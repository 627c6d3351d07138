using Chroma.Kernels;
using Xunit;

namespace Chroma.Tests.Kernels;

public class Conv2dTests
{
    /// <summary>One convolution under test; odd H, W so the last row and column are edge cases.</summary>
    public sealed record Case(int N, int Cin, int Cout, int H, int W, int K, int Stride, int Pad, bool Bias, bool InputGradient)
    {
        public int Ho => Conv2d.OutputSize(H, K, Stride, Pad);
        public int Wo => Conv2d.OutputSize(W, K, Stride, Pad);
        public int[] XShape => [N, Cin, H, W];
        public int[] WShape => [Cout, Cin, K, K];
        public int[] YShape => [N, Cout, Ho, Wo];
        public int XCount => N * Cin * H * W;
        public int WCount => Cout * Cin * K * K;
        public int YCount => N * Cout * Ho * Wo;

        public double[] Reference(double[] x, double[] w, double[]? b) =>
            Conv2d.Reference.Forward(x, N, Cin, H, W, w, b, Cout, K, Stride, Pad);
    }

    static readonly Dictionary<string, Case> Cases = new()
    {
        ["k3s1p1"] = new(2, 3, 4, 7, 9, 3, 1, 1, Bias: true, InputGradient: true),
        ["k3s2p1"] = new(2, 3, 4, 7, 9, 3, 2, 1, Bias: true, InputGradient: true),
        ["k1s1p0"] = new(2, 3, 4, 7, 9, 1, 1, 0, Bias: true, InputGradient: true),
        // stride 2 without padding leaves the last input row and column unread: their dx must stay 0
        ["k3s2p0_no_bias_no_dx"] = new(2, 3, 4, 7, 9, 3, 2, 0, Bias: false, InputGradient: false),
        ["k5s2p2"] = new(2, 3, 4, 7, 9, 5, 2, 2, Bias: true, InputGradient: true),
        // rows wide enough for the CPU's vectorized stride-2 gather (8 outputs from 16 inputs) plus a scalar tail
        ["k3s2p1_wide"] = new(1, 2, 3, 5, 41, 3, 2, 1, Bias: true, InputGradient: true),
    };

    public static TheoryData<string, string> PathsAndCases()
    {
        var d = new TheoryData<string, string>();
        foreach (var p in new[] { "cpu", "gpu" })
            foreach (var c in Cases.Keys) d.Add(p, c);
        return d;
    }

    public static TheoryData<string, string, string> ChunkedCases()
    {
        var d = new TheoryData<string, string, string>();
        // Only the CPU path chunks: the GPU's implicit-GEMM kernels read x through the im2col map and need no column buffer.
        foreach (var p in new[] { "cpu" })
            foreach (var c in new[] { "k3s1p1", "k3s2p1", "k1s1p0" })
                foreach (var mode in new[] { "rows", "images" })
                    d.Add(p, c, mode);
        return d;
    }

    [Theory, MemberData(nameof(PathsAndCases))]
    public void Forward_matches_reference(string path, string name) => CheckForward(TestDevices.Get(path), Cases[name], seed: 10);

    [Theory, MemberData(nameof(PathsAndCases))]
    public void Backward_matches_finite_differences(string path, string name) => CheckBackward(TestDevices.Get(path), Cases[name], seed: 20);

    /// <summary>
    /// Shrinks the column budget so a batch is split into chunks of output rows ("rows": 2 rows of
    /// one image per chunk, the last chunk shorter) or of whole images ("images": 2 images per chunk,
    /// N = 3 so the last chunk has one), then checks forward and backward as above.
    /// </summary>
    [Theory, MemberData(nameof(ChunkedCases))]
    public void Chunked_forward_and_backward_match(string path, string name, string mode)
    {
        var c = Cases[name] with { N = 3 };
        int ckk = c.Cin * c.K * c.K;
        long budget = mode == "rows" ? 2L * ckk * c.Wo : 2L * ckk * c.Ho * c.Wo;
        var args = new Conv2d.ConvArgs(c.N, c.Cin, c.H, c.W, c.Cout, c.K, c.Stride, c.Pad, c.Ho, c.Wo, 0, c.N, 0, c.Ho);
        Assert.Equal(mode == "rows" ? (1, 2) : (2, c.Ho), Conv2d.PlanChunks(args, budget, 0));

        long cpuBudget = Conv2d.CpuColumnBudget;
        int cpuMin = Conv2d.CpuMinColumns;
        try
        {
            Conv2d.CpuColumnBudget = budget; Conv2d.CpuMinColumns = 0;
            var dev = TestDevices.Get(path);
            CheckForward(dev, c, seed: 30);
            CheckBackward(dev, c, seed: 40);
        }
        finally
        {
            Conv2d.CpuColumnBudget = cpuBudget; Conv2d.CpuMinColumns = cpuMin;
        }
    }

    static void CheckForward(Device dev, Case c, int seed)
    {
        var x = TestData.RoundToFloat(TestData.Uniform(seed, c.XCount));
        var w = TestData.RoundToFloat(TestData.Uniform(seed + 1, c.WCount));
        var b = c.Bias ? TestData.RoundToFloat(TestData.Uniform(seed + 2, c.Cout)) : null;
        using var tx = TestData.Tensor(dev, x, c.XShape);
        using var tw = TestData.Tensor(dev, w, c.WShape);
        using var tb = b is null ? null : TestData.Tensor(dev, b, c.Cout);
        using var ty = TestData.Tensor(dev, Enumerable.Repeat(7.0, c.YCount).ToArray(), c.YShape); // must be overwritten
        Conv2d.Forward(tx, tw, tb, ty, c.Stride, c.Pad);
        // float32 sums of at most Cin*K*K = 75 products of values in [-1, 1]
        Compare.Close($"conv forward {c}", c.Reference(x, w, b), ty.ToArray(), 1e-5, 1e-5);
    }

    static void CheckBackward(Device dev, Case c, int seed)
    {
        var x = TestData.RoundToFloat(TestData.Uniform(seed, c.XCount));
        var w = TestData.RoundToFloat(TestData.Uniform(seed + 1, c.WCount));
        var b = TestData.RoundToFloat(TestData.Uniform(seed + 2, c.Cout));
        var dy = TestData.RoundToFloat(TestData.Uniform(seed + 3, c.YCount));
        using var tx = TestData.Tensor(dev, x, c.XShape);
        using var tw = TestData.Tensor(dev, w, c.WShape);
        using var tdy = TestData.Tensor(dev, dy, c.YShape);
        // backward accumulates: start every gradient at a known non-zero value and subtract it after
        const float dxStart = 0.5f, dwStart = -0.25f, dbStart = 0.75f;
        using var tdx = c.InputGradient ? TestData.Tensor(dev, Enumerable.Repeat((double)dxStart, c.XCount).ToArray(), c.XShape) : null;
        using var tdw = TestData.Tensor(dev, Enumerable.Repeat((double)dwStart, c.WCount).ToArray(), c.WShape);
        using var tdb = c.Bias ? TestData.Tensor(dev, Enumerable.Repeat((double)dbStart, c.Cout).ToArray(), c.Cout) : null;

        Conv2d.Backward(tx, tw, tdy, tdx, tdw, tdb, c.Stride, c.Pad);

        float[]? dx = tdx?.ToArray().Select(v => v - dxStart).ToArray();
        float[] dw = tdw.ToArray().Select(v => v - dwStart).ToArray();
        float[]? db = tdb?.ToArray().Select(v => v - dbStart).ToArray();
        if (c.Bias)
            GradCheck.Check($"conv backward {c}", i => c.Reference(i[0], i[1], i[2]), [x, w, b], dy, [dx, dw, db]);
        else
            GradCheck.Check($"conv backward {c}", i => c.Reference(i[0], i[1], null), [x, w], dy, [dx, dw]);
    }

    /// <summary>
    /// The CPU's direct packed product (the forward of every non-Winograd layer) on every vector width the
    /// machine accelerates: more than one k block (Cin*K*K over 192), Cout not a multiple of the 6-row
    /// micro-tile, a short last panel of output pixels, padding on every side.
    /// </summary>
    public static TheoryData<string, string> DirectCases()
    {
        var d = new TheoryData<string, string>();
        foreach (var k in new[] { Gemm.CpuKernel.Vector512, Gemm.CpuKernel.Vector256, Gemm.CpuKernel.Vector128, Gemm.CpuKernel.Scalar })
            if (Gemm.IsAccelerated(k))
                foreach (var c in new[] { "k3s2p1_blocks", "k1s1p0_blocks", "k5s2p2" }) d.Add(c, k.ToString());
        return d;
    }

    static readonly Dictionary<string, Case> DirectShapes = new()
    {
        ["k3s2p1_blocks"] = new(2, 30, 13, 17, 23, 3, 2, 1, Bias: true, InputGradient: true),
        ["k1s1p0_blocks"] = new(1, 200, 7, 5, 9, 1, 1, 0, Bias: true, InputGradient: true),
        ["k5s2p2"] = Cases["k5s2p2"],
    };

    [Theory, MemberData(nameof(DirectCases))]
    public void Direct_forward_matches_reference_on_every_width(string name, string kernel)
    {
        var c = DirectShapes[name];
        var dev = TestDevices.Get("cpu");
        var x = TestData.RoundToFloat(TestData.Uniform(50, c.XCount));
        var w = TestData.RoundToFloat(TestData.Uniform(51, c.WCount));
        var b = TestData.RoundToFloat(TestData.Uniform(52, c.Cout));
        using var tx = TestData.Tensor(dev, x, c.XShape);
        using var tw = TestData.Tensor(dev, w, c.WShape);
        using var tb = TestData.Tensor(dev, b, c.Cout);
        using var ty = TestData.Tensor(dev, Enumerable.Repeat(7.0, c.YCount).ToArray(), c.YShape);
        Conv2d.Forward(tx, tw, tb, ty, c.Stride, c.Pad, Conv2d.CpuAlgorithm.DirectGemm, Enum.Parse<Gemm.CpuKernel>(kernel));
        Compare.Close($"direct conv {c} {kernel}", c.Reference(x, w, b), ty.ToArray(), 1e-5, 1e-4);
    }

    [Fact]
    public void Output_size_follows_the_formula()
    {
        Assert.Equal(112, Conv2d.OutputSize(224, 3, 2, 1));
        Assert.Equal(224, Conv2d.OutputSize(224, 3, 1, 1));
        Assert.Equal(4, Conv2d.OutputSize(7, 3, 2, 1));
        Assert.Equal(5, Conv2d.OutputSize(9, 3, 2, 1));
        Assert.Equal(3, Conv2d.OutputSize(7, 3, 2, 0));
        Assert.Equal(56, Conv2d.OutputSize(56, 1, 1, 0));
        Assert.Contains("smaller than the kernel", Assert.Throws<ArgumentException>(() => Conv2d.OutputSize(2, 5, 1, 1)).Message);
        Assert.Contains("stride", Assert.Throws<ArgumentException>(() => Conv2d.OutputSize(7, 3, 0, 1)).Message);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Bad_shapes_are_rejected_with_clear_messages(string path)
    {
        var dev = TestDevices.Get(path);
        using var x = dev.Zeros(2, 3, 7, 9);
        using var w = dev.Zeros(4, 3, 3, 3);
        using var b = dev.Zeros(4);
        using var y = dev.Zeros(2, 4, 7, 9);
        using var wrongCin = dev.Zeros(4, 2, 3, 3);
        using var wrongY = dev.Zeros(2, 4, 7, 8);
        using var wrongB = dev.Zeros(5);
        using var nonSquare = dev.Zeros(4, 3, 3, 1);
        using var wrongDx = dev.Zeros(2, 3, 9, 7);
        using var dw = dev.Zeros(4, 3, 3, 3);

        var e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, wrongCin, b, y, 1, 1));
        Assert.Contains("2 input channels", e.Message);
        Assert.Contains("has 3", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, w, b, wrongY, 1, 1));
        Assert.Contains("output y must have shape [2, 4, 7, 9], got [2, 4, 7, 8]", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, w, b, y, 2, 1)); // stride 2 gives [2, 4, 4, 5]
        Assert.Contains("[2, 4, 4, 5]", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, w, wrongB, y, 1, 1));
        Assert.Contains("bias b", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, nonSquare, b, y, 1, 1));
        Assert.Contains("square", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, w, b, y, 0, 1));
        Assert.Contains("stride", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Backward(x, wrongCin, y, null, dw, null, 1, 1));
        Assert.Contains("input channels", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Backward(x, w, y, wrongDx, dw, null, 1, 1));
        Assert.Contains("input gradient dx", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Backward(x, w, wrongY, null, dw, null, 1, 1));
        Assert.Contains("output gradient dy", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Backward(x, w, y, null, wrongCin, null, 1, 1));
        Assert.Contains("weight gradient dw", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Backward(x, w, y, null, dw, wrongB, 1, 1));
        Assert.Contains("bias gradient db", e.Message);
    }
}
