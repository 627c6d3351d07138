using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// General matrix product on row-major float32 matrices:
/// <code>
/// C[M,N] = alpha * op(A) * op(B) + beta * C      op(A) is [M,K], op(B) is [K,N]
/// op(X) = X, or X^T when the matching trans flag is set (then X is stored [K,M] / [N,K])
/// </code>
/// Used by the fully connected layer and by convolution (im2col), and usable on its own.
/// </summary>
public static partial class Gemm
{
    /// <summary>Tensor form: 2-D tensors, leading dimensions taken from the shapes.</summary>
    public static void Multiply(Tensor a, Tensor b, Tensor c, bool transA = false, bool transB = false, float alpha = 1f, float beta = 0f)
    {
        Check.SameDevice("Gemm", a, b, c);
        Check.Rank("Gemm", "A", a, 2); Check.Rank("Gemm", "B", b, 2); Check.Rank("Gemm", "C", c, 2);
        int m = transA ? a.Dim(1) : a.Dim(0), k = transA ? a.Dim(0) : a.Dim(1);
        int kb = transB ? b.Dim(1) : b.Dim(0), n = transB ? b.Dim(0) : b.Dim(1);
        if (k != kb) throw new ArgumentException($"Gemm: inner dimensions differ: op(A) is [{m}, {k}], op(B) is [{kb}, {n}].");
        Check.Shape("Gemm", "C", c, m, n);
        if (a.Device is GpuDevice gpu)
            Gpu(gpu, transA, transB, m, n, k, alpha, a.View, a.Dim(1), b.View, b.Dim(1), beta, c.View, n);
        else
            Cpu(transA, transB, m, n, k, alpha, a.HostArray, a.Offset, a.Dim(1), b.HostArray, b.Offset, b.Dim(1), beta, c.HostArray, c.Offset, n);
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        /// <summary>Returns alpha * op(A) op(B) + beta * C as a new [M,N] array.</summary>
        public static double[] Multiply(bool transA, bool transB, int m, int n, int k, double alpha,
            double[] a, double[] b, double beta, double[] c)
        {
            var result = new double[m * n];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                        s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
                    result[i * n + j] = alpha * s + beta * c[i * n + j];
                }
            return result;
        }
    }
}
