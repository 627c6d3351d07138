using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// Bilinear resize of images from any size to any size, antialiased when shrinking: the same as
/// PyTorch's <c>F.interpolate(x, size, mode='bilinear', align_corners=False, antialias=True)</c>
/// and PIL's bilinear resample. Used to bring photos to the network's sizes and outputs back.
/// <code>
/// x [N, C, H, W] -> y [N, C, Ho, Wo]
/// separable: y = Rows(Ho x H) * x * Cols(Wo x W)^T, each axis filtered independently.
/// Along an axis of in -> out samples, output o reads inputs i in [start, end) with weight w(i) / sum of w:
///   scale = in / out,  support = max(scale, 1),  center = (o + 0.5) * scale
///   start = max(trunc(center - support + 0.5), 0),  end = min(trunc(center + support + 0.5), in)
///   w(i) = max(0, 1 - |(i + 0.5 - center) / support|)        (triangle filter stretched by the support)
/// backward: dx += Rows^T * dy * Cols                            (the transpose, same weights)
/// </code>
/// Growing an axis (scale &lt;= 1) this is ordinary bilinear interpolation with edge clamping;
/// shrinking it, the triangle widens to cover scale input pixels, averaging them instead of aliasing.
/// </summary>
public static class BilinearResize
{
    /// <summary>y = x resized to y's spatial size. <paramref name="y"/> is overwritten.</summary>
    public static void Forward(Tensor x, Tensor y)
    {
        var a = CheckShapes("BilinearResize.Forward", x, "x", y, "y");
        if (y.Length == 0) return;
        if (x.Device is GpuDevice gpu)
            gpu.Kernel<ResizeArgs, ArrayView<float>, ArrayView<float>>(ForwardKernel)(y.Length, a, x.View, y.View);
        else
            ForwardCpu(a, x.Dim(0) * x.Dim(1), x.HostArray, x.Offset, y.HostArray, y.Offset);
    }

    /// <summary>dx += the transpose of the resize applied to dy.</summary>
    public static void Backward(Tensor dy, Tensor dx)
    {
        var a = CheckShapes("BilinearResize.Backward", dx, "dx", dy, "dy");
        if (dx.Length == 0) return;
        if (dy.Device is GpuDevice gpu)
            gpu.Kernel<ResizeArgs, ArrayView<float>, ArrayView<float>>(BackwardKernel)(dx.Length, a, dy.View, dx.View);
        else
            BackwardCpu(a, dx.Dim(0) * dx.Dim(1), dy.HostArray, dy.Offset, dx.HostArray, dx.Offset);
    }

    static ResizeArgs CheckShapes(string op, Tensor input, string inputName, Tensor output, string outputName)
    {
        Check.SameDevice(op, input, output);
        Check.Rank(op, inputName, input, 4);
        Check.Rank(op, outputName, output, 4);
        if (input.Dim(0) != output.Dim(0) || input.Dim(1) != output.Dim(1))
            throw new ArgumentException($"{op}: {inputName} {input.ShapeString} and {outputName} {output.ShapeString} must agree in N and C.");
        if (input.Dim(2) == 0 || input.Dim(3) == 0 || output.Dim(2) == 0 || output.Dim(3) == 0)
            throw new ArgumentException($"{op}: cannot resize {input.ShapeString} to {output.ShapeString}: every spatial size must be positive.");
        return new ResizeArgs(ResizeAxis.Create(input.Dim(2), output.Dim(2)), ResizeAxis.Create(input.Dim(3), output.Dim(3)));
    }

