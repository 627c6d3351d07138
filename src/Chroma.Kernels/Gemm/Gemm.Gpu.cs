using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

public static partial class Gemm
{
    /// <summary>GPU path on raw views with leading dimensions (row strides).</summary>
    public static void Gpu(GpuDevice gpu, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc)
    {
        if (m == 0 || n == 0) return;
        gpu.Kernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(NaiveKernel)(
            m * n, new GemmArgs(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, lda, ldb, beta, ldc), a, b, c);
    }

    /// <summary>Sizes and flags of one product, passed to kernels as one struct.</summary>
    public readonly record struct GemmArgs(int TransA, int TransB, int M, int N, int K, float Alpha, int Lda, int Ldb, float Beta, int Ldc);

    // One thread per element of C.
    static void NaiveKernel(Index1D idx, GemmArgs g, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        int i = idx / g.N, j = idx % g.N;
        float s = 0;
        for (int p = 0; p < g.K; p++)
            s += (g.TransA != 0 ? a[p * g.Lda + i] : a[i * g.Lda + p]) * (g.TransB != 0 ? b[j * g.Ldb + p] : b[p * g.Ldb + j]);
        int ci = i * g.Ldc + j;
        c[ci] = g.Beta == 0f ? g.Alpha * s : g.Alpha * s + g.Beta * c[ci];
    }
}
