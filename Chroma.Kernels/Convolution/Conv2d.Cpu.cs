using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Chroma.Kernels;

public static partial class Conv2d
{
    /// <summary>
    /// Column-buffer size the CPU path aims for, in floats (4 MB: stays in the last-level cache
    /// between im2col writing it and the matrix product reading it). Tests shrink it.
    /// </summary>
    internal static long CpuColumnBudget = 1 << 20;

    /// <summary>
    /// Narrowest chunk the CPU path builds when images are small (7x7 .. 28x28 layers), so the
    /// matrix product has enough columns to block and split over cores. Tests change it.
    /// </summary>
    internal static int CpuMinColumns = 512;

    // im2col's temporaries (per thread, Workspace leases): the column matrix [Ckk, Width] of one chunk's
    // group (reused for dcols in backward), and the chunk's product [Cout/G, Width] (forward) or gathered
    // dY [Cout/G, Width] (backward) when several images share a chunk.
    [ThreadStatic] static Workspace? _im2colColumns, _im2colProduct;

    static void ForwardCpu(ConvArgs s, Tensor x, Tensor w, Tensor? b, Tensor y, CpuAlgorithm algorithm, Gemm.CpuKernel kernel, bool relu)
    {
        if (algorithm == CpuAlgorithm.Winograd4x4)
        {
            WinogradCpu(s.N, s.Cin, s.H, s.W, s.Cout, s.Pad, x.HostArray, x.Offset, w.HostArray, w.Offset, rotate: false,
                b?.HostArray, b?.Offset ?? 0, y.HostArray, y.Offset, accumulate: false, relu, kernel);
            return;
        }
        if (algorithm == CpuAlgorithm.DirectGemm)
        {
            DirectCpu(s, x, w, b, y, kernel, relu);
            return;
        }
        var (images, rows) = s.IsPointwise && s.HoWo >= CpuMinColumns ? (1, s.Ho) : PlanChunks(s, CpuColumnBudget, CpuMinColumns);
        float[] xa = x.HostArray, wa = w.HostArray, ya = y.HostArray;
        float[]? ba = b?.HostArray;
        int bOff = b?.Offset ?? 0;
        for (int n0 = 0; n0 < s.N; n0 += images)
            for (int r0 = 0; r0 < s.Ho; r0 += rows)
                for (int g = 0; g < s.Groups; g++)
                {
                    // One group's sub-problem (G = 1: the whole convolution): y[:, group g] = W_g * cols_g(x).
                    var c = s with { Image0 = n0, Images = Math.Min(images, s.N - n0), Row0 = r0, Rows = Math.Min(rows, s.Ho - r0), Group = g };
                    bool direct = c.IsPointwise && c.Images == 1;
                    // cols [Ckk, Width]: the column matrix B of the product, as (array, offset, leading dimension).
                    using var cols = Workspace.Take(ref _im2colColumns, direct ? 0 : c.Ckk * c.Width);
                    float[] colArr; int colOff, colLd;
                    if (direct)
                    {
                        (colArr, colOff, colLd) = (xa, x.Offset + (c.Image0 * c.Cin + c.XChannel0) * c.HW + c.Row0 * c.W, c.HW);
                    }
                    else
                    {
                        Im2Col(c, xa, x.Offset, cols.Array, cols.Offset);
                        (colArr, colOff, colLd) = (cols.Array, cols.Offset, c.Width);
                    }
                    // W_g [Cout/G, Ckk]: rows YChannel0 .. of w [Cout, Cin/G*K*K]
                    int wOff = w.Offset + c.YChannel0 * c.Ckk;

                    if (c.Images == 1)
                    {
                        // y[n][group g, rows] is a [Cout/G, Rows*Wo] block of the [Cout, HoWo] image: write it in place.
                        int yOff = y.Offset + (c.Image0 * c.Cout + c.YChannel0) * c.HoWo + c.Row0 * c.Wo;
                        Gemm.Cpu(false, false, c.GroupCout, c.Width, c.Ckk, 1f, wa, wOff, c.Ckk, colArr, colOff, colLd, 0f, ya, yOff, c.HoWo);
                        if (ba is not null || relu)
                            for (int o = 0; o < c.GroupCout; o++)
                            {
                                var row = ya.AsSpan(yOff + o * c.HoWo, c.ChunkPixels);
                                if (ba is not null) TensorPrimitives.Add(row, ba[bOff + c.YChannel0 + o], row);
                                if (relu) TensorPrimitives.Max(row, 0f, row);
                            }
                    }
                    else
                    {
                        // product [Cout/G, Width]: the chunk group's output, scattered to its images.
                        using var product = Workspace.Take(ref _im2colProduct, c.GroupCout * c.Width);
                        Gemm.Cpu(false, false, c.GroupCout, c.Width, c.Ckk, 1f, wa, wOff, c.Ckk, colArr, colOff, colLd, 0f, product.Array, product.Offset, c.Width);
                        ScatterOutput(c, product.Array, product.Offset, ya, y.Offset, ba, bOff, relu);
                    }
                }
    }

