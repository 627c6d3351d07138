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

    internal const int Mr = 6; // rows of the micro-tile (broadcasts of A)
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

    internal static CpuKernel Widest() =>
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

    // Work split. Every choice below follows from the shape and the core count (never from timing);
    // each C element is computed by the same sequence of operations whichever thread and schedule
    // (except SplitK, decided from the shape alone) run it, so results are bitwise identical from
    // run to run and machine to machine.
    const int ItemsPerThread = 3;      // work items per core: slack for a loaded machine
    const int MinPanelsPerItem = 8;    // narrowest column range of a work item, in NR panels
    const int GridItems = 8;           // nominal item count for the k-split decision
    const int KSplitMin = 512;         // shortest k range of a split ...
    const int MaxKSplits = 8;          // ... and at most this many of them
    const int SharedBMaxColumns = 3072; // widest C the SharedB schedule takes (its B block is [KC, N])

    /// <summary>How one product is spread over the cores.</summary>
    enum Schedule
    {
        /// <summary>The whole loop nest on the calling thread.</summary>
        Sequential,
        /// <summary>
        /// One Parallel.For per product: C is cut into (row range) x (column range) items, each running
        /// the whole loop nest on its block with its own packing buffers; no waits between K blocks.
        /// </summary>
        Grid,
        /// <summary>
        /// Per (jc, pc) step, the B block is packed once by all cores and shared; the items are A blocks
        /// x ranges of B panels. Two Parallel.For waits per K block, but nothing is packed twice.
        /// </summary>
        SharedB,
        /// <summary>K is cut into partial products computed apart and summed in split order.</summary>
        SplitK,
    }

    /// <summary>
    /// The schedule of an [M, N] x K product on <paramref name="threads"/> cores, with the k-split count.
    /// Measured on a 2-core Zen 2 (AVX2), both cores, each schedule forced in turn on the network's shapes:
    /// <list type="bullet">
    /// <item>SplitK: small C with a long K (convolution weight gradients, [Cout, Cin*k*k] summed over
    /// every pixel): the other schedules have too few items or repack too much. Judged for a nominal
    /// GridItems-item grid, never from the core count, because it changes the order of the sums and
    /// so the result bits; every other choice below leaves each C element's sequence of operations
    /// (k blocks of KC in order, the same micro-kernel) unchanged, so it may depend on the cores.</item>
    /// <item>SharedB when C has at least two A blocks of rows (M > McMax) and at most SharedBMaxColumns
    /// columns: nothing is packed twice and both cores read one B block. 1024^3: 23.7 ms vs 25.3 for
    /// Grid; the width-1.0 network's products with N 784-2304 2-5% faster (forward [Cout 256-512, N] x
    /// Cin*9; input gradients [Cin*9 1152-4608, N] x Cout), and the width-0.25 input gradients
    /// [Cin*9 576-1152, 784-1792] x Cout 32-128 3-4%.</item>
    /// <item>Grid otherwise. Small M (width-0.25 forward, Cout 16-128; 32x1792x576 2% faster): SharedB
    /// has too little work per K block to pay its two waits, and Grid cuts only columns, so repacks
    /// nothing but the small A. Wide C (256x4096x512 and 256x4096x576 4%, 256x4608x252 3-6%, 1024x25088x4
    /// 10%): the shared [KC, N] block (4 MB at N = 4096) no longer stays near the cores, while each
    /// Grid item packs a B block of its own column range only.</item>
    /// </list>
    /// </summary>
    static Schedule ChooseSchedule(int m, int n, int k, int nr, int threads, out int kSplits)
    {
        kSplits = 1;
        if ((long)m * n * k < ParallelThreshold) return Schedule.Sequential;
        int tilesM = (m + Mr - 1) / Mr, panels = (n + nr - 1) / nr;
        int splits = Math.Clamp(k / KSplitMin, 1, MaxKSplits);
        // Split when the partial products cost less to sum than a grid of items costs to repack.
        if (splits > 1 && 2L * splits * m * n < GridRepack(m, n, tilesM, panels, GridItems, out _, out _) * (long)k)
        {
            kSplits = splits;
            return Schedule.SplitK;
        }
        if (threads == 1) return Schedule.Sequential;
        return m > McMax && n <= SharedBMaxColumns ? Schedule.SharedB : Schedule.Grid;
    }

    static void Blocked<TOps, TVec>(CpuProblem p, int kc)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count;
        int threads = Environment.ProcessorCount;
        switch (ChooseSchedule(p.M, p.N, p.K, nr, threads, out int kSplits))
        {
            case Schedule.SplitK: SplitK<TOps, TVec>(p, kc, kSplits, threads); return;
            case Schedule.SharedB: SharedB<TOps, TVec>(p, kc, threads); return;
            case Schedule.Sequential: Sequential<TOps, TVec>(p, kc); return;
        }

        int tilesM = (p.M + Mr - 1) / Mr, panels = (p.N + nr - 1) / nr;
        GridRepack(p.M, p.N, tilesM, panels, threads * ItemsPerThread, out int mRanges, out int nRanges);
        if (nRanges * mRanges == 1) { Sequential<TOps, TVec>(p, kc); return; }
        Parallel.For(0, nRanges * mRanges, item =>
        {
            int mi = item / nRanges, ni = item % nRanges;
            int i0 = tilesM * mi / mRanges * Mr, i1 = Math.Min(p.M, tilesM * (mi + 1) / mRanges * Mr);
            int j0 = panels * ni / nRanges * nr, j1 = Math.Min(p.N, panels * (ni + 1) / nRanges * nr);
            if (i0 < i1 && j0 < j1) Sequential<TOps, TVec>(SubBlock(p, i0, i1 - i0, j0, j1 - j0), kc);
        });
    }

    /// <summary>
    /// Picks a grid of about <paramref name="target"/> items (mRanges row ranges of whole micro-tiles
    /// x nRanges column ranges of at least MinPanelsPerItem panels) that packs the least extra:
    /// A is packed once per column range, B once per row range. Returns that extra, divided by k
    /// (int.MaxValue when C is too small to make <paramref name="target"/> items at all).
    /// </summary>
    static long GridRepack(int m, int n, int tilesM, int panels, int target, out int mRanges, out int nRanges)
    {
        int maxN = Math.Max(1, panels / MinPanelsPerItem);
        int want = Math.Min(target, tilesM * maxN);
        long best = long.MaxValue;
        mRanges = nRanges = 1;
        for (int mr = 1; mr <= Math.Min(target, tilesM); mr++)
        {
            int nrg = Math.Clamp((want + mr - 1) / mr, 1, maxN);
            if (mr * nrg < want) continue;
            long extra = (long)(nrg - 1) * m + (long)(mr - 1) * n;
            if (extra < best) (best, mRanges, nRanges) = (extra, mr, nrg);
        }
        return want < target ? int.MaxValue : best;
    }

    /// <summary>The product restricted to C[i0 .. i0+rows, j0 .. j0+cols].</summary>
    static CpuProblem SubBlock(in CpuProblem p, int i0, int rows, int j0, int cols) => p with
    {
        M = rows, N = cols,
        AOffset = p.AOffset + (p.TransA ? i0 : i0 * p.Lda),
        BOffset = p.BOffset + (p.TransB ? j0 * p.Ldb : j0),
        COffset = p.COffset + i0 * p.Ldc + j0,
    };

    // Packing buffers (per thread): A blocks [mc, kc] in MR-tall panels, B blocks [kc, nc] in NR-wide panels.
    [ThreadStatic] static Workspace? _packA, _packB;
    // SplitK's partial products [splits][M, N] (per calling thread).
    [ThreadStatic] static Workspace? _splitPartials;

    // C = beta * C + sum over s of (alpha * op(A)[:, ks] op(B)[ks, :]), the K ranges ks computed
    // into separate [M, N] buffers and added in order of s.
    static void SplitK<TOps, TVec>(CpuProblem p, int kc, int splits, int threads)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int mn = p.M * p.N;
        using var partialLease = Workspace.Take(ref _splitPartials, splits * mn);
        float[] partial = partialLease.Array;
        int partialOff = partialLease.Offset;
        void Part(int s)
        {
            int k0 = (int)((long)p.K * s / splits), k1 = (int)((long)p.K * (s + 1) / splits);
            var part = p with
            {
                K = k1 - k0, Beta = 0f,
                AOffset = p.AOffset + (p.TransA ? k0 * p.Lda : k0),
                BOffset = p.BOffset + (p.TransB ? k0 : k0 * p.Ldb),
                C = partial, COffset = partialOff + s * mn, Ldc = p.N,
            };
            Sequential<TOps, TVec>(part, kc);
        }
        if (threads == 1) for (int s = 0; s < splits; s++) Part(s);
        else Parallel.For(0, splits, Part);

        var sum = partial.AsSpan(partialOff, mn);
        for (int s = 1; s < splits; s++) System.Numerics.Tensors.TensorPrimitives.Add(sum, partial.AsSpan(partialOff + s * mn, mn), sum);
        for (int i = 0; i < p.M; i++)
        {
            var row = sum.Slice(i * p.N, p.N);
            var cRow = p.C.AsSpan(p.COffset + i * p.Ldc, p.N);
            if (p.Beta == 0f) row.CopyTo(cRow);
            else System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(cRow, p.Beta, row, cRow);
        }
    }

    // The blocked loop nest on the calling thread.
    static unsafe void Sequential<TOps, TVec>(CpuProblem p, int kc)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, kcMax = Math.Min(p.K, kc);
        using var bLease = Workspace.Take(ref _packB, RoundUp(Math.Min(p.N, NcMax), nr) * kcMax);
        using var aLease = Workspace.Take(ref _packA, RoundUp(Math.Min(p.M, McMax), Mr) * kcMax);
        for (int jc = 0; jc < p.N; jc += NcMax)
        {
            int ncCur = Math.Min(NcMax, p.N - jc);
            int panels = (ncCur + nr - 1) / nr;
            for (int pc = 0; pc < p.K; pc += kc)
            {
                int kcCur = Math.Min(kc, p.K - pc);
                var block = new MacroBlock(jc, ncCur, panels, pc, kcCur, pc == 0 ? p.Beta : 1f, (nint)bLease.Pointer);
                PackB<TOps, TVec>(p, block, 0, panels);
                for (int ic = 0; ic < p.M; ic += McMax)
                {
                    int rows = Math.Min(McMax, p.M - ic);
                    PackA(p, ic, rows, pc, kcCur, aLease.Pointer);
                    ComputeBlock<TOps, TVec>(p, block, ic, rows, aLease.Pointer, 0, panels);
                }
            }
        }
    }

    // The SharedB schedule: per (jc, pc) step, B panels packed by all cores into one shared block,
    // then items = (A block of mc rows) x (range of B panels), each packing its A block.
    static unsafe void SharedB<TOps, TVec>(CpuProblem p, int kc, int threads)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count;
        // A blocks of equal height (a multiple of Mr, at most McMax), their count a multiple of the
        // thread count so no thread is left with a short last block.
        int icBlocks = (p.M + McMax - 1) / McMax;
        icBlocks = (icBlocks + threads - 1) / threads * threads;
        int mc = RoundUp((p.M + icBlocks - 1) / icBlocks, Mr);
        icBlocks = (p.M + mc - 1) / mc;
        using var bLease = Workspace.Take(ref _packB, RoundUp(Math.Min(p.N, NcMax), nr) * Math.Min(p.K, kc));
        for (int jc = 0; jc < p.N; jc += NcMax)
        {
            int ncCur = Math.Min(NcMax, p.N - jc);
            int panels = (ncCur + nr - 1) / nr;
            // Too few A blocks to keep every thread busy: also split the B panels between items.
            int jrChunks = Math.Clamp((2 * threads + icBlocks - 1) / icBlocks, 1, panels);
            for (int pc = 0; pc < p.K; pc += kc)
            {
                int kcCur = Math.Min(kc, p.K - pc);
                var block = new MacroBlock(jc, ncCur, panels, pc, kcCur, pc == 0 ? p.Beta : 1f, (nint)bLease.Pointer);
                SharedBStep<TOps, TVec>(p, block, threads, mc, icBlocks, jrChunks);
            }
        }
    }

    // One (jc, pc) step of SharedB (a method of its own so the closures are allocated per step only here).
    static unsafe void SharedBStep<TOps, TVec>(CpuProblem p, MacroBlock block, int threads, int mc, int icBlocks, int jrChunks)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int panels = block.Panels, packChunks = Math.Min(threads, panels);
        Parallel.For(0, packChunks, t => PackB<TOps, TVec>(p, block, panels * t / packChunks, panels * (t + 1) / packChunks));
        Parallel.For(0, icBlocks * jrChunks, item =>
        {
            int ic = item / jrChunks, chunk = item % jrChunks;
            int i0 = ic * mc, rows = Math.Min(mc, p.M - i0);
            int q0 = panels * chunk / jrChunks, q1 = panels * (chunk + 1) / jrChunks;
            if (rows <= 0 || q0 >= q1) return;
            using var aLease = Workspace.Take(ref _packA, RoundUp(rows, Mr) * block.Kc);
            PackA(p, i0, rows, block.Pc, block.Kc, aLease.Pointer);
            ComputeBlock<TOps, TVec>(p, block, i0, rows, aLease.Pointer, q0, q1);
        });
    }

    /// <summary>Where one (jc, pc) step of the loop nest stands; <c>BPacked</c> is the pinned packed B block.</summary>
    readonly record struct MacroBlock(int Jc, int Nc, int Panels, int Pc, int Kc, float Beta, nint BPacked);

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

    // Rows [i0, i0 + rows) of C (packed in aPacked) against panels [q0, q1) of the packed B block.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void ComputeBlock<TOps, TVec>(in CpuProblem p, in MacroBlock blk, int i0, int rows, float* aPacked, int q0, int q1)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, kc = blk.Kc;
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
                    if (cols == nr)
                        MicroKernel<TOps, TVec>(kc, aPanel, bPanel, cTile, ldc, alpha, beta, mr);
                    else
                    {
                        MicroKernel<TOps, TVec>(kc, aPanel, bPanel, edge, nr, 1f, 0f, Mr);
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

    // Rows [0, rows) of C[6, NR] = alpha * (A panel [6, kc] * B panel [kc, NR]) + beta * C
    // (rows <= 6: a short last tile is computed in full and stored in part); beta == 0 never reads C.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void MicroKernel<TOps, TVec>(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, int rows)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int w = TOps.Count;
        if (Sse.IsSupported)
        {
            // Start fetching the C tile now; it is needed only after the k loop.
            float* cr = c;
            for (int r = 0; r < rows; r++, cr += ldc) { Sse.Prefetch0(cr); Sse.Prefetch0(cr + 2 * w - 1); }
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
        TVec va = TOps.Broadcast(&alpha), vb = TOps.Broadcast(&beta);
        bool accumulate = beta != 0f;
        StoreRow<TOps, TVec>(c, w, c00, c01, va, vb, accumulate);
        if (rows > 1) StoreRow<TOps, TVec>(c + ldc, w, c10, c11, va, vb, accumulate);
        if (rows > 2) StoreRow<TOps, TVec>(c + 2 * ldc, w, c20, c21, va, vb, accumulate);
        if (rows > 3) StoreRow<TOps, TVec>(c + 3 * ldc, w, c30, c31, va, vb, accumulate);
        if (rows > 4) StoreRow<TOps, TVec>(c + 4 * ldc, w, c40, c41, va, vb, accumulate);
        if (rows > 5) StoreRow<TOps, TVec>(c + 5 * ldc, w, c50, c51, va, vb, accumulate);
    }

    // One row of the tile: c = alpha * acc (+ beta * c).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void StoreRow<TOps, TVec>(float* c, int w, TVec lo, TVec hi, TVec va, TVec vb, bool accumulate)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        if (accumulate)
        {
            TOps.Store(c, TOps.MultiplyAdd(va, lo, TOps.Multiply(vb, TOps.Load(c))));
            TOps.Store(c + w, TOps.MultiplyAdd(va, hi, TOps.Multiply(vb, TOps.Load(c + w))));
        }
        else
        {
            TOps.Store(c, TOps.Multiply(va, lo));
            TOps.Store(c + w, TOps.Multiply(va, hi));
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
        static abstract TVec Add(TVec x, TVec y);
        static abstract TVec Subtract(TVec x, TVec y);
        /// <summary>Lane-wise max(x, 0).</summary>
        static abstract TVec Relu(TVec x);
        /// <summary>Sum of the lanes (in a fixed order).</summary>
        static abstract float Sum(TVec x);
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
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> x, Vector512<float> y) => x + y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Subtract(Vector512<float> x, Vector512<float> y) => x - y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Relu(Vector512<float> x) => Vector512.Max(x, Vector512<float>.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> x) => Vector512.Sum(x);
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
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> x, Vector256<float> y) => x + y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Subtract(Vector256<float> x, Vector256<float> y) => x - y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Relu(Vector256<float> x) => Vector256.Max(x, Vector256<float>.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> x) => Vector256.Sum(x);
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
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> x, Vector128<float> y) => x + y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Subtract(Vector128<float> x, Vector128<float> y) => x - y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Relu(Vector128<float> x) => Vector128.Max(x, Vector128<float>.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> x) => Vector128.Sum(x);
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
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float x, float y) => x + y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Subtract(float x, float y) => x - y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Relu(float x) => x > 0f ? x : 0f;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(float x) => x;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MultiplyAdd(float x, float y, float z) => x * y + z;
    }
}
