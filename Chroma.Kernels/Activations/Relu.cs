using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// Rectified linear unit, element-wise on a tensor of any shape.
/// <code>
/// forward:  y = max(x, 0)
/// backward: dx += dy * [y > 0]      (uses the output y, so x need not be kept)
/// </code>
/// </summary>
public static class Relu
{
    /// <summary>y = max(x, 0). <paramref name="y"/> may be <paramref name="x"/> (in place).</summary>
    public static void Forward(Tensor x, Tensor y)
    {
        Check.SameDevice("Relu.Forward", x, y);
        Check.SameLength("Relu.Forward", x, y);
        if (x.Device is GpuDevice gpu) gpu.Kernel<ArrayView<float>, ArrayView<float>>(ForwardKernel)(x.Length, x.View, y.View);
        else TensorPrimitives.Max(x.Span, 0f, y.Span);
    }

    /// <summary>dx += dy * [y > 0].</summary>
    public static void Backward(Tensor y, Tensor dy, Tensor dx)
    {
        Check.SameDevice("Relu.Backward", y, dy, dx);
        Check.SameLength("Relu.Backward", y, dy);
        Check.SameLength("Relu.Backward", y, dx);
        if (y.Device is GpuDevice gpu) gpu.Kernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardKernel)(y.Length, y.View, dy.View, dx.View);
        else BackwardCpu(y.Span, dy.Span, dx.Span);
    }

    static void BackwardCpu(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < y.Length; i++)
            if (y[i] > 0f) dx[i] += dy[i];
    }

    static void ForwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y) => y[i] = XMath.Max(x[i], 0f);

    static void BackwardKernel(Index1D i, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx)
    {
        if (y[i] > 0f) dx[i] += dy[i];
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        public static double[] Forward(double[] x) => x.Select(v => Math.Max(v, 0.0)).ToArray();
    }
}
