using Chroma.Kernels;
using Chroma.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace Chroma.Tests.Kernels;

/// <summary>
/// GEMM through the op harness (Chroma.Kernels/Harness/GemmOp.cs: check against the float64 product, grad with dA and
/// dB as two more products against their float64 products and central differences), on both paths, on every CPU
/// micro-kernel width and every GPU kernel; plus what the harness's tensor op does not express: the raw-array and
/// view overloads with offsets and leading dimensions (elements outside the window untouched) and argument checks.
/// </summary>
public class GemmTests
{
    static readonly GemmOp Op = GemmOp.Instance;

    /// <summary>The cases both paths run: odd sizes, partial GPU tiles and CPU blocks, beta 0 over NaN, beta 1, K = 0.</summary>
    public static TheoryData<string, string> PathsAndCases() =>
        HarnessAssert.PathsAndCases(Op, c => !c.Name.StartsWith("blocks.", StringComparison.Ordinal) && !c.Name.StartsWith("kernels.", StringComparison.Ordinal));

    /// <summary>Check mode: C starts as NaN (beta 0) or C0, restored before the product, then against the float64 product.</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Product_matches_reference(string path, string name)
    {
        HarnessAssert.Check(Op, path, name, seed: 10);
    }

    /// <summary>Grad mode: dA and dB (starting at 0.5 and -0.25: backward accumulates) against their float64 products, then central differences.</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Backward_matches_reference_and_finite_differences(string path, string name)
    {
        HarnessAssert.Grad(Op, path, name, seed: 20);
    }

    /// <summary>
    /// Every CPU micro-kernel width this machine accelerates (scalar always, Vector512 only on AVX-512 hardware; Auto,
    /// the widest, too) on the shapes that cross the CPU blocking's edges, every transpose combination.
    /// </summary>
    public static TheoryData<string, string> CpuKernelCases()
    {
        var d = new TheoryData<string, string>();
        foreach (var kernel in CpuKernelSize.Accelerated(withAuto: true))
            foreach (var c in Op.CheckCases.Where(c => c.Name.StartsWith("blocks.", StringComparison.Ordinal)))
                d.Add(kernel.ToString(), c.Name);
        return d;
    }

    [Theory, MemberData(nameof(CpuKernelCases))]
    public void Cpu_kernels_match_reference_across_block_edges(string kernel, string name)
    {
        var c = CpuKernelSize.With(Op.Case(name), Enum.Parse<Gemm.CpuKernel>(kernel));
        using (var run = Op.Prepare(TestDevices.Get("cpu"), c, seed: 30))
            HarnessAssert.Passes(OpHarness.Check(run));
        using (var run = Op.Prepare(TestDevices.Get("cpu"), c, seed: 31))
            HarnessAssert.Passes(OpHarness.Grad(run));
    }

    /// <summary>Every GPU kernel (1: naive, 2: 4x4 tiled, 3: 8x8 tiled), forced, on shapes with partial tiles for both tiled kernels (tiles of 16 and 32 on the simulator).</summary>
    public static TheoryData<string, int> GpuKernelCases()
    {
        var d = new TheoryData<string, int>();
        foreach (var c in Op.CheckCases.Where(c => c.Name.StartsWith("kernels.", StringComparison.Ordinal)))
            for (int kernel = 1; kernel <= 3; kernel++) d.Add(c.Name, kernel);
        return d;
    }

    [Theory, MemberData(nameof(GpuKernelCases))]
    public void Gpu_kernels_match_reference(string name, int kernel)
    {
        var c = GemmOp.WithGpuKernel(Op.Case(name), kernel);
        using (var run = Op.Prepare(TestDevices.Get("gpu"), c, seed: 90))
            HarnessAssert.Passes(OpHarness.Check(run));
        using (var run = Op.Prepare(TestDevices.Get("gpu"), c, seed: 91))
            HarnessAssert.Passes(OpHarness.Grad(run));
    }

    /// <summary>The declared cases cover what the tests above were written for.</summary>
    [Fact]
    public void Cases_cover_beta_zero_beta_one_and_an_empty_inner_dimension()
    {
        Assert.Equal(0, Op.Case("beta0.19x23x260.tn")["beta%"]);
        Assert.Equal((100, 1), (Op.Case("beta1.11x26x40.nt")["beta%"], Op.Case("beta1.11x26x40.nt")["transB"]));
        Assert.Equal(0, Op.Case("empty.5x7x0.nn")["K"]);
        Assert.Equal(36, Op.CheckCases.Count(c => c.Name.StartsWith("blocks.", StringComparison.Ordinal)));
        Assert.Equal("13x21x17 A^T B alpha 0.75 beta 0.5", Op.Describe(Op.Case("small.13x21x17.tn")));
        Assert.Equal(33, Op.BenchCases.Count);
        // w1.mid1, 512 -> 512 channels at 28x28, batch 4: W [512, 512*9] x cols [512*9, 4*28*28]
        var mid1 = Op.Case("w1.mid1");
        Assert.Equal((512, 3136, 4608), (mid1["M"], mid1["N"], mid1["K"]));
    }

