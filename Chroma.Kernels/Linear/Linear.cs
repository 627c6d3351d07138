using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// Fully connected layer, PyTorch nn.Linear layout:
/// <code>
/// forward:  y = x W^T + b          x [N,In], W [Out,In], b [Out], y [N,Out]
/// backward: dx += dy W             [N,Out] x [Out,In]
///           dW += dy^T x           [Out,N] x [N,In]
///           db += sum_n dy         [Out]
/// </code>
/// The products run on <see cref="Gemm"/> (beta = 1 makes them accumulate); the bias add and the bias
/// gradient are small kernels. A conv output [N,C,H,W] is flattened in (C,H,W) order by passing
/// <c>x.Reshape(N, C*H*W)</c>, a view, no copy.
/// </summary>
public static class Linear
{
    /// <summary>y = x W^T + b (b null: no bias). y is overwritten.</summary>
    public static void Forward(Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        const string op = "Linear.Forward";
        Check.SameDevice(op, x, w, b, y);
        var (n, inFeatures, outFeatures) = Sizes(op, x, w, b, "b");
        Check.Shape(op, "y", y, n, outFeatures);
        if (x.Device is GpuDevice gpu)
        {
            Gemm.Gpu(gpu, false, true, n, outFeatures, inFeatures, 1f, x.View, inFeatures, w.View, inFeatures, 0f, y.View, outFeatures);
            if (b is not null && y.Length > 0)
                gpu.Kernel<int, ArrayView<float>, ArrayView<float>>(AddBiasKernel)(y.Length, outFeatures, b.View, y.View);
        }
        else
        {
            Gemm.Cpu(false, true, n, outFeatures, inFeatures, 1f, x.HostArray, x.Offset, inFeatures,
                w.HostArray, w.Offset, inFeatures, 0f, y.HostArray, y.Offset, outFeatures);
            if (b is not null)
            {
                var ys = y.Span;
                ReadOnlySpan<float> bs = b.Span;
                for (int i = 0; i < n; i++)
                {
                    var row = ys.Slice(i * outFeatures, outFeatures);
                    TensorPrimitives.Add(row, bs, row);
                }
            }
        }
    }

    /// <summary>
    /// Accumulates dx += dy W (dx null: skipped, e.g. for the first layer), dW += dy^T x and
    /// db += sum over the batch of dy (db null: skipped, for a layer without bias).
    /// </summary>
    public static void Backward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db)
    {
        const string op = "Linear.Backward";
        Check.SameDevice(op, x, w, dy, dx, dw, db);
        var (n, inFeatures, outFeatures) = Sizes(op, x, w, db, "db");
        Check.Shape(op, "dy", dy, n, outFeatures);
        if (dx is not null) Check.Shape(op, "dx", dx, n, inFeatures);
        Check.Shape(op, "dW", dw, outFeatures, inFeatures);
        if (x.Device is GpuDevice gpu)
        {
            if (dx is not null)
                Gemm.Gpu(gpu, false, false, n, inFeatures, outFeatures, 1f, dy.View, outFeatures, w.View, inFeatures, 1f, dx.View, inFeatures);
            Gemm.Gpu(gpu, true, false, outFeatures, inFeatures, n, 1f, dy.View, outFeatures, x.View, inFeatures, 1f, dw.View, inFeatures);
            if (db is not null && outFeatures > 0)
                gpu.Kernel<int, ArrayView<float>, ArrayView<float>>(BiasGradientKernel)(outFeatures, n, dy.View, db.View);
        }
        else
        {
            if (dx is not null)
                Gemm.Cpu(false, false, n, inFeatures, outFeatures, 1f, dy.HostArray, dy.Offset, outFeatures,
                    w.HostArray, w.Offset, inFeatures, 1f, dx.HostArray, dx.Offset, inFeatures);
            Gemm.Cpu(true, false, outFeatures, inFeatures, n, 1f, dy.HostArray, dy.Offset, outFeatures,
                x.HostArray, x.Offset, inFeatures, 1f, dw.HostArray, dw.Offset, inFeatures);
            if (db is not null)
            {
                var dbs = db.Span;
                ReadOnlySpan<float> dys = dy.Span;
                for (int i = 0; i < n; i++) TensorPrimitives.Add(dbs, dys.Slice(i * outFeatures, outFeatures), dbs);
            }
        }
    }

    static (int N, int In, int Out) Sizes(string op, Tensor x, Tensor w, Tensor? b, string biasName)
    {
        if (x.Rank != 2)
            throw new ArgumentException($"{op}: x must be [N, In], got {x.ShapeString}" +
                                        (x.Rank > 2 ? $"; flatten it first, e.g. x.Reshape({x.Dim(0)}, {x.Length / Math.Max(1, x.Dim(0))})." : "."));
        Check.Rank(op, "W", w, 2);
        int n = x.Dim(0), inFeatures = x.Dim(1), outFeatures = w.Dim(0);
        if (w.Dim(1) != inFeatures)
            throw new ArgumentException($"{op}: W {w.ShapeString} must be [Out, In] with In = {inFeatures} to match x {x.ShapeString}.");
        if (b is not null) Check.Shape(op, biasName, b, outFeatures);
        return (n, inFeatures, outFeatures);
    }

    // One thread per element of y [N,Out].
    static void AddBiasKernel(Index1D i, int outFeatures, ArrayView<float> b, ArrayView<float> y) => y[i] += b[i % outFeatures];

    // One thread per output feature; consecutive threads read consecutive columns of each dy row.
    static void BiasGradientKernel(Index1D o, int n, ArrayView<float> dy, ArrayView<float> db)
    {
        int outFeatures = (int)db.Length;
        float sum = 0;
        for (int i = 0; i < n; i++) sum += dy[i * outFeatures + o];
        db[o] += sum;
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        /// <summary>y [N,Out] = x [N,In] W^T + b, with W [Out,In] and b [Out] (null: none).</summary>
        public static double[] Forward(double[] x, int n, int inFeatures, double[] w, double[]? b, int outFeatures)
        {
            var y = new double[n * outFeatures];
            for (int i = 0; i < n; i++)
                for (int o = 0; o < outFeatures; o++)
                {
                    double s = b?[o] ?? 0;
                    for (int k = 0; k < inFeatures; k++) s += x[i * inFeatures + k] * w[o * inFeatures + k];
                    y[i * outFeatures + o] = s;
                }
            return y;
        }
    }
}
