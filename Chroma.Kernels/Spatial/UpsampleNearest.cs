using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// Nearest-neighbour upsampling by 2 in both spatial axes (the colorization network's decoder).
/// <code>
/// x [N, C, H, W] -> y [N, C, 2H, 2W]
/// forward:  y[n, c, i, j] = x[n, c, i/2, j/2]                        (integer division)
/// backward: dx[n, c, i, j] += sum over a, b in {0, 1} of dy[n, c, 2i + a, 2j + b]
/// </code>
/// </summary>
/// <remarks>
/// Rows of all planes are one sequence: y row r (counted over every N, C) reads x row r/2, because
/// every plane has an even number 2H of output rows. Both paths rely on that instead of splitting n, c.
/// </remarks>
public static class UpsampleNearest
{
    /// <summary>y = x repeated 2 x 2. <paramref name="y"/> is overwritten.</summary>
    public static void Forward(Tensor x, Tensor y)
    {
        const string op = "UpsampleNearest.Forward";
        var (rows, w) = CheckShapes(op, x, "x", y, "y");
        if (y.Length == 0) return;
        if (x.Device is GpuDevice gpu)
            gpu.Kernel<int, ArrayView<float>, ArrayView<float>>(ForwardKernel)(y.Length, w, x.View, y.View);
        else
            ForwardCpu(x.HostArray, x.Offset, y.HostArray, y.Offset, rows, w);
    }

    /// <summary>dx += the sum of each 2 x 2 block of dy.</summary>
    public static void Backward(Tensor dy, Tensor dx)
    {
        const string op = "UpsampleNearest.Backward";
        var (rows, w) = CheckShapes(op, dx, "dx", dy, "dy");
        if (dx.Length == 0) return;
        if (dy.Device is GpuDevice gpu)
            gpu.Kernel<int, ArrayView<float>, ArrayView<float>>(BackwardKernel)(dx.Length, w, dy.View, dx.View);
        else
            BackwardCpu(dy.HostArray, dy.Offset, dx.HostArray, dx.Offset, rows, w);
    }

    /// <summary>Checks small [N, C, H, W] against large [N, C, 2H, 2W]; returns the number of small rows N*C*H and W.</summary>
    static (int Rows, int W) CheckShapes(string op, Tensor small, string smallName, Tensor large, string largeName)
    {
        Check.SameDevice(op, small, large);
        Check.Rank(op, smallName, small, 4);
        int n = small.Dim(0), c = small.Dim(1), h = small.Dim(2), w = small.Dim(3);
        if ((long)h * 2 > int.MaxValue || (long)w * 2 > int.MaxValue)
            throw new ArgumentException($"{op}: {smallName} {small.ShapeString} is too large to upsample.");
        Check.Shape(op, largeName, large, n, c, 2 * h, 2 * w);
        return (n * c * h, w);
    }

    /// <summary>
    /// Rows of x are independent: <see cref="CpuLoop.Chunks"/> splits them over cores in ranges of about
    /// 2^14 floats of x (64 KB; y has four times as many; chosen with the op, no measurement recorded).
    /// </summary>
    const int FloatsPerChunk = 1 << 14;

    static void ForwardCpu(float[] x, int xOff, float[] y, int yOff, int rows, int w)
    {
        CpuLoop.Chunks(rows, w, FloatsPerChunk, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var src = x.AsSpan(xOff + r * w, w);
                var top = y.AsSpan(yOff + 2 * r * 2 * w, 2 * w);
                DuplicateEach(src, top);
                top.CopyTo(y.AsSpan(yOff + (2 * r + 1) * 2 * w, 2 * w));
            }
        });
    }

    /// <summary>dst[2j] = dst[2j + 1] = src[j].</summary>
    static void DuplicateEach(ReadOnlySpan<float> src, Span<float> dst)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var lowHalf = Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3);
            var highHalf = Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7);
            for (; j + 8 <= src.Length; j += 8)
            {
                var v = Vector256.Create(src.Slice(j, 8));
                Vector256.Shuffle(v, lowHalf).CopyTo(dst.Slice(2 * j, 8));
                Vector256.Shuffle(v, highHalf).CopyTo(dst.Slice(2 * j + 8, 8));
            }
        }
        for (; j < src.Length; j++) dst[2 * j] = dst[2 * j + 1] = src[j];
    }

    static void BackwardCpu(float[] dy, int dyOff, float[] dx, int dxOff, int rows, int w)
    {
        CpuLoop.Chunks(rows, w, FloatsPerChunk, (r0, r1) =>
        {
            // pairSums [2W]: the sum of a block's two dy rows (per thread that runs a range).
            using var lease = Workspace.Take(ref _pairSums, 2 * w);
            var pairSums = lease.Span(2 * w);
            for (int r = r0; r < r1; r++)
            {
                // The two dy rows of a block are added first; then adjacent pairs of that sum go to dx.
                TensorPrimitives.Add(dy.AsSpan(dyOff + 2 * r * 2 * w, 2 * w), dy.AsSpan(dyOff + (2 * r + 1) * 2 * w, 2 * w), pairSums);
                AddPairs(pairSums, dx.AsSpan(dxOff + r * w, w));
            }
        });
    }

    [ThreadStatic] static Workspace? _pairSums;

    /// <summary>dst[j] += src[2j] + src[2j + 1].</summary>
    static void AddPairs(ReadOnlySpan<float> src, Span<float> dst)
    {
        int j = 0;
        if (Avx2.IsSupported)
        {
            for (; j + 8 <= dst.Length; j += 8)
            {
                // hadd works within 128-bit lanes: [p0 p1 p4 p5 | p2 p3 p6 p7] -> swap the middle quarters.
                var sums = Avx.HorizontalAdd(Vector256.Create(src.Slice(2 * j, 8)), Vector256.Create(src.Slice(2 * j + 8, 8)));
                var ordered = Avx2.Permute4x64(sums.AsDouble(), 0b11_01_10_00).AsSingle();
                (Vector256.Create(dst.Slice(j, 8)) + ordered).CopyTo(dst.Slice(j, 8));
            }
        }
        for (; j < dst.Length; j++) dst[j] += src[2 * j] + src[2 * j + 1];
    }

    // One thread per element of y [.., 2H, 2W].
    static void ForwardKernel(Index1D i, int w, ArrayView<float> x, ArrayView<float> y)
    {
        int w2 = 2 * w;
        int col = i % w2, row = i / w2;
        y[i] = x[(row / 2) * w + col / 2];
    }

    // One thread per element of dx [.., H, W]: gathers its 2 x 2 block of dy, so no two threads write one place.
    static void BackwardKernel(Index1D i, int w, ArrayView<float> dy, ArrayView<float> dx)
    {
        int w2 = 2 * w;
        int col = i % w, row = i / w;
        int top = 2 * row * w2 + 2 * col, bottom = top + w2;
        dx[i] += dy[top] + dy[top + 1] + dy[bottom] + dy[bottom + 1];
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        /// <summary>x [n, c, h, w] -> y [n, c, 2h, 2w].</summary>
        public static double[] Forward(double[] x, int n, int c, int h, int w)
        {
            if (x.Length != n * c * h * w) throw new ArgumentException($"x has {x.Length} values, expected {n}*{c}*{h}*{w}.");
            var y = new double[n * c * 4 * h * w];
            for (int p = 0; p < n * c; p++)
                for (int i = 0; i < 2 * h; i++)
                    for (int j = 0; j < 2 * w; j++)
                        y[(p * 2 * h + i) * 2 * w + j] = x[(p * h + i / 2) * w + j / 2];
            return y;
        }
    }
}
