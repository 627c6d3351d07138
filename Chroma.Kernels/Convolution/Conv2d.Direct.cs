using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static Chroma.Kernels.Gemm;

namespace Chroma.Kernels;

// CPU forward of the convolutions Winograd does not take (stride 2, 1x1, tiny maps): the im2col
// product y[n] = W [Cout, Cin*K*K] * cols [Cin*K*K, Ho*Wo] + b, but with the columns packed straight
// from the image into the GEMM micro-kernel's NR-wide B panels, never written as a column matrix:
//
//   W packed once per call into MR-tall A panels, k blocks of KC rows     (A block [Cout, KC] in L2)
//   parallel over (image, panel of NR output pixels):
//     for each k block: gather the B panel [KC, NR] from x (L1), run every A panel against it
//     bias (+ ReLU) on the panel's Cout x NR outputs while they are in cache
//
// im2col + GEMM writes the column matrix, reads it again to pack it, and packs it a second time:
// three passes over Cin*K*K*Ho*Wo floats where this makes one gather into L1. Measured on the 2-core
// Xeon (AVX-512), width 1.0 at 512x512: low.conv3 (128 -> 128, stride 2) 52.6 -> 39 ms written in
// place, low.conv5 44.7 -> 24.8 ms; the compact output block below took them further (docs/BENCHMARKS.md).
public static partial class Conv2d
{
    [ThreadStatic] static Workspace? _directA, _directB, _directEdge;

    static void DirectCpu(ConvArgs s, Tensor x, Tensor w, Tensor? b, Tensor y, CpuKernel kernel, bool relu)
    {
        if (kernel == CpuKernel.Auto) kernel = Widest();
        else if (!IsAccelerated(kernel)) throw new PlatformNotSupportedException($"Conv2d: {kernel} is not accelerated on this machine.");
        switch (kernel)
        {
            case CpuKernel.Vector512: Direct<Vector512Ops, Vector512<float>>(s, x, w, b, y, relu, kc: 192); break;
            case CpuKernel.Vector256: Direct<Vector256Ops, Vector256<float>>(s, x, w, b, y, relu, kc: 256); break;
            case CpuKernel.Vector128: Direct<Vector128Ops, Vector128<float>>(s, x, w, b, y, relu, kc: 256); break;
            default: Direct<ScalarOps, float>(s, x, w, b, y, relu, kc: 256); break;
        }
    }

