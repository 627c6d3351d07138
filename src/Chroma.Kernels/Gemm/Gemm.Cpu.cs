using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

// Tests force each micro-kernel width through the internal overload of Gemm.Cpu.

namespace Chroma.Kernels;

// CPU path: a GotoBLAS/BLIS-style blocked product in managed code.
//
//   for jc over N in steps of NC                        B block  [KC, NC]  lives in L3 (shared)
//     for pc over K in steps of KC
//       pack B[pc:pc+KC, jc:jc+NC] into NR-wide panels  (all threads, one panel range each)
//       parallel over (ic block of MC rows) x (range of NR panels):
//         pack A[ic:ic+MC, pc:pc+KC] into MR-tall panels  A block [MC, KC] lives in L2 (per thread)
//         for each NR panel of B                          B micro-panel [KC, NR] stays in L1
//           for each MR panel of A
//             micro-kernel: C[MR, NR] (+)= A panel [MR, KC] * B panel [KC, NR] in registers
//
// Packing absorbs both transpose flags, so one micro-kernel sees one layout:
//   A panel: element (r, p) at a[p*MR + r]      B panel: element (p, j) at b[p*NR + j].
// Partial panels are padded with zeros; the micro-kernel always computes a full MR x NR tile
// and edge tiles go through a small buffer, so only the valid part of C is touched.
//
// The micro-kernel is MR = 6 rows by two vectors of B (NR = 2 vector widths): 12 accumulators,
// 2 B loads and 6 broadcasts per step of k. It is written once, generic over the vector width
// (IVectorOps): Vector512 (6x32), Vector256 (6x16, AVX2/FMA; 12 of the 16 ymm registers hold C),
// Vector128 (6x8) and scalar (6x2), picked at run time by what the hardware accelerates.
// Block sizes for the Vector256 kernel follow BLIS's Zen 2 sgemm configuration
// (KC = 256: the 16 KB B micro-panel fits a 32 KB L1d; MC = 144: the 144 KB A block fits a
// 512 KB L2; KC = 320, 384, 512 and MC = 96, 240 measured within noise of it). The Vector512 kernel's
// B micro-panel is twice as wide, so KC = 192 keeps it (24 KB) in L1.
//
// Measured on a 2-core Zen 2 (AVX2), 1024^3: 184 GFLOP/s on both cores, 93 per core
// (PyTorch/OpenBLAS: 194), any transpose combination within 3%.
public static partial class Gemm
{
    /// <summary>Micro-kernel widths of the CPU path; <see cref="Auto"/> takes the widest the hardware accelerates.</summary>
    internal enum CpuKernel { Auto, Scalar, Vector128, Vector256, Vector512 }

    const int Mr = 6;          // rows of the micro-tile (broadcasts of A)
    const int McMax = 144;     // rows of an A block (multiple of Mr)
    const int NcMax = 4096;    // columns of a B block (multiple of every Nr)

    // Products below this many multiply-adds run on the calling thread: forking costs more than it saves.
    const long ParallelThreshold = 96L * 96 * 96;

    /// <summary>
    /// CPU path on raw arrays: matrices start at the given offsets with the given leading
    /// dimensions (row strides). Work is split over all cores.
    /// </summary>
    public static void Cpu(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb,
        float beta, float[] c, int cOffset, int ldc) =>
        Cpu(CpuKernel.Auto, transA, transB, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);

    /// <summary>The CPU path with a chosen micro-kernel width (tests run every width the machine has).</summary>
    internal static void Cpu(CpuKernel kernel, bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb,
        float beta, float[] c, int cOffset, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"Gemm.Cpu: sizes must be >= 0, got m={m}, n={n}, k={k}.");
        CheckMatrix("A", a, aOffset, transA ? k : m, transA ? m : k, lda);
        CheckMatrix("B", b, bOffset, transB ? n : k, transB ? k : n, ldb);
        CheckMatrix("C", c, cOffset, m, n, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f) { ScaleC(m, n, beta, c, cOffset, ldc); return; }