    static void BackwardCpu(ConvArgs s, Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db, CpuAlgorithm algorithm, Gemm.CpuKernel kernel = Gemm.CpuKernel.Auto)
    {
        if (algorithm == CpuAlgorithm.Winograd4x4)
        {
            // dW in the Winograd domain; dx += conv(dy, rotated w^T) with padding 2 - pad, by Winograd.
            if (db is not null) BiasGradientCpu(s, dy, db);
            WinogradWeightGradientCpu(s.N, s.Cin, s.H, s.W, s.Cout, s.Pad, x.HostArray, x.Offset, dy.HostArray, dy.Offset,
                dw.HostArray, dw.Offset, kernel);
            if (dx is null) return;
            WinogradCpu(s.N, s.Cout, s.Ho, s.Wo, s.Cin, 2 - s.Pad, dy.HostArray, dy.Offset, w.HostArray, w.Offset, rotate: true,
                null, 0, dx.HostArray, dx.Offset, accumulate: true, relu: false, kernel);
            return;
        }
        if (db is not null) BiasGradientCpu(s, dy, db);
        var (images, rows) = s.IsPointwise && s.HoWo >= CpuMinColumns ? (1, s.Ho) : PlanChunks(s, CpuColumnBudget, CpuMinColumns);
        float[] xa = x.HostArray, wa = w.HostArray, dya = dy.HostArray, dwa = dw.HostArray;
        for (int n0 = 0; n0 < s.N; n0 += images)
            for (int r0 = 0; r0 < s.Ho; r0 += rows)
                for (int g = 0; g < s.Groups; g++)
                {
                    var c = s with { Image0 = n0, Images = Math.Min(images, s.N - n0), Row0 = r0, Rows = Math.Min(rows, s.Ho - r0), Group = g };
                    bool direct = c.IsPointwise && c.Images == 1;
                    int xChunk = x.Offset + (c.Image0 * c.Cin + c.XChannel0) * c.HW + c.Row0 * c.W;

                    // cols [Ckk, Width] of the group (reused for dcols once dW has been accumulated).
                    using var cols = Workspace.Take(ref _im2colColumns, direct ? 0 : c.Ckk * c.Width);
                    float[] colArr; int colOff, colLd;
                    if (direct) (colArr, colOff, colLd) = (xa, xChunk, c.HW);
                    else
                    {
                        Im2Col(c, xa, x.Offset, cols.Array, cols.Offset);
                        (colArr, colOff, colLd) = (cols.Array, cols.Offset, c.Width);
                    }

                    // dY of the chunk's group as a [Cout/G, Width] matrix (gathered when several images share the chunk).
                    using var gathered = Workspace.Take(ref _im2colProduct, c.Images == 1 ? 0 : c.GroupCout * c.Width);
                    float[] dyArr; int dyOff, dyLd;
                    if (c.Images == 1) (dyArr, dyOff, dyLd) = (dya, dy.Offset + (c.Image0 * c.Cout + c.YChannel0) * c.HoWo + c.Row0 * c.Wo, c.HoWo);
                    else
                    {
                        GatherOutputGradient(c, dya, dy.Offset, gathered.Array, gathered.Offset);
                        (dyArr, dyOff, dyLd) = (gathered.Array, gathered.Offset, c.Width);
                    }

                    // dW_g [Cout/G, Ckk] += dY [Cout/G, Width] * cols^T: rows YChannel0 .. of dw, as W_g of w.
                    int wRows = c.YChannel0 * c.Ckk;
                    Gemm.Cpu(false, true, c.GroupCout, c.Ckk, c.Width, 1f, dyArr, dyOff, dyLd, colArr, colOff, colLd, 1f, dwa, dw.Offset + wRows, c.Ckk);

                    if (dx is null) continue;
                    // dcols [Ckk, Width] = W_g^T * dY; a direct pointwise chunk's dcols is dx[n, group g] itself.
                    if (direct)
                        Gemm.Cpu(true, false, c.Ckk, c.Width, c.GroupCout, 1f, wa, w.Offset + wRows, c.Ckk, dyArr, dyOff, dyLd, 1f, dx.HostArray, dx.Offset + (xChunk - x.Offset), c.HW);
                    else
                    {
                        Gemm.Cpu(true, false, c.Ckk, c.Width, c.GroupCout, 1f, wa, w.Offset + wRows, c.Ckk, dyArr, dyOff, dyLd, 0f, cols.Array, cols.Offset, c.Width);
                        Col2Im(c, cols.Array, cols.Offset, dx.HostArray, dx.Offset);
                    }
                }
    }

