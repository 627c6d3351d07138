using Chroma.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace Chroma.Tests.Kernels;

public class GemmTests
{
    public static TheoryData<string, bool, bool> Cases()
    {
        var d = new TheoryData<string, bool, bool>();
        foreach (var p in new[] { "cpu", "gpu" })
            foreach (var ta in new[] { false, true })
                foreach (var tb in new[] { false, true })
                    d.Add(p, ta, tb);
        return d;
    }

    // Every CPU micro-kernel width this machine accelerates (scalar always; Vector512 only on AVX-512
    // hardware), with every transpose combination.
    public static TheoryData<string, bool, bool> CpuKernelCases()
    {
        var d = new TheoryData<string, bool, bool>();
        foreach (Gemm.CpuKernel kernel in Enum.GetValues<Gemm.CpuKernel>())
            if (Gemm.IsAccelerated(kernel))
                foreach (var ta in new[] { false, true })
                    foreach (var tb in new[] { false, true })
                        d.Add(kernel.ToString(), ta, tb);
        return d;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Product_matches_reference(string path, bool transA, bool transB)
    {
        var dev = TestDevices.Get(path);
        const int m = 13, n = 21, k = 17;
        var a = TestData.RoundToFloat(TestData.Uniform(10, m * k));
        var b = TestData.RoundToFloat(TestData.Uniform(11, k * n));
        var c = TestData.RoundToFloat(TestData.Uniform(12, m * n));
        using var ta = TestData.Tensor(dev, a, transA ? [k, m] : [m, k]);
        using var tb = TestData.Tensor(dev, b, transB ? [n, k] : [k, n]);
        using var tc = TestData.Tensor(dev, c, m, n);
        Gemm.Multiply(ta, tb, tc, transA, transB, alpha: 0.75f, beta: 0.5f);
        var expected = Gemm.Reference.Multiply(transA, transB, m, n, k, 0.75, a, b, 0.5, c);
        Compare.Close("gemm", expected, tc.ToArray(), 1e-5, 1e-5);
    }

    // Sizes that cross the GPU tile (16 on the simulator, 64 on CUDA) and TileK = 16 boundaries.
    [Theory, MemberData(nameof(Cases))]
    public void Product_with_partial_tiles_matches_reference(string path, bool transA, bool transB)
    {
        var dev = TestDevices.Get(path);
        bool gpu = path == "gpu";
        int m = gpu ? 37 : 67, n = gpu ? 70 : 45, k = gpu ? 33 : 300;
        CheckMultiply(dev, transA, transB, m, n, k, alpha: 1.25f, beta: -0.5f, seed: 20);
    }

    // The CPU blocking: MR = 6, NR = 2 vectors, KC = 192/256, MC <= 144, NC = 4096, and the
    // parallel split (products above 96^3 multiply-adds; along k when C is small). Each shape stresses one dimension;
    // the rest stay small so the scalar kernel is quick too.
    [Theory, MemberData(nameof(CpuKernelCases))]
    public void Cpu_kernels_match_reference_across_block_edges(string kernelName, bool transA, bool transB)
    {
        var kernel = Enum.Parse<Gemm.CpuKernel>(kernelName);
        (int m, int n, int k)[] shapes =
        [
            (1, 1, 1), (5, 3, 2),        // smaller than one micro-tile
            (67, 45, 300),               // partial tiles in m and n, two k blocks
            (301, 19, 11),               // several A blocks (m > MC), partial last one
            (7, 4131, 3),                // two B blocks (n > NC)
            (9, 35, 700),                // three k blocks, beta applied only with the first
            (150, 70, 300),              // parallel, two A blocks sharing each packed B block
            (7, 20, 8000),               // small C, long k: split along k into summed partial products
            (8, 300, 400),               // parallel with few rows: work items split the columns
        ];
        int seed = 30;
        foreach (var (m, n, k) in shapes)
        {
            var a = TestData.ToFloat(TestData.Uniform(seed++, m * k));
            var b = TestData.ToFloat(TestData.Uniform(seed++, k * n));
            var c = TestData.ToFloat(TestData.Uniform(seed++, m * n));
            var expected = Gemm.Reference.Multiply(transA, transB, m, n, k, 0.75,
                TestData.ToDouble(a), TestData.ToDouble(b), -1.5, TestData.ToDouble(c));
            Gemm.Cpu(kernel, transA, transB, m, n, k, 0.75f, a, 0, transA ? m : k, b, 0, transB ? k : n, -1.5f, c, 0, n);
            Compare.Close($"{kernel} {m}x{n}x{k}", expected, c, 1e-5, 2e-6 * k);
        }
    }

    // beta == 0 must overwrite C without reading it: NaN in the old C must not leak into the result.
    [Theory, MemberData(nameof(Cases))]
    public void Beta_zero_ignores_nan_in_c(string path, bool transA, bool transB)
    {
        var dev = TestDevices.Get(path);
        int m = 19, n = 23, k = path == "gpu" ? 18 : 260;
        var a = TestData.RoundToFloat(TestData.Uniform(40, m * k));
        var b = TestData.RoundToFloat(TestData.Uniform(41, k * n));
        using var ta = TestData.Tensor(dev, a, transA ? [k, m] : [m, k]);
        using var tb = TestData.Tensor(dev, b, transB ? [n, k] : [k, n]);
        using var tc = dev.FromArray(Enumerable.Repeat(float.NaN, m * n).ToArray(), m, n);
        Gemm.Multiply(ta, tb, tc, transA, transB, alpha: 2f);
        var expected = Gemm.Reference.Multiply(transA, transB, m, n, k, 2, a, b, 0, new double[m * n]);
        Compare.Close("gemm beta=0", expected, tc.ToArray(), 1e-5, 1e-5);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Beta_one_accumulates_into_c(string path)
    {
        var dev = TestDevices.Get(path);
        CheckMultiply(dev, false, true, 11, 26, 40, alpha: -1f, beta: 1f, seed: 50);
    }

    // k == 0: the product is empty, so C = beta * C (zeros for beta == 0, even over NaN).
    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Empty_inner_dimension_scales_c(string path)
    {
        var dev = TestDevices.Get(path);
        using var a = dev.Zeros(5, 0);
        using var b = dev.Zeros(0, 7);
        var c0 = TestData.RoundToFloat(TestData.Uniform(60, 35));
        using var c = TestData.Tensor(dev, c0, 5, 7);
        Gemm.Multiply(a, b, c, beta: 3f);
        Compare.Close("k=0 beta=3", c0.Select(v => 3 * v).ToArray(), c.ToArray(), 1e-6, 0);
        using var cNan = dev.FromArray(Enumerable.Repeat(float.NaN, 35).ToArray(), 5, 7);
        Gemm.Multiply(a, b, cNan);
        Compare.Close("k=0 beta=0", new double[35], cNan.ToArray(), 0, 0);
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

    // Every GPU kernel (1: naive, 2: 4x4 tiled, 3: 8x8 tiled) against the reference, on shapes
    // with partial tiles for both tiled kernels (tiles of 16 and 32 on the simulator).
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Gpu_kernels_match_reference(bool transA, bool transB)
    {
        var gpu = (GpuDevice)TestDevices.Get("gpu");
        const int m = 37, n = 45, k = 21;
        var a = TestData.RoundToFloat(TestData.Uniform(90, m * k));
        var b = TestData.RoundToFloat(TestData.Uniform(91, k * n));
        var c = TestData.RoundToFloat(TestData.Uniform(92, m * n));
        var expected = Gemm.Reference.Multiply(transA, transB, m, n, k, 0.5, a, b, -2, c);
        using var ta = TestData.Tensor(gpu, a, transA ? [k, m] : [m, k]);
        using var tb = TestData.Tensor(gpu, b, transB ? [n, k] : [k, n]);
        int lda = transA ? m : k, ldb = transB ? k : n;
        foreach (var (name, kernel) in new (string, GpuGemm)[] { ("naive", Gemm.GpuNaive), ("tiled 4x4", Gemm.GpuTiled4), ("tiled 8x8", Gemm.GpuTiled8) })
        {
            using var tc = TestData.Tensor(gpu, c, m, n);
            kernel(gpu, transA, transB, m, n, k, 0.5f, ta.View, lda, tb.View, ldb, -2f, tc.View, n);
            Compare.Close(name, expected, tc.ToArray(), 1e-5, 1e-5);
        }
    }

    delegate void GpuGemm(GpuDevice gpu, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc);

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

    static void CheckMultiply(Device dev, bool transA, bool transB, int m, int n, int k, float alpha, float beta, int seed)
    {
        var a = TestData.RoundToFloat(TestData.Uniform(seed, m * k));
        var b = TestData.RoundToFloat(TestData.Uniform(seed + 1, k * n));
        var c = TestData.RoundToFloat(TestData.Uniform(seed + 2, m * n));
        using var ta = TestData.Tensor(dev, a, transA ? [k, m] : [m, k]);
        using var tb = TestData.Tensor(dev, b, transB ? [n, k] : [k, n]);
        using var tc = TestData.Tensor(dev, c, m, n);
        Gemm.Multiply(ta, tb, tc, transA, transB, alpha, beta);
        var expected = Gemm.Reference.Multiply(transA, transB, m, n, k, alpha, a, b, beta, c);
        Compare.Close($"gemm {m}x{n}x{k}", expected, tc.ToArray(), 1e-5, 2e-6 * k);
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