    /// <summary>One axis of the resize, in the float arithmetic of the GPU kernels.</summary>
    public readonly record struct ResizeAxis(int In, int Out, float Scale, float Support, float InvSupport)
    {
        public static ResizeAxis Create(int inSize, int outSize)
        {
            float scale = (float)inSize / outSize, support = Math.Max(scale, 1f);
            return new ResizeAxis(inSize, outSize, scale, support, 1f / support);
        }

        public float Center(int o) => (o + 0.5f) * Scale;
        public int Start(float center) => XMath.Max((int)(center - Support + 0.5f), 0);
        public int End(float center) => XMath.Min((int)(center + Support + 0.5f), In);
        public float Tap(int i, float center) => XMath.Max(0f, 1f - XMath.Abs((i + 0.5f - center) * InvSupport));

        public float Total(float center, int start, int end)
        {
            float total = 0f;
            for (int i = start; i < end; i++) total += Tap(i, center);
            return total;
        }

        /// <summary>
        /// First candidate output whose window may hold input <paramref name="i"/>: windows holding i have
        /// center in [i + 0.5 - support, i + 0.5 + support); one extra output each side absorbs rounding.
        /// </summary>
        public int FirstOutputOf(int i) => XMath.Max((int)XMath.Floor((i + 0.5f - Support) / Scale - 0.5f) - 1, 0);

        /// <summary>End (exclusive) of the candidate outputs for input <paramref name="i"/>, see <see cref="FirstOutputOf"/>.</summary>
        public int EndOutputOf(int i) => XMath.Min((int)XMath.Ceiling((i + 0.5f + Support) / Scale - 0.5f) + 2, Out);

        /// <summary>Normalized weight of input <paramref name="i"/> in output <paramref name="o"/>; 0 outside its window.</summary>
        public float Weight(int o, int i)
        {
            float center = Center(o);
            int start = Start(center), end = End(center);
            if (i < start || i >= end) return 0f;
            return Tap(i, center) / Total(center, start, end);
        }
    }

    /// <summary>Both axes, passed to kernels as one struct.</summary>
    public readonly record struct ResizeArgs(ResizeAxis Y, ResizeAxis X);

    // One thread per element of y [N, C, Ho, Wo]: the taps are recomputed on the fly (a few flops
    // each) instead of reading tables; the input window is read row by row, coalesced across threads.
    static void ForwardKernel(Index1D i, ResizeArgs a, ArrayView<float> x, ArrayView<float> y)
    {
        int ox = i % a.X.Out, rest = i / a.X.Out;
        int oy = rest % a.Y.Out, plane = rest / a.Y.Out;
        float cy = a.Y.Center(oy), cx = a.X.Center(ox);
        int y0 = a.Y.Start(cy), y1 = a.Y.End(cy), x0 = a.X.Start(cx), x1 = a.X.End(cx);
        float sum = 0f;
        for (int iy = y0; iy < y1; iy++)
        {
            int row = (plane * a.Y.In + iy) * a.X.In;
            float rowSum = 0f;
            for (int ix = x0; ix < x1; ix++) rowSum += a.X.Tap(ix, cx) * x[row + ix];
            sum += a.Y.Tap(iy, cy) * rowSum;
        }
        y[i] = sum / (a.Y.Total(cy, y0, y1) * a.X.Total(cx, x0, x1));
    }

    // One thread per element of dx [N, C, H, W], gathering from the outputs whose windows hold it, so
    // no two threads write one place. Windows are monotone in the output index, so those outputs form
    // a short range per axis.
    static void BackwardKernel(Index1D i, ResizeArgs a, ArrayView<float> dy, ArrayView<float> dx)
    {
        int ix = i % a.X.In, rest = i / a.X.In;
        int iy = rest % a.Y.In, plane = rest / a.Y.In;
        int ox0 = a.X.FirstOutputOf(ix), ox1 = a.X.EndOutputOf(ix);
        int oy1 = a.Y.EndOutputOf(iy);
        float sum = 0f;
        for (int oy = a.Y.FirstOutputOf(iy); oy < oy1; oy++)
        {
            float wy = a.Y.Weight(oy, iy);
            if (wy == 0f) continue;
            int row = (plane * a.Y.Out + oy) * a.X.Out;
            float rowSum = 0f;
            for (int ox = ox0; ox < ox1; ox++) rowSum += a.X.Weight(ox, ix) * dy[row + ox];
            sum += wy * rowSum;
        }
        dx[i] += sum;
    }

    /// <summary>
    /// Taps of one axis as a table: destination d reads sources Start[d] .. Start[d] + Count[d] - 1
    /// with weights Weights[d * Stride + k]. Built in float64, for the CPU path.
    /// </summary>
    sealed record Taps(int[] Start, int[] Count, float[] Weights, int Stride)
    {
        /// <summary>Forward taps: destinations are the outputs, sources the inputs.</summary>
        public static Taps Resize(int inSize, int outSize)
        {
            var windows = new (int Start, double[] Weights)[outSize];
            for (int o = 0; o < outSize; o++) windows[o] = Reference.Window(o, inSize, outSize);
            int stride = windows.Max(w => w.Weights.Length);
            var table = new Taps(new int[outSize], new int[outSize], new float[outSize * stride], stride);
            for (int o = 0; o < outSize; o++)
            {
                table.Start[o] = windows[o].Start;
                table.Count[o] = windows[o].Weights.Length;
                for (int k = 0; k < windows[o].Weights.Length; k++) table.Weights[o * stride + k] = (float)windows[o].Weights[k];
            }
            return table;
        }