        if (kernel == CpuKernel.Auto) kernel = Widest();
        else if (!IsAccelerated(kernel)) throw new PlatformNotSupportedException($"Gemm.Cpu: {kernel} is not accelerated on this machine.");
        var problem = new CpuProblem(transA, transB, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);
        switch (kernel)
        {
            case CpuKernel.Vector512: Blocked<Vector512Ops, Vector512<float>>(problem, kc: 192); break;
            case CpuKernel.Vector256: Blocked<Vector256Ops, Vector256<float>>(problem, kc: 256); break;
            case CpuKernel.Vector128: Blocked<Vector128Ops, Vector128<float>>(problem, kc: 256); break;
            default: Blocked<ScalarOps, float>(problem, kc: 256); break;
        }
    }

    internal static bool IsAccelerated(CpuKernel kernel) => kernel switch
    {
        CpuKernel.Vector512 => Vector512.IsHardwareAccelerated,
        CpuKernel.Vector256 => Vector256.IsHardwareAccelerated,
        CpuKernel.Vector128 => Vector128.IsHardwareAccelerated,
        _ => true,
    };

    static CpuKernel Widest() =>
        Vector512.IsHardwareAccelerated ? CpuKernel.Vector512 :
        Vector256.IsHardwareAccelerated ? CpuKernel.Vector256 :
        Vector128.IsHardwareAccelerated ? CpuKernel.Vector128 : CpuKernel.Scalar;

    static void CheckMatrix(string name, float[] x, int offset, int rows, int cols, int ld)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (rows == 0 || cols == 0) return;   // an empty matrix is never read
        if (ld < cols)
            throw new ArgumentException($"Gemm.Cpu: leading dimension of {name} is {ld}, below its {cols} stored columns.");
        if (offset < 0 || offset + (long)(rows - 1) * ld + cols > x.Length)
            throw new ArgumentException($"Gemm.Cpu: {name} ({rows} x {cols}, leading dimension {ld}, offset {offset}) does not fit its array of {x.Length}.");
    }

    // C = beta * C, with beta == 0 writing zeros (old contents may be NaN).
    static void ScaleC(int m, int n, float beta, float[] c, int cOffset, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = c.AsSpan(cOffset + i * ldc, n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    /// <summary>One product's arguments, shared by the parallel work items.</summary>
    readonly record struct CpuProblem(bool TransA, bool TransB, int M, int N, int K, float Alpha,
        float[] A, int AOffset, int Lda, float[] B, int BOffset, int Ldb, float Beta, float[] C, int COffset, int Ldc);

    static unsafe void Blocked<TOps, TVec>(CpuProblem p, int kc)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count;
        int threads = (long)p.M * p.N * p.K >= ParallelThreshold ? Environment.ProcessorCount : 1;

        // A blocks of equal height (a multiple of Mr, at most McMax); with several threads, a
        // multiple of the thread count so no thread is left with a short last block.
        int icBlocks = (p.M + McMax - 1) / McMax;
        if (threads > 1 && icBlocks > 1) icBlocks = (icBlocks + threads - 1) / threads * threads;
        int mc = RoundUp((p.M + icBlocks - 1) / icBlocks, Mr);
        icBlocks = (p.M + mc - 1) / mc;

        using var bLease = Workspace.Take(ref Workspace.ForB, RoundUp(Math.Min(p.N, NcMax), nr) * Math.Min(p.K, kc));
        float* bPacked = bLease.Pointer;

        for (int jc = 0; jc < p.N; jc += NcMax)
        {
            int ncCur = Math.Min(NcMax, p.N - jc);
            int panels = (ncCur + nr - 1) / nr;
            // Too few A blocks to keep every thread busy: also split the B panels between work items.
            int jrChunks = threads == 1 ? 1 : Math.Clamp((2 * threads + icBlocks - 1) / icBlocks, 1, panels);
            for (int pc = 0; pc < p.K; pc += kc)
            {
                int kcCur = Math.Min(kc, p.K - pc);
                float beta = pc == 0 ? p.Beta : 1f;
                var block = new MacroBlock(jc, ncCur, panels, pc, kcCur, mc, icBlocks, jrChunks, beta, (nint)bPacked);
                if (threads == 1)
                {
                    PackB<TOps, TVec>(p, block, 0, panels);
                    for (int item = 0; item < icBlocks * jrChunks; item++) ComputeItem<TOps, TVec>(p, block, item);
                }
                else ParallelStep<TOps, TVec>(p, block, threads);
            }
        }
    }

    // One (jc, pc) step on all cores: B panels packed in parallel, then the work items.
    // (A method of its own so that the closures are allocated only on this path.)
    static void ParallelStep<TOps, TVec>(CpuProblem p, MacroBlock block, int threads)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int panels = block.Panels, packChunks = Math.Min(threads, panels);
        Parallel.For(0, packChunks, t => PackB<TOps, TVec>(p, block, panels * t / packChunks, panels * (t + 1) / packChunks));
        Parallel.For(0, block.IcBlocks * block.JrChunks, item => ComputeItem<TOps, TVec>(p, block, item));
    }

    /// <summary>Where one (jc, pc) step of the loop nest stands; <c>BPacked</c> is the pinned packed B block.</summary>
    readonly record struct MacroBlock(int Jc, int Nc, int Panels, int Pc, int Kc, int Mc, int IcBlocks, int JrChunks, float Beta, nint BPacked);

    static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    // Packs B panels [panel0, panel1) of the block: panel q holds op(B)[pc.., jc + q*NR ..] as [KC, NR].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void PackB<TOps, TVec>(in CpuProblem p, in MacroBlock blk, int panel0, int panel1)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, kc = blk.Kc, w = TOps.Count;
        nint ldb = p.Ldb, panelLength = (nint)nr * kc;
        fixed (float* bBase = p.B)
        {
            float* src = bBase + p.BOffset;
            if (!p.TransB)
            {
                // op(B)(pp, j) = B[pp*ldb + j]: copies of NR-float runs. Walked in strips of RowStrip
                // rows across all panels, so the rows read and the panel stretches written both
                // stay within a few pages (a whole panel at a time touches kc pages of B; a whole
                // row at a time writes to every panel).
                const int RowStrip = 4;
                int j0 = blk.Jc + panel0 * nr, j1 = blk.Jc + Math.Min(panel1 * nr, blk.Nc);
                int fullPanels = (j1 - j0) / nr, cols = j1 - j0 - fullPanels * nr;
                for (int pp0 = 0; pp0 < kc; pp0 += RowStrip)
                {
                    int pp1 = Math.Min(kc, pp0 + RowStrip);
                    float* strip = src + (blk.Pc + pp0) * ldb + j0;
                    float* dStrip = (float*)blk.BPacked + panel0 * panelLength + pp0 * nr;
                    for (int q = 0; q < fullPanels; q++)
                    {
                        float* s = strip + q * nr, d = dStrip + q * panelLength;
                        for (int pp = pp0; pp < pp1; pp++, s += ldb, d += nr)
                        {
                            TOps.Store(d, TOps.Load(s));
                            TOps.Store(d + w, TOps.Load(s + w));
                        }
                    }
                    if (cols > 0)
                    {
                        float* s = strip + fullPanels * nr, d = dStrip + fullPanels * panelLength;
                        for (int pp = pp0; pp < pp1; pp++, s += ldb, d += nr)
                            for (int j = 0; j < nr; j++) d[j] = j < cols ? s[j] : 0f;
                    }
                }
            }
            else
            {
                // op(B)(pp, j) = B[j*ldb + pp]: a transpose. Four stored rows of B at a time are read
                // contiguously along k and transposed in 4 x 4 blocks into four columns of the panel.
                for (int q = panel0; q < panel1; q++)
                {
                    float* dst = (float*)blk.BPacked + q * panelLength;
                    int j0 = blk.Jc + q * nr, cols = Math.Min(nr, blk.Nc - q * nr);
                    int j = 0;
                    if (Sse.IsSupported)
                        for (; j + 4 <= cols; j += 4)
                        {
                            float* s0 = src + (j0 + j) * ldb + blk.Pc, s1 = s0 + ldb, s2 = s1 + ldb, s3 = s2 + ldb;
                            float* d = dst + j;
                            int pp = 0;
                            for (; pp + 4 <= kc; pp += 4, d += 4 * nr)
                            {
                                Vector128<float> r0 = Sse.LoadVector128(s0 + pp), r1 = Sse.LoadVector128(s1 + pp);
                                Vector128<float> r2 = Sse.LoadVector128(s2 + pp), r3 = Sse.LoadVector128(s3 + pp);
                                Vector128<float> t0 = Sse.UnpackLow(r0, r1), t1 = Sse.UnpackHigh(r0, r1);
                                Vector128<float> t2 = Sse.UnpackLow(r2, r3), t3 = Sse.UnpackHigh(r2, r3);
                                Sse.Store(d, Sse.MoveLowToHigh(t0, t2));
                                Sse.Store(d + nr, Sse.MoveHighToLow(t2, t0));
                                Sse.Store(d + 2 * nr, Sse.MoveLowToHigh(t1, t3));
                                Sse.Store(d + 3 * nr, Sse.MoveHighToLow(t3, t1));
                            }
                            for (; pp < kc; pp++, d += nr)
                            {
                                d[0] = s0[pp]; d[1] = s1[pp]; d[2] = s2[pp]; d[3] = s3[pp];
                            }
                        }
                    for (; j < nr; j++)
                    {
                        float* s = src + (j0 + j) * ldb + blk.Pc;
                        if (j < cols)
                            for (int pp = 0; pp < kc; pp++) dst[pp * nr + j] = s[pp];
                        else
                            for (int pp = 0; pp < kc; pp++) dst[pp * nr + j] = 0f;
                    }
                }
            }
        }
    }

    // Packs rows [i0, i0 + rows) of op(A)[:, pc..pc+kc] into MR-tall panels [KC, MR].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void PackA(in CpuProblem p, int i0, int rows, int pc, int kc, float* dst)
    {
        fixed (float* aBase = p.A)
        {
            float* src = aBase + p.AOffset;
            nint lda = p.Lda;
            if (!p.TransA)
            {
                // op(A)(i, pp) = A[i*lda + pp]: per panel, six row streams interleaved.
                for (int ir = 0; ir < rows; ir += Mr, dst += Mr * kc)
                {
                    int mr = Math.Min(Mr, rows - ir);
                    float* r0 = src + (i0 + ir) * lda + pc;
                    if (mr == Mr)
                    {
                        float* r1 = r0 + lda, r2 = r1 + lda, r3 = r2 + lda, r4 = r3 + lda, r5 = r4 + lda;
                        float* d = dst;
                        for (int pp = 0; pp < kc; pp++, d += Mr)
                        {
                            d[0] = r0[pp]; d[1] = r1[pp]; d[2] = r2[pp];
                            d[3] = r3[pp]; d[4] = r4[pp]; d[5] = r5[pp];
                        }
                    }
                    else
                        for (int r = 0; r < Mr; r++)
                        {
                            float* s = r0 + r * lda;
                            for (int pp = 0; pp < kc; pp++) dst[pp * Mr + r] = r < mr ? s[pp] : 0f;
                        }
                }
            }
            else
            {
                // op(A)(i, pp) = A[pp*lda + i]: walk each stored row once, contiguously, handing
                // MR-runs to the panels (panel by panel would stride by lda, which aliases in L1
                // when lda is a multiple of 1024 floats).
                int full = rows / Mr * Mr;
                for (int pp = 0; pp < kc; pp++)
                {
                    float* s = src + (pc + pp) * lda + i0;
                    float* d = dst + pp * Mr;
                    int ir = 0;
                    for (; ir < full; ir += Mr, d += Mr * kc)
                    {
                        d[0] = s[ir]; d[1] = s[ir + 1]; d[2] = s[ir + 2];
                        d[3] = s[ir + 3]; d[4] = s[ir + 4]; d[5] = s[ir + 5];
                    }
                    if (ir < rows)
                        for (int r = 0; r < Mr; r++) d[r] = ir + r < rows ? s[ir + r] : 0f;
                }
            }
        }
    }

    // One work item: A block number item / JrChunks against one range of the B block's panels.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void ComputeItem<TOps, TVec>(in CpuProblem p, in MacroBlock blk, int item)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, kc = blk.Kc;
        int ic = item / blk.JrChunks, chunk = item % blk.JrChunks;
        int i0 = ic * blk.Mc, rows = Math.Min(blk.Mc, p.M - i0);
        int q0 = blk.Panels * chunk / blk.JrChunks, q1 = blk.Panels * (chunk + 1) / blk.JrChunks;
        if (rows <= 0 || q0 >= q1) return;

        using var aLease = Workspace.Take(ref Workspace.ForA, RoundUp(rows, Mr) * kc);
        float* aPacked = aLease.Pointer;
        PackA(p, i0, rows, blk.Pc, kc, aPacked);

        float* edge = stackalloc float[Mr * 2 * 16];   // one micro-tile, room for the widest kernel
        float alpha = p.Alpha, beta = blk.Beta;
        nint ldc = p.Ldc;
        fixed (float* cBase = p.C)
        {
            for (int q = q0; q < q1; q++)
            {
                float* bPanel = (float*)blk.BPacked + (nint)q * nr * kc;
                int j = blk.Jc + q * nr, cols = Math.Min(nr, blk.Nc - q * nr);
                for (int ir = 0; ir < rows; ir += Mr)
                {
                    float* aPanel = aPacked + (nint)ir * kc;
                    float* cTile = cBase + p.COffset + (i0 + ir) * ldc + j;
                    int mr = Math.Min(Mr, rows - ir);
                    if (mr == Mr && cols == nr)
                        MicroKernel<TOps, TVec>(kc, aPanel, bPanel, cTile, ldc, alpha, beta);
                    else
                    {
                        MicroKernel<TOps, TVec>(kc, aPanel, bPanel, edge, nr, 1f, 0f);
                        for (int r = 0; r < mr; r++)
                            for (int jj = 0; jj < cols; jj++)
                            {
                                ref float cij = ref cTile[r * ldc + jj];
                                float v = alpha * edge[r * nr + jj];
                                cij = beta == 0f ? v : v + beta * cij;
                            }
                    }
                }
            }
        }
    }

    // C[6, NR] = alpha * (A panel [6, kc] * B panel [kc, NR]) + beta * C; beta == 0 never reads C.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static unsafe void MicroKernel<TOps, TVec>(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int w = TOps.Count;
        if (Sse.IsSupported)
        {
            // Start fetching the C tile now; it is needed only after the k loop.
            float* cr = c;
            for (int r = 0; r < Mr; r++, cr += ldc) { Sse.Prefetch0(cr); Sse.Prefetch0(cr + 2 * w - 1); }
        }
        TVec c00 = TOps.Zero, c01 = TOps.Zero, c10 = TOps.Zero, c11 = TOps.Zero, c20 = TOps.Zero, c21 = TOps.Zero;
        TVec c30 = TOps.Zero, c31 = TOps.Zero, c40 = TOps.Zero, c41 = TOps.Zero, c50 = TOps.Zero, c51 = TOps.Zero;
        for (int pp = 0; pp < kc; pp++, a += Mr, b += 2 * w)
        {
            TVec b0 = TOps.Load(b), b1 = TOps.Load(b + w);
            TVec ai = TOps.Broadcast(a);
            c00 = TOps.MultiplyAdd(ai, b0, c00); c01 = TOps.MultiplyAdd(ai, b1, c01);
            ai = TOps.Broadcast(a + 1);
            c10 = TOps.MultiplyAdd(ai, b0, c10); c11 = TOps.MultiplyAdd(ai, b1, c11);
            ai = TOps.Broadcast(a + 2);
            c20 = TOps.MultiplyAdd(ai, b0, c20); c21 = TOps.MultiplyAdd(ai, b1, c21);
            ai = TOps.Broadcast(a + 3);
            c30 = TOps.MultiplyAdd(ai, b0, c30); c31 = TOps.MultiplyAdd(ai, b1, c31);
            ai = TOps.Broadcast(a + 4);
            c40 = TOps.MultiplyAdd(ai, b0, c40); c41 = TOps.MultiplyAdd(ai, b1, c41);
            ai = TOps.Broadcast(a + 5);
            c50 = TOps.MultiplyAdd(ai, b0, c50); c51 = TOps.MultiplyAdd(ai, b1, c51);
        }
        TVec va = TOps.Broadcast(&alpha);
        if (beta == 0f)
        {
            TOps.Store(c, TOps.Multiply(va, c00)); TOps.Store(c + w, TOps.Multiply(va, c01)); c += ldc;
            TOps.Store(c, TOps.Multiply(va, c10)); TOps.Store(c + w, TOps.Multiply(va, c11)); c += ldc;
            TOps.Store(c, TOps.Multiply(va, c20)); TOps.Store(c + w, TOps.Multiply(va, c21)); c += ldc;
            TOps.Store(c, TOps.Multiply(va, c30)); TOps.Store(c + w, TOps.Multiply(va, c31)); c += ldc;
            TOps.Store(c, TOps.Multiply(va, c40)); TOps.Store(c + w, TOps.Multiply(va, c41)); c += ldc;
            TOps.Store(c, TOps.Multiply(va, c50)); TOps.Store(c + w, TOps.Multiply(va, c51));
        }
        else
        {
            TVec vb = TOps.Broadcast(&beta);
            TOps.Store(c, TOps.MultiplyAdd(va, c00, TOps.Multiply(vb, TOps.Load(c)))); TOps.Store(c + w, TOps.MultiplyAdd(va, c01, TOps.Multiply(vb, TOps.Load(c + w)))); c += ldc;
            TOps.Store(c, TOps.MultiplyAdd(va, c10, TOps.Multiply(vb, TOps.Load(c)))); TOps.Store(c + w, TOps.MultiplyAdd(va, c11, TOps.Multiply(vb, TOps.Load(c + w)))); c += ldc;
            TOps.Store(c, TOps.MultiplyAdd(va, c20, TOps.Multiply(vb, TOps.Load(c)))); TOps.Store(c + w, TOps.MultiplyAdd(va, c21, TOps.Multiply(vb, TOps.Load(c + w)))); c += ldc;
            TOps.Store(c, TOps.MultiplyAdd(va, c30, TOps.Multiply(vb, TOps.Load(c)))); TOps.Store(c + w, TOps.MultiplyAdd(va, c31, TOps.Multiply(vb, TOps.Load(c + w)))); c += ldc;
            TOps.Store(c, TOps.MultiplyAdd(va, c40, TOps.Multiply(vb, TOps.Load(c)))); TOps.Store(c + w, TOps.MultiplyAdd(va, c41, TOps.Multiply(vb, TOps.Load(c + w)))); c += ldc;
            TOps.Store(c, TOps.MultiplyAdd(va, c50, TOps.Multiply(vb, TOps.Load(c)))); TOps.Store(c + w, TOps.MultiplyAdd(va, c51, TOps.Multiply(vb, TOps.Load(c + w))));
        }
    }

    /// <summary>The handful of vector operations the micro-kernel and packing need, for one vector width.</summary>
    internal unsafe interface IVectorOps<TVec> where TVec : struct
    {
        /// <summary>Floats per vector.</summary>
        static abstract int Count { get; }
        static abstract TVec Zero { get; }
        static abstract TVec Load(float* p);
        static abstract void Store(float* p, TVec v);
        /// <summary>All lanes set to *p.</summary>
        static abstract TVec Broadcast(float* p);
        static abstract TVec Multiply(TVec x, TVec y);
        /// <summary>x * y + z, fused where the hardware has FMA.</summary>
        static abstract TVec MultiplyAdd(TVec x, TVec y, TVec z);
    }

    internal unsafe struct Vector512Ops : IVectorOps<Vector512<float>>
    {
        public static int Count => Vector512<float>.Count;
        public static Vector512<float> Zero => Vector512<float>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float* p) => Vector512.Create(*p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> x, Vector512<float> y) => x * y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MultiplyAdd(Vector512<float> x, Vector512<float> y, Vector512<float> z) => Vector512.MultiplyAddEstimate(x, y, z);
    }

    internal unsafe struct Vector256Ops : IVectorOps<Vector256<float>>
    {
        public static int Count => Vector256<float>.Count;
        public static Vector256<float> Zero => Vector256<float>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float* p) => Vector256.Create(*p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> x, Vector256<float> y) => x * y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MultiplyAdd(Vector256<float> x, Vector256<float> y, Vector256<float> z) => Vector256.MultiplyAddEstimate(x, y, z);
    }

    internal unsafe struct Vector128Ops : IVectorOps<Vector128<float>>
    {
        public static int Count => Vector128<float>.Count;
        public static Vector128<float> Zero => Vector128<float>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> v) => v.Store(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float* p) => Vector128.Create(*p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Multiply(Vector128<float> x, Vector128<float> y) => x * y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MultiplyAdd(Vector128<float> x, Vector128<float> y, Vector128<float> z) => Vector128.MultiplyAddEstimate(x, y, z);
    }

    internal unsafe struct ScalarOps : IVectorOps<float>
    {
        public static int Count => 1;
        public static float Zero => 0f;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(float* p) => *p;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, float v) => *p = v;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Broadcast(float* p) => *p;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Multiply(float x, float y) => x * y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MultiplyAdd(float x, float y, float z) => x * y + z;
    }

    /// <summary>
    /// A per-thread packing buffer: pinned (pointers stay valid), 64-byte aligned, grown on demand
    /// and kept, so a steady stream of products allocates nothing. A thread that re-enters while
    /// its buffer is leased gets a temporary one.
    /// </summary>
    sealed unsafe class Workspace
    {
        [ThreadStatic] internal static Workspace? ForA;
        [ThreadStatic] internal static Workspace? ForB;

        float[] _data = [];
        float* _aligned;
        bool _leased;

        public static Lease Take(ref Workspace? slot, int floats)
        {
            var w = slot ??= new Workspace();
            if (w._leased) w = new Workspace();
            w._leased = true;
            if (w._data.Length < floats + 16)
            {
                w._data = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
                nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(w._data));
                w._aligned = (float*)((start + 63) & ~(nint)63);
            }
            return new Lease(w);
        }

        public readonly struct Lease(Workspace owner) : IDisposable
        {
            public float* Pointer => owner._aligned;
            public void Dispose() => owner._leased = false;
        }
    }
}