    /// <summary>db[o] += sum over images and pixels of dy[n, o].</summary>
    static void BiasGradientCpu(ConvArgs s, Tensor dy, Tensor db)
    {
        float[] dya = dy.HostArray, dba = db.HostArray;
        int dyOff = dy.Offset, dbOff = db.Offset;
        CpuLoop.For(s.Cout, (long)s.N * s.HoWo, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int o) =>
        {
            double sum = 0;
            for (int n = 0; n < s.N; n++)
                sum += TensorPrimitives.Sum(dya.AsSpan(dyOff + (n * s.Cout + o) * s.HoWo, s.HoWo));
            dba[dbOff + o] += (float)sum;
        });
    }

    /// <summary>
    /// Fills cols [Ckk, Width] for the chunk's group: row (c, u, v), column (image, i, j) holds
    /// x[Image0 + image, XChannel0 + c, i*stride - pad + u*dil, j*stride - pad + v*dil] (0 in the padding).
    /// One task per (image, channel of the group, kernel row u), so even a one-channel input keeps every core
    /// busy; each writes K*Rows runs of Wo floats.
    /// </summary>
    static unsafe void Im2Col(ConvArgs c, float[] x, int xOffset, float[] cols, int colsOffset)
    {
        int gcin = c.GroupCin;
        CpuLoop.For(c.Images * gcin * c.K, (long)c.K * c.ChunkPixels, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int task) =>
        {
            int u = task % c.K, plane = task / c.K;
            int img = plane / gcin, ch = plane % gcin;
            fixed (float* xBase = x, colBase = cols)
            {
                float* src = xBase + xOffset + (long)((c.Image0 + img) * c.Cin + c.XChannel0 + ch) * c.HW;
                for (int v = 0; v < c.K; v++)
                {
                    var (lo, hi) = ValidColumns(c, v);
                    int row = (ch * c.K + u) * c.K + v;
                    float* dst = colBase + colsOffset + (long)row * c.Width + (long)img * c.ChunkPixels;
                    for (int i = 0; i < c.Rows; i++)
                    {
                        float* line = dst + (long)i * c.Wo;
                        int iy = (c.Row0 + i) * c.Stride - c.Pad + u * c.Dilation;
                        if (iy < 0 || iy >= c.H || hi <= lo) { new Span<float>(line, c.Wo).Clear(); continue; }
                        if (lo > 0) new Span<float>(line, lo).Clear();
                        if (hi < c.Wo) new Span<float>(line + hi, c.Wo - hi).Clear();
                        int ix0 = lo * c.Stride - c.Pad + v * c.Dilation;
                        float* s = src + (long)iy * c.W + ix0;
                        if (c.Stride == 1) new ReadOnlySpan<float>(s, hi - lo).CopyTo(new Span<float>(line + lo, hi - lo));
                        else StridedCopy(s, c.Stride, line + lo, hi - lo, c.W - ix0);
                    }
                }
            }
        });
    }

    /// <summary>
    /// dst[j] = src[j * stride] for j &lt; count; <paramref name="available"/> floats may be read
    /// from src. Stride 2 (the network's downsampling layers) takes the even lanes of two vectors.
    /// </summary>
    static unsafe void StridedCopy(float* src, int stride, float* dst, int count, int available)
    {
        int j = 0;
        if (stride == 2 && Avx2.IsSupported)
            for (; j + 8 <= count && 2 * j + 16 <= available; j += 8)
            {
                Vector256<float> v0 = Avx.LoadVector256(src + 2 * j), v1 = Avx.LoadVector256(src + 2 * j + 8);
                // lanes (v0[0], v0[2], v1[0], v1[2] | v0[4], v0[6], v1[4], v1[6]), then the middle quarters swapped
                Vector256<float> even = Avx.Shuffle(v0, v1, 0b10_00_10_00);
                Avx.Store(dst + j, Avx2.Permute4x64(even.AsDouble(), 0b11_01_10_00).AsSingle());
            }
        for (; j < count; j++) dst[j] = src[(long)j * stride];
    }

    /// <summary>
    /// The inverse scatter of <see cref="Im2Col"/>: adds every entry of dcols [Ckk, Width] into the
    /// dx pixel it was read from (channels of the chunk's group). One task per (image, channel), so no two
    /// tasks touch the same pixel.
    /// </summary>
    static unsafe void Col2Im(ConvArgs c, float[] dcols, int dcolsOffset, float[] dx, int dxOffset)
    {
        int gcin = c.GroupCin;
        CpuLoop.For(c.Images * gcin, (long)c.K * c.K * c.ChunkPixels, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int task) =>
        {
            int img = task / gcin, ch = task % gcin;
            var plane = dx.AsSpan(dxOffset + ((c.Image0 + img) * c.Cin + c.XChannel0 + ch) * c.HW, c.HW);
            for (int u = 0; u < c.K; u++)
                for (int v = 0; v < c.K; v++)
                {
                    var (lo, hi) = ValidColumns(c, v);
                    if (hi <= lo) continue;
                    int row = (ch * c.K + u) * c.K + v;
                    var src = dcols.AsSpan(dcolsOffset + row * c.Width + img * c.ChunkPixels, c.ChunkPixels);
                    for (int i = 0; i < c.Rows; i++)
                    {
                        int iy = (c.Row0 + i) * c.Stride - c.Pad + u * c.Dilation;
                        if (iy < 0 || iy >= c.H) continue;
                        var line = src.Slice(i * c.Wo + lo, hi - lo);
                        var dst = plane.Slice(iy * c.W);
                        int ix0 = lo * c.Stride - c.Pad + v * c.Dilation;
                        if (c.Stride == 1)
                        {
                            var d = dst.Slice(ix0, hi - lo);
                            TensorPrimitives.Add(d, line, d);
                        }
                        else
                            fixed (float* d = dst.Slice(ix0), l = line)
                                for (int j = 0; j < line.Length; j++) d[(long)j * c.Stride] += l[j];
                    }
                }
        });
    }

    /// <summary>Output columns [lo, hi) whose kernel column <paramref name="v"/> lands inside the image (the rest read padding).</summary>
    static (int Lo, int Hi) ValidColumns(in ConvArgs c, int v)
    {
        // j*stride - pad + v*dil >= 0  and  j*stride - pad + v*dil <= W - 1
        int tap = v * c.Dilation;
        int first = c.Pad - tap, last = c.W - 1 + c.Pad - tap;
        int lo = first <= 0 ? 0 : (first + c.Stride - 1) / c.Stride;
        int hi = last < 0 ? 0 : Math.Min(c.Wo, last / c.Stride + 1);
        return (Math.Min(lo, c.Wo), hi);
    }

    /// <summary>
    /// y[Image0 + m, YChannel0 + o, :] = product[o, m*HoWo ..] + b[YChannel0 + o] (then ReLU) for a chunk of whole
    /// images: product [Cout/G, Width] is the chunk group's output.
    /// </summary>
    static void ScatterOutput(ConvArgs c, float[] product, int productOffset, float[] y, int yOffset, float[]? bias, int biasOffset, bool relu)
    {
        int gcout = c.GroupCout;
        CpuLoop.For(c.Images * gcout, c.HoWo, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int task) =>
        {
            int img = task / gcout, o = task % gcout;
            var src = product.AsSpan(productOffset + o * c.Width + img * c.HoWo, c.HoWo);
            var dst = y.AsSpan(yOffset + ((c.Image0 + img) * c.Cout + c.YChannel0 + o) * c.HoWo, c.HoWo);
            if (bias is null) src.CopyTo(dst);
            else TensorPrimitives.Add(src, bias[biasOffset + c.YChannel0 + o], dst);
            if (relu) TensorPrimitives.Max(dst, 0f, dst);
        });
    }

    /// <summary>gathered[o, m*HoWo ..] = dy[Image0 + m, YChannel0 + o, :] for a chunk of whole images: the chunk group's [Cout/G, Width].</summary>
    static void GatherOutputGradient(ConvArgs c, float[] dy, int dyOffset, float[] gathered, int gatheredOffset)
    {
        int gcout = c.GroupCout;
        CpuLoop.For(c.Images * gcout, c.HoWo, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int task) =>
        {
            int img = task / gcout, o = task % gcout;
            dy.AsSpan(dyOffset + ((c.Image0 + img) * c.Cout + c.YChannel0 + o) * c.HoWo, c.HoWo).CopyTo(gathered.AsSpan(gatheredOffset + o * c.Width + img * c.HoWo, c.HoWo));
        });
    }
}
