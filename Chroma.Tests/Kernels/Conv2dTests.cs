using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;
using Case = Chroma.Kernels.Harness.Conv2dOp.Shape;

namespace Chroma.Tests.Kernels;

public class Conv2dTests
{
    // The cases are declared once in the op harness (Chroma.Kernels/Harness/Conv2dOp.cs): odd H, W so the last row
    // and column are edge cases, strides, padding 0, dilation, groups, depthwise, no bias, no dx. (Its cases that force a
    // CPU algorithm run below and in WinogradTests, on every vector width.)
    static readonly Dictionary<string, OpCase> Cases = Conv2dOp.PlainCases.ToDictionary(c => c.Name);

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
            foreach (var c in new[] { "k3s1p1", "k3s2p1", "k1s1p0", "k3s2p1d3", "k3s1p1g2", "k3s2p2d2g4", "k1s1p0g2" })
                foreach (var mode in new[] { "rows", "images" })
                    d.Add(p, c, mode);
        return d;
    }

    /// <summary>The harness's check mode: forward (over a sentinel-filled y) against the float64 reference.</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Forward_matches_reference(string path, string name) => CheckForward(TestDevices.Get(path), Cases[name], seed: 10);

    /// <summary>
    /// The harness's grad mode: backward (accumulating onto non-zero gradients) against the float64 backward
    /// reference, then against central differences of the float64 forward.
    /// </summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Backward_matches_finite_differences(string path, string name) => CheckBackward(TestDevices.Get(path), Cases[name], seed: 20);

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    /// <summary>The float64 backward reference (which CheckBackward also compares with) against central differences of the float64 forward.</summary>
    [Theory, MemberData(nameof(CaseNames))]
    public void Reference_backward_matches_central_differences(string name)
    {
        var c = Case.Of(Cases[name]);
        var x = TestData.Uniform(60, c.XCount);
        var w = TestData.Uniform(61, c.WCount);
        var b = TestData.Uniform(62, c.Cout);
        var dy = TestData.Uniform(63, c.YCount);
        var (dx, dw, db) = c.ReferenceBackward(x, w, dy);
        GradCheck.Check($"conv reference backward {c}", i => c.Reference(i[0], i[1], i[2]), [x, w, b], dy,
            [TestData.ToFloat(dx), TestData.ToFloat(dw), TestData.ToFloat(db)], rtol: 1e-6, atol: 1e-6);
    }

    /// <summary>
    /// The grouped reference is G independent convolutions: group g of a grouped convolution equals a plain
    /// convolution of input channels [g Cin/G, (g+1) Cin/G) with weight rows [g Cout/G, (g+1) Cout/G).
    /// </summary>
    [Fact]
    public void Grouped_reference_is_independent_convolutions_of_channel_slices()
    {
        var c = Case.Of(Cases["k3s2p2d2g4"]) with { Cout = 8 };
        var x = TestData.Uniform(70, c.XCount);
        var w = TestData.Uniform(71, c.WCount);
        var b = TestData.Uniform(72, c.Cout);
        var y = c.Reference(x, w, b);
        int hw = c.H * c.W, howo = c.Ho * c.Wo, wRow = c.GroupCin * c.K * c.K;
        for (int g = 0; g < c.Groups; g++)
        {
            var xg = new double[c.N * c.GroupCin * hw];
            for (int n = 0; n < c.N; n++)
                Array.Copy(x, (n * c.Cin + g * c.GroupCin) * hw, xg, n * c.GroupCin * hw, c.GroupCin * hw);
            var wg = w.AsSpan(g * c.GroupCout * wRow, c.GroupCout * wRow).ToArray();
            var bg = b.AsSpan(g * c.GroupCout, c.GroupCout).ToArray();
            var yg = Conv2d.Reference.Forward(xg, c.N, c.GroupCin, c.H, c.W, wg, bg, c.GroupCout, c.K, c.Stride, c.Pad, c.Dilation, 1);
            for (int n = 0; n < c.N; n++)
                Assert.Equal(yg.AsSpan(n * c.GroupCout * howo, c.GroupCout * howo).ToArray(),
                    y.AsSpan((n * c.Cout + g * c.GroupCout) * howo, c.GroupCout * howo).ToArray());
        }
    }

    /// <summary>
    /// Shrinks the column budget so a batch is split into chunks of output rows ("rows": 2 rows of
    /// one image per chunk, the last chunk shorter) or of whole images ("images": 2 images per chunk,
    /// N = 3 so the last chunk has one), then checks forward and backward as above.
    /// </summary>
    [Theory, MemberData(nameof(ChunkedCases))]
    public void Chunked_forward_and_backward_match(string path, string name, string mode)
    {
        var batch3 = Cases[name].With("N", 3);
        var c = Case.Of(batch3);
        int ckk = c.GroupCin * c.K * c.K;   // one group's column rows
        long budget = mode == "rows" ? 2L * ckk * c.Wo : 2L * ckk * c.Ho * c.Wo;
        Assert.Equal(mode == "rows" ? (1, 2) : (2, c.Ho), Conv2d.PlanChunks(c.Args, budget, 0));

        long cpuBudget = Conv2d.CpuColumnBudget;
        int cpuMin = Conv2d.CpuMinColumns;
        try
        {
            Conv2d.CpuColumnBudget = budget; Conv2d.CpuMinColumns = 0;
            var dev = TestDevices.Get(path);
            CheckForward(dev, batch3, seed: 30);
            CheckBackward(dev, batch3, seed: 40);
        }
        finally
        {
            Conv2d.CpuColumnBudget = cpuBudget; Conv2d.CpuMinColumns = cpuMin;
        }
    }

    static void CheckForward(Device dev, OpCase c, int seed)
    {
        using var run = Conv2dOp.Instance.Prepare(dev, c, seed);
        HarnessAssert.Passes(OpHarness.Check(run));
    }

    static void CheckBackward(Device dev, OpCase c, int seed)
    {
        using var run = Conv2dOp.Instance.Prepare(dev, c, seed);
        HarnessAssert.Passes(OpHarness.Grad(run));
    }

    /// <summary>
    /// The CPU's direct packed product (the forward of every non-Winograd layer), forced, on every vector width the
    /// machine accelerates: the harness's "direct." cases (more than one k block, Cout not a multiple of the 6-row
    /// micro-tile, a short last panel of output pixels, padding on every side, groups, dilation, depthwise).
    /// </summary>
    public static TheoryData<string, string> DirectCases()
    {
        var d = new TheoryData<string, string>();
        foreach (var k in CpuKernelSize.Accelerated())
            foreach (var c in Conv2dOp.Instance.CheckCases.Where(c => c.Name.StartsWith("direct.", StringComparison.Ordinal)))
                d.Add(c.Name, k.ToString());
        return d;
    }

    [Theory, MemberData(nameof(DirectCases))]
    public void Direct_forward_matches_reference_on_every_width(string name, string kernel)
    {
        var c = CpuKernelSize.With(Conv2dOp.Instance.Case(name), Enum.Parse<Gemm.CpuKernel>(kernel));
        CheckForward(TestDevices.Get("cpu"), c, seed: 50);
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
        // PyTorch: floor((H + 2p - d(k - 1) - 1) / s) + 1
        Assert.Equal(224, Conv2d.OutputSize(224, 3, 1, 1, dilation: 1));
        Assert.Equal(224, Conv2d.OutputSize(224, 3, 1, 2, dilation: 2));
        Assert.Equal(220, Conv2d.OutputSize(224, 3, 1, 0, dilation: 2));
        Assert.Equal(4, Conv2d.OutputSize(11, 3, 2, 1, dilation: 3));   // (11 + 2 - 6 - 1) / 2 + 1
        Assert.Equal(3, Conv2d.OutputSize(11, 5, 1, 0, dilation: 2));   // the dilated 5x5 spans 9 pixels
        Assert.Equal(1, Conv2d.OutputSize(5, 3, 1, 0, dilation: 2));    // exactly the span
        Assert.Contains("dilated by 2 (5)", Assert.Throws<ArgumentException>(() => Conv2d.OutputSize(4, 3, 1, 0, dilation: 2)).Message);
        Assert.Contains("dilation", Assert.Throws<ArgumentException>(() => Conv2d.OutputSize(7, 3, 1, 1, dilation: 0)).Message);
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

        // Dilation and groups: x has 3 channels, so 2 groups do not divide it; w [4, 3, 3, 3] is a one-group weight.
        using var x4 = dev.Zeros(2, 4, 7, 9);
        using var wg2 = dev.Zeros(4, 2, 3, 3);
        using var wg3 = dev.Zeros(6, 2, 3, 3);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, wg2, b, y, 1, 1, 1, 2));
        Assert.Contains("3 channels, not a multiple of 2 groups", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x4, w, b, y, 1, 1, 1, 2));
        Assert.Contains("expects 3 input channels per group", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x4, wg3, null, y, 1, 1, 1, 4));
        Assert.Contains("6 output channels, not a multiple of 4 groups", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x4, wg2, b, y, 1, 1, 1, 0));
        Assert.Contains("groups must be at least 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, w, b, y, 1, 1, 0, 1));
        Assert.Contains("dilation must be at least 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, w, b, y, 1, 1, 2, 1)); // dilation 2, padding 1 gives [2, 4, 5, 7]
        Assert.Contains("[2, 4, 5, 7]", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Forward(x, w, b, y, 1, 0, 4, 1)); // the dilated kernel spans 9 > 7 rows
        Assert.Contains("dilated by 4 (9x9)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Conv2d.Backward(x4, wg2, y, null, w, null, 1, 1, 1, 2));
        Assert.Contains("weight gradient dw must have shape [4, 2, 3, 3]", e.Message);
    }
}
