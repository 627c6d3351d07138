namespace Chroma.Kernels;

public static partial class Gemm
{
    /// <summary>
    /// CPU path on raw arrays: matrices start at the given offsets with the given leading
    /// dimensions (row strides). Work is split over all cores.
    /// </summary>
    public static void Cpu(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb,
        float beta, float[] c, int cOffset, int ldc)
    {
        // Straightforward row-parallel version; the blocked SIMD kernel replaces it.
        Parallel.For(0, m, i =>
        {
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++)
                    s += (transA ? a[aOffset + p * lda + i] : a[aOffset + i * lda + p]) *
                         (transB ? b[bOffset + j * ldb + p] : b[bOffset + p * ldb + j]);
                ref float cij = ref c[cOffset + i * ldc + j];
                cij = beta == 0f ? alpha * s : alpha * s + beta * cij;
            }
        });
    }
}