    static unsafe void Direct<TOps, TVec>(ConvArgs whole, Tensor x, Tensor w, Tensor? b, Tensor y, bool relu, int kc)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        // Per group (G = 1: once), the group's Cout/G filters against its Cin/G input channels.
        int nr = 2 * TOps.Count, ckk = whole.Ckk, cout6 = (whole.GroupCout + Mr - 1) / Mr * Mr, oPanels = cout6 / Mr;
        int panels = (whole.HoWo + nr - 1) / nr;
        using var aLease = Workspace.Take(ref _directA, cout6 * ckk);
        nint a = (nint)aLease.Pointer;
        float[] xa = x.HostArray, ya = y.HostArray;
        float[]? ba = b?.HostArray;
        int xOff = x.Offset, yOff = y.Offset, bOff = b?.Offset ?? 0;
        for (int g = 0; g < whole.Groups; g++)
        {
            var s = whole with { Group = g };
            int gcout = s.GroupCout, y0 = s.YChannel0;
            PackFilters(s, w.HostArray, w.Offset, (float*)a, kc);
            CpuLoop.For(s.N * panels, 2L * gcout * ckk * nr, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int item) =>
            {
                int n = item / panels, q = item % panels;
                int p0 = q * nr, cols = Math.Min(nr, s.HoWo - p0);
                using var bLease = Workspace.Take(ref _directB, kc * nr);
                using var cLease = Workspace.Take(ref _directEdge, cout6 * nr);
                // The panel's outputs accumulate over the k blocks in a compact [Cout6][NR] block, not in y:
                // y's rows are Ho*Wo apart, often a multiple of 4 KB (64x64, 128x128 maps), which puts every
                // row of the micro-tile in one L1 set (measured: low.conv3 at width 1, 52 -> 39 ms in place).
                fixed (float* yBase = ya)
                {
                    float* c = cLease.Pointer;
                    nint ldc = nr;
                    for (int k0 = 0; k0 < ckk; k0 += kc)
                    {
                        int kcb = Math.Min(kc, ckk - k0);
                        GatherColumns(s, xa, xOff, n, p0, cols, nr, k0, kcb, bLease.Pointer);
                        float* aBlock = (float*)a + (long)k0 * cout6;
                        for (int op = 0; op < oPanels; op++)
                            MicroKernel<TOps, TVec>(kcb, aBlock + (long)op * Mr * kcb, bLease.Pointer, c + op * Mr * ldc, ldc, 1f, k0 == 0 ? 0f : 1f, Mr);
                    }
                    float* dst = yBase + yOff + ((long)n * s.Cout + y0) * s.HoWo + p0;
                    for (int o = 0; o < gcout; o++)
                    {
                        var row = new Span<float>(dst + (long)o * s.HoWo, cols);
                        var acc = new ReadOnlySpan<float>(c + o * nr, cols);
                        if (ba is not null) System.Numerics.Tensors.TensorPrimitives.Add(acc, ba[bOff + y0 + o], row);
                        else acc.CopyTo(row);
                        if (relu) System.Numerics.Tensors.TensorPrimitives.Max(row, 0f, row);
                    }
                }
            });
        }
    }

    /// <summary>
    /// W_g [Cout/G, Ckk] (rows YChannel0 .. of w) into MR-tall A panels per k block: block k0 at k0 * Cout6,
    /// panel op at op * MR * kcb, [kcb][MR]; rows past Cout/G zero.
    /// </summary>
    static unsafe void PackFilters(in ConvArgs s, float[] w, int wOff, float* a, int kc)
    {
        int ckk = s.Ckk, gcout = s.GroupCout, cout6 = (gcout + Mr - 1) / Mr * Mr;
        wOff += s.YChannel0 * ckk;
        for (int k0 = 0; k0 < ckk; k0 += kc)
        {
            int kcb = Math.Min(kc, ckk - k0);
            float* block = a + (long)k0 * cout6;
            for (int o = 0; o < cout6; o++)
            {
                float* dst = block + (long)(o / Mr) * Mr * kcb + o % Mr;
                if (o >= gcout) { for (int k = 0; k < kcb; k++) dst[k * Mr] = 0f; continue; }
                int src = wOff + o * ckk + k0;
                for (int k = 0; k < kcb; k++) dst[k * Mr] = w[src + k];
            }
        }
    }

    /// <summary>
    /// The B panel [kcb][NR]: row r = (c, u, v) of the group's column matrix (r in [k0, k0 + kcb)), lane l the
    /// output pixel p0 + l of image n: x[n, XChannel0 + c, i*stride - pad + u*dil, j*stride - pad + v*dil] (0 in the
    /// padding and past the last pixel). Output pixels are walked in runs along an output row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void GatherColumns(in ConvArgs s, float[] x, int xOff, int n, int p0, int cols, int nr, int k0, int kcb, float* dst)
    {
        int k = s.K, stride = s.Stride, pad = s.Pad, w = s.W, h = s.H, dil = s.Dilation;
        // The panel's pixels as runs along output rows (one or two for wide maps), worked out once.
        int maxRuns = Math.Min(cols, cols / Math.Max(1, s.Wo) + 2);
        int* runLane = stackalloc int[maxRuns], runRow = stackalloc int[maxRuns], runJ0 = stackalloc int[maxRuns], runLen = stackalloc int[maxRuns];
        int runs = 0;
        for (int lane = 0; lane < cols; runs++)
        {
            int p = p0 + lane, j0 = p % s.Wo;
            runLane[runs] = lane; runRow[runs] = p / s.Wo * stride - pad; runJ0[runs] = j0;
            runLen[runs] = Math.Min(cols - lane, s.Wo - j0);
            lane += runLen[runs];
        }
        // Output columns [lo, hi) whose kernel column v reads inside the row, per v.
        int* lo = stackalloc int[k], hi = stackalloc int[k];
        for (int v0 = 0; v0 < k; v0++) (lo[v0], hi[v0]) = ValidColumns(s, v0);

        int c = k0 / (k * k), u = k0 / k % k, v = k0 % k;
        fixed (float* xBase = x)
        {
            float* plane = xBase + xOff + ((long)n * s.Cin + s.XChannel0 + c) * s.HW;
            for (int r = 0; r < kcb; r++)
            {
                float* d = dst + r * nr;
                for (int q = 0; q < runs; q++)
                {
                    float* dr = d + runLane[q];
                    int j0 = runJ0[q], run = runLen[q], iy = runRow[q] + u * dil;
                    if (iy < 0 || iy >= h) { new Span<float>(dr, run).Clear(); continue; }
                    // Output columns [a, e) of the run read inside the row; the rest read padding.
                    int a = Math.Clamp(lo[v], j0, j0 + run), e = Math.Clamp(hi[v], a, j0 + run);
                    if (a > j0) new Span<float>(dr, a - j0).Clear();
                    if (e > a)
                    {
                        int ix = a * stride - pad + v * dil;
                        float* src = plane + (long)iy * w + ix;
                        if (stride == 1) new ReadOnlySpan<float>(src, e - a).CopyTo(new Span<float>(dr + (a - j0), e - a));
                        else StridedCopy(src, stride, dr + (a - j0), e - a, w - ix);
                    }
                    if (j0 + run > e) new Span<float>(dr + (e - j0), j0 + run - e).Clear();
                }
                if (cols < nr) new Span<float>(d + cols, nr - cols).Clear();
                if (++v == k) { v = 0; if (++u == k) { u = 0; c++; plane += s.HW; } }
            }
        }
    }
}