    // Gemm.Cpu on windows into larger arrays: offsets, lda > columns of A, ldb, ldc > n.
    // Elements of C outside the window must keep their values.
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Cpu_respects_offsets_and_leading_dimensions(bool transA, bool transB)
    {
        const int m = 29, n = 37, k = 270;
        const int aOff = 5, bOff = 3, cOff = 11, pad = 7;
        int aRows = transA ? k : m, aCols = transA ? m : k, lda = aCols + pad;
        int bRows = transB ? n : k, bCols = transB ? k : n, ldb = bCols + pad + 2;
        int ldc = n + pad;
        var aStore = TestData.ToFloat(TestData.Uniform(70, aOff + aRows * lda));
        var bStore = TestData.ToFloat(TestData.Uniform(71, bOff + bRows * ldb));
        var cStore = TestData.ToFloat(TestData.Uniform(72, cOff + m * ldc));
        var cBefore = (float[])cStore.Clone();

        var a = Window(aStore, aOff, aRows, aCols, lda);
        var b = Window(bStore, bOff, bRows, bCols, ldb);
        var c = Window(cStore, cOff, m, n, ldc);
        var expected = Gemm.Reference.Multiply(transA, transB, m, n, k, 0.5, a, b, 2.0, c);

        Gemm.Cpu(transA, transB, m, n, k, 0.5f, aStore, aOff, lda, bStore, bOff, ldb, 2f, cStore, cOff, ldc);
        Compare.Close("gemm window", expected, TestData.ToFloat(Window(cStore, cOff, m, n, ldc)), 1e-5, 1e-5);
        for (int i = 0; i < cStore.Length; i++)
        {
            int r = (i - cOff) / ldc, col = (i - cOff) % ldc;
            bool inside = i >= cOff && r < m && col < n;
            if (!inside) Assert.True(cStore[i] == cBefore[i], $"C element {i} outside the window changed");
        }
    }

    // Gemm.Gpu on windows: lda, ldb, ldc larger than the stored row lengths.
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void Gpu_respects_leading_dimensions(bool transA, bool transB)
    {
        var gpu = (GpuDevice)TestDevices.Get("gpu");
        const int m = 18, n = 21, k = 19, pad = 3;
        int aRows = transA ? k : m, aCols = transA ? m : k, lda = aCols + pad;
        int bRows = transB ? n : k, bCols = transB ? k : n, ldb = bCols + pad;
        int ldc = n + pad;
        var aStore = TestData.RoundToFloat(TestData.Uniform(80, aRows * lda));
        var bStore = TestData.RoundToFloat(TestData.Uniform(81, bRows * ldb));
        var cStore = TestData.RoundToFloat(TestData.Uniform(82, m * ldc));
        using var ta = TestData.Tensor(gpu, aStore, aRows * lda);
        using var tb = TestData.Tensor(gpu, bStore, bRows * ldb);
        using var tc = TestData.Tensor(gpu, cStore, m * ldc);

        Gemm.Gpu(gpu, transA, transB, m, n, k, 1.5f, ta.View, lda, tb.View, ldb, 0.25f, tc.View, ldc);
        var expected = Gemm.Reference.Multiply(transA, transB, m, n, k, 1.5,
            Window(aStore, 0, aRows, aCols, lda), Window(bStore, 0, bRows, bCols, ldb), 0.25, Window(cStore, 0, m, n, ldc));
        var got = tc.ToArray();
        Compare.Close("gemm gpu window", expected, TestData.ToFloat(Window(TestData.ToDouble(got), 0, m, n, ldc)), 1e-5, 1e-5);
        for (int i = 0; i < m; i++)
            for (int j = n; j < ldc; j++)
                Assert.True(got[i * ldc + j] == (float)cStore[i * ldc + j], $"C padding ({i}, {j}) changed");
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Mismatched_shapes_are_rejected(string path)
    {
        var dev = TestDevices.Get(path);
        using var a = dev.Zeros(3, 4);
        using var b = dev.Zeros(5, 6);
        using var c = dev.Zeros(3, 6);
        using var cWrong = dev.Zeros(3, 5);
        using var b46 = dev.Zeros(4, 6);
        var e = Assert.Throws<ArgumentException>(() => Gemm.Multiply(a, b, c));
        Assert.Contains("inner dimensions", e.Message);
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(a, b46, cWrong));
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(a, b46, c, transA: true));
    }

    [Fact]
    public void Cpu_rejects_arrays_too_small_for_their_matrices()
    {
        var a = new float[12]; var b = new float[20]; var c = new float[15];
        // A [3, 4] with lda 5 needs 2*5 + 4 = 14 elements.
        var e = Assert.Throws<ArgumentException>(() => Gemm.Cpu(false, false, 3, 5, 4, 1f, a, 0, 5, b, 0, 5, 0f, c, 0, 5));
        Assert.Contains("A", e.Message);
        Assert.Throws<ArgumentException>(() => Gemm.Cpu(false, false, 3, 5, 4, 1f, a, 0, 3, b, 0, 5, 0f, c, 0, 5));   // lda < k
        Assert.Throws<ArgumentException>(() => Gemm.Cpu(false, false, 3, 5, 4, 1f, a, 0, 4, b, 1, 5, 0f, c, 0, 5));   // B overruns by its offset
        Assert.Throws<ArgumentException>(() => Gemm.Cpu(false, false, 3, 5, 4, 1f, a, 0, 4, b, 0, 5, 0f, c, 1, 5));   // C overruns
    }

    // The dense [rows, cols] matrix stored at offset with row stride ld.
    static double[] Window(IReadOnlyList<double> store, int offset, int rows, int cols, int ld)
    {
        var w = new double[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) w[i * cols + j] = store[offset + i * ld + j];
        return w;
    }

    static double[] Window(float[] store, int offset, int rows, int cols, int ld) =>
        Window(TestData.ToDouble(store), offset, rows, cols, ld);
}