        /// <summary>The transpose: destinations are the sources of this table. Each source lies in a
        /// contiguous range of destinations, because window starts and ends grow with the destination.</summary>
        public Taps Transpose(int sources)
        {
            int dests = Start.Length;
            var first = new int[sources];
            var end = new int[sources];
            Array.Fill(first, int.MaxValue);
            for (int d = 0; d < dests; d++)
                for (int k = 0; k < Count[d]; k++)
                {
                    int s = Start[d] + k;
                    first[s] = Math.Min(first[s], d);
                    end[s] = Math.Max(end[s], d + 1);
                }
            int stride = 0;
            for (int s = 0; s < sources; s++)
            {
                if (first[s] == int.MaxValue) first[s] = end[s] = 0;
                stride = Math.Max(stride, end[s] - first[s]);
            }
            var table = new Taps(first, new int[sources], new float[sources * stride], stride);
            for (int s = 0; s < sources; s++) table.Count[s] = end[s] - first[s];
            for (int d = 0; d < dests; d++)
                for (int k = 0; k < Count[d]; k++)
                {
                    int s = Start[d] + k;
                    table.Weights[s * stride + d - first[s]] = Weights[d * Stride + k];
                }
            return table;
        }
    }

    // CPU: one pass per axis through a buffer, each split over cores by rows so that one large photo
    // uses every core too. The backward pass is the same two passes with the transposed tables.
    static void ForwardCpu(ResizeArgs a, int planes, float[] x, int xOff, float[] y, int yOff) =>
        Separable(x, xOff, (a.Y.In, a.X.In), y, yOff, (a.Y.Out, a.X.Out), planes,
            Taps.Resize(a.Y.In, a.Y.Out), Taps.Resize(a.X.In, a.X.Out), accumulate: false);

    static void BackwardCpu(ResizeArgs a, int planes, float[] dy, int dyOff, float[] dx, int dxOff) =>
        Separable(dy, dyOff, (a.Y.Out, a.X.Out), dx, dxOff, (a.Y.In, a.X.In), planes,
            Taps.Resize(a.Y.In, a.Y.Out).Transpose(a.Y.In), Taps.Resize(a.X.In, a.X.Out).Transpose(a.X.In), accumulate: true);

    /// <summary>
    /// dst [planes, dstH, dstW] (=, or += when accumulating) the row taps and column taps applied to
    /// src [planes, srcH, srcW]. The axes commute, so the order is chosen by cost: the vertical pass
    /// combines whole rows with SIMD, the horizontal one is a short dot product per element. Shrinking
    /// a photo vertically first, for instance, leaves the horizontal pass only the few output rows.
    /// </summary>
    static void Separable(float[] src, int srcOff, (int H, int W) srcSize, float[] dst, int dstOff, (int H, int W) dstSize,
        int planes, Taps rows, Taps cols, bool accumulate)
    {
        const double simdWidth = 8;
        double horizontalFirst = (double)srcSize.H * dstSize.W * cols.Stride + dstSize.H * dstSize.W * rows.Stride / simdWidth;
        double verticalFirst = dstSize.H * (double)srcSize.W * rows.Stride / simdWidth + (double)dstSize.H * dstSize.W * cols.Stride;
        bool vertical = verticalFirst < horizontalFirst;
        // The image after the first pass: [planes, dstH, srcW] (vertical first) or [planes, srcH, dstW].
        using var buffer = Workspace.Take(ref _halfResized, planes * (vertical ? dstSize.H * srcSize.W : srcSize.H * dstSize.W));
        if (vertical)
        {
            VerticalPass(src, srcOff, srcSize.H, buffer.Array, buffer.Offset, dstSize.H, planes, srcSize.W, rows, accumulate: false);
            HorizontalPass(buffer.Array, buffer.Offset, srcSize.W, dst, dstOff, dstSize.W, planes * dstSize.H, cols, accumulate);
        }
        else
        {
            HorizontalPass(src, srcOff, srcSize.W, buffer.Array, buffer.Offset, dstSize.W, planes * srcSize.H, cols, accumulate: false);
            VerticalPass(buffer.Array, buffer.Offset, srcSize.H, dst, dstOff, dstSize.H, planes, dstSize.W, rows, accumulate);
        }
    }

