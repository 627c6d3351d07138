namespace Chroma.Kernels.Harness;

/// <summary>
/// The "cpu_kernel" size a gemm or conv2d case may carry: the micro-kernel width of the CPU path's products
/// (<see cref="Gemm.CpuKernel"/>'s value; absent or 0, Auto: the widest the machine accelerates). Tests run
/// a case on every width the machine has; the GPU path ignores it.
/// </summary>
public static class CpuKernelSize
{
    public const string Key = "cpu_kernel";

    internal static Gemm.CpuKernel Of(OpCase c) => (Gemm.CpuKernel)c.Get(Key, (int)Gemm.CpuKernel.Auto);

    /// <summary>The case on one width, so named ("odd_p1 Vector256").</summary>
    internal static OpCase With(OpCase c, Gemm.CpuKernel kernel) => c.With(Key, (int)kernel, kernel.ToString());

    /// <summary>The widths this machine accelerates (Scalar always, Vector512 only with AVX-512), widest first; Auto too when asked.</summary>
    internal static IEnumerable<Gemm.CpuKernel> Accelerated(bool withAuto = false) =>
        new[] { Gemm.CpuKernel.Vector512, Gemm.CpuKernel.Vector256, Gemm.CpuKernel.Vector128, Gemm.CpuKernel.Scalar }
            .Where(Gemm.IsAccelerated).Concat(withAuto ? [Gemm.CpuKernel.Auto] : []);
}
