using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// Logistic sigmoid, element-wise (the colorization network's output layer).
/// <code>
/// forward:  y = 1 / (1 + exp(-x))
/// backward: dx += dy * y * (1 - y)   (uses the output y)
/// </code>
/// </summary>
public static class Sigmoid
{
    /// <summary>y = sigmoid(x). <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void Forward(Tensor x, Tensor y)
    {
        Check.SameDevice("Sigmoid.Forward", x, y);
        Check.SameLength("Sigmoid.Forward", x, y);
        if (x.Device is GpuDevice gpu) gpu.Kernel<ArrayView<float>, ArrayView<float>>(ForwardKernel)(x.Length, x.View, y.View);
        else TensorPrimitives.Sigmoid(x.Span, y.Span);
    }

    /// <summary>dx += dy * y * (1 - y).</summary>
    public static void Backward(Tensor y, Tensor dy, Tensor dx)
    {
        Check.SameDevice("Sigmoid.Backward", y, dy, dx);
        Check.SameLength("Sigmoid.Backward", y, dy);
        Check.SameLength("Sigmoid.Backward", y, dx);
        if (y.Device is GpuDevice gpu) gpu.Kernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardKernel)(y.Length, y.View, dy.View, dx.View);
        else BackwardCpu(y.Span, dy.Span, dx.Span);
    }

    static void BackwardCpu(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < y.Length; i++) dx[i] += dy[i] * y[i] * (1f - y[i]);
    }

    static void ForwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y) => y[i] = 1f / (1f + XMath.Exp(-x[i]));

    static void BackwardKernel(Index1D i, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx)
    {
        float s = y[i];
        dx[i] += dy[i] * s * (1f - s);
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        public static double[] Forward(double[] x) => x.Select(v => 1.0 / (1.0 + Math.Exp(-v))).ToArray();
    }
}