    [ThreadStatic] static Workspace? _halfResized;

    /// <summary>dst row r [dstW] (=, or += when accumulating) taps applied to src row r [srcW], for every row.</summary>
    static void HorizontalPass(float[] src, int srcOff, int srcW, float[] dst, int dstOff, int dstW, int rows, Taps taps, bool accumulate)
    {
        CpuLoop.Chunks(rows, dstW * Math.Max(taps.Stride, 1), FlopsPerChunk, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var s = src.AsSpan(srcOff + r * srcW, srcW);
                var d = dst.AsSpan(dstOff + r * dstW, dstW);
                for (int j = 0; j < dstW; j++)
                {
                    var w = taps.Weights.AsSpan(j * taps.Stride, taps.Count[j]);
                    float sum = TensorPrimitives.Dot(w, s.Slice(taps.Start[j], w.Length));
                    d[j] = accumulate ? d[j] + sum : sum;
                }
            }
        });
    }

    /// <summary>Per plane: dst row d [rowLen] (=, or += when accumulating) the sum over taps k of weight * src row (start + k).</summary>
    static void VerticalPass(float[] src, int srcOff, int srcH, float[] dst, int dstOff, int dstH, int planes, int rowLen, Taps taps, bool accumulate)
    {
        CpuLoop.Chunks(planes * dstH, rowLen * Math.Max(taps.Stride, 1), FlopsPerChunk, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int plane = r / dstH, d = r % dstH;
                var outRow = dst.AsSpan(dstOff + r * rowLen, rowLen);
                if (!accumulate) outRow.Clear();
                for (int k = 0; k < taps.Count[d]; k++)
                {
                    var inRow = src.AsSpan(srcOff + (plane * srcH + taps.Start[d] + k) * rowLen, rowLen);
                    TensorPrimitives.MultiplyAdd(inRow, taps.Weights[d * taps.Stride + k], outRow, outRow);
                }
            }
        });
    }

    /// <summary>
    /// Rows are independent: <see cref="CpuLoop.Chunks"/> splits them over cores in ranges of roughly equal
    /// cost, about 2^15 multiply-adds each (the passes give the cost of a row; chosen with the op, no
    /// measurement recorded).
    /// </summary>
    const int FlopsPerChunk = 1 << 15;

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        /// <summary>x [n, c, h, w] -> y [n, c, outH, outW], each output from its 2-D window directly.</summary>
        public static double[] Forward(double[] x, int n, int c, int h, int w, int outH, int outW)
        {
            if (x.Length != n * c * h * w) throw new ArgumentException($"x has {x.Length} values, expected {n}*{c}*{h}*{w}.");
            var y = new double[n * c * outH * outW];
            for (int p = 0; p < n * c; p++)
                for (int oy = 0; oy < outH; oy++)
                {
                    var (y0, wy) = Window(oy, h, outH);
                    for (int ox = 0; ox < outW; ox++)
                    {
                        var (x0, wx) = Window(ox, w, outW);
                        double sum = 0;
                        for (int a = 0; a < wy.Length; a++)
                            for (int b = 0; b < wx.Length; b++)
                                sum += wy[a] * wx[b] * x[(p * h + y0 + a) * w + x0 + b];
                        y[(p * outH + oy) * outW + ox] = sum;
                    }
                }
            return y;
        }

        /// <summary>First input and normalized weights of output <paramref name="o"/> along one axis (PIL's ImagingResample).</summary>
        internal static (int Start, double[] Weights) Window(int o, int inSize, int outSize)
        {
            double scale = (double)inSize / outSize, support = Math.Max(scale, 1.0);
            double center = (o + 0.5) * scale;
            int start = Math.Max((int)(center - support + 0.5), 0);
            int end = Math.Min((int)(center + support + 0.5), inSize);
            var weights = new double[end - start];
            for (int i = start; i < end; i++) weights[i - start] = Math.Max(0.0, 1.0 - Math.Abs((i + 0.5 - center) / support));
            double total = weights.Sum();
            for (int k = 0; k < weights.Length; k++) weights[k] /= total;
            return (start, weights);
        }
    }
}
