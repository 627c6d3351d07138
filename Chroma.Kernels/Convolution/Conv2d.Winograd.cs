using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Chroma.Kernels.Gemm;

namespace Chroma.Kernels;

// CPU path, 3x3 stride-1 convolutions: Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016), with the tiles of a chunk batched into
// 36 matrix products over channels (the NNPACK / oneDNN arrangement):
//
//   d  [6x6]  input patch of a 4x4 output tile (stride 4, overlapping by 2)
//   V = B^T d B,   U = G g G^T  (g the 3x3 filter),   Y = A^T (U (.) V) A  [4x4 output tile]
//
//   for each of the 36 points xi of the 6x6 transform domain:
//     M[xi] [Cout, tiles] = U[xi] [Cout, Cin] * V[xi] [Cin, tiles]
//
// 36 multiplies per 16 outputs instead of 144: 4x fewer multiply-adds than im2col + GEMM, and no
// column buffer. The transforms are written straight into the packed panel layouts of the GEMM's
// micro-kernel (U as MR-tall A panels, V as NR-wide B panels, lanes = tiles), so nothing is
// repacked and the products run on Gemm.MicroKernel at full speed however small Cin is. U is built
// once per call (the weights of one training step), V and M per chunk of tiles.
//
// The input gradient of a 3x3 stride-1 convolution is the same computation on dy with the filters
// rotated by 180 degrees and Cin/Cout swapped (padding 2 - pad), accumulated into dx.
//
// Transform matrices (interpolation points 0, 1, -1, 2, -2, infinity):
//   B^T = [ 4  0 -5  0  1  0 ]    G = [  1/4     0     0  ]    A^T = [ 1  1  1  1  1  0 ]
//         [ 0 -4 -4  1  1  0 ]        [ -1/6  -1/6  -1/6  ]          [ 0  1 -1  2 -2  0 ]
//         [ 0  4 -4 -1  1  0 ]        [ -1/6   1/6  -1/6  ]          [ 0  1  1  4  4  0 ]
//         [ 0 -2 -1  2  1  0 ]        [ 1/24  1/12   1/6  ]          [ 0  1 -1  8 -8  1 ]
//         [ 0  2 -1 -2  1  0 ]        [ 1/24 -1/12   1/6  ]
//         [ 0  4  0 -5  0  1 ]        [   0     0     1   ]
public static partial class Conv2d
{
    /// <summary>How the CPU path computes a convolution.</summary>
    internal enum CpuAlgorithm
    {
        /// <summary>Column buffer (im2col) and one matrix product per chunk and group: any kernel, stride, padding, dilation, groups (kept as the forward's reference; backward's weight gradient and col2im use it).</summary>
        Im2colGemm,
        /// <summary>The same product with the columns gathered straight into the micro-kernel's panels (Conv2d.Direct.cs): any kernel, stride, padding, dilation, groups.</summary>
        DirectGemm,
        /// <summary>Winograd F(4x4, 3x3): 3x3 kernels, stride 1, padding 0..2, dilation 1, one group.</summary>
        Winograd4x4,
    }

    const int WinoTile = 4, WinoPatch = 6, WinoPoints = WinoPatch * WinoPatch;

    /// <summary>
    /// Least multiply-adds per (output, input) channel pair that Winograd must save over the direct product,
    /// N (9 Ho Wo - 36 tiles per image), before it is chosen: building U = G g G^T costs about 60 cycles
    /// per pair (scalar), some 2,000 multiply-adds of the vectorized products.
    /// </summary>
    internal const int WinogradMinSavingPerPair = 2048;

    /// <summary>Floats the phase-parallel schedule keeps for one chunk's V and M (16 MB): sized to stay in the last-level cache.</summary>
    internal static long WinogradChunkBudget = 1 << 22;

    /// <summary>
    /// The algorithm for a convolution of this shape on the CPU path. Winograd F(4x4, 3x3) for the 3x3
    /// stride-1 layers whose maps are large enough to pay for the filter transform (see
    /// <see cref="WinogradMinSavingPerPair"/>: at batch 1 the 14x14 and 7x7 global layers are not, at
    /// batch 16 both are); for the rest (the stride-2 downsampling layers, the 1x1 fusion, tiny maps) the
    /// direct packed product on large maps and im2col + GEMM on small ones (<see cref="DirectMinPixels"/>);
    /// their backward takes im2col + GEMM.
    /// </summary>
    internal static CpuAlgorithm ChooseCpuAlgorithm(in ConvArgs s)
    {
        if (IsWinogradShape(s)
            && (long)s.N * (9L * s.Ho * s.Wo - 36L * WinoTiles(s.Ho) * WinoTiles(s.Wo)) >= WinogradMinSavingPerPair)
            return CpuAlgorithm.Winograd4x4;
        return (long)s.N * s.HoWo >= DirectMinPixels ? CpuAlgorithm.DirectGemm : CpuAlgorithm.Im2colGemm;
    }

    /// <summary>
    /// Whether Winograd F(4x4, 3x3) computes this convolution: 3x3, stride 1, padding 0..2, and the
    /// plain kind (dilation 1, one group: its transforms read whole 6x6 patches of every input channel).
    /// </summary>
    static bool IsWinogradShape(in ConvArgs s) => s.K == 3 && s.Stride == 1 && s.Pad <= 2 && s.Dilation == 1 && s.Groups == 1;

    /// <summary>
    /// Fewest output pixels (over the batch) for the direct packed product. It streams the packed filters
    /// once per panel of NR pixels, so it needs many panels; below this im2col + GEMM, whose blocking
    /// keeps the filters in L2, wins. Measured on the 2-core Xeon, forward, ms (direct / im2col):
    /// 512 -> 512 stride 2 to 14x14, one image 8.2 / 4.9; 512 -> 512 at 14x14, one image 8.4 / 4.8;
    /// 4 images at 7x7 8.3 / 5.6; but 128 -> 128 stride 2 to 128x128 29.7 / 36.1, 256 -> 256 stride 2 to
    /// 64x64 24.7 / 23.7, 4 images 128 -> 128 to 56x56 23.8 / 28.0, 1x1 512 -> 256 at 64x64 4.9 / 5.3.
    /// </summary>
    internal const int DirectMinPixels = 1024;

    static int WinoTiles(int outputSize) => (outputSize + WinoTile - 1) / WinoTile;

    /// <summary>
    /// One Winograd convolution: out (+)= conv3x3(input, filters) (+ bias) (then ReLU).
    /// <code>
    /// input [N, Cin, H, W]   out [N, Cout, H + 2 pad - 2, W + 2 pad - 2]
    /// filters: w [Cout, Cin, 3, 3] as stored (forward), or, with rotate, w [Cin', Cout', 3, 3] read as
    ///          w'[o, c, u, v] = w[c, o, 2 - u, 2 - v] (input gradient: Cout = Cin' and Cin = Cout')
    /// </code>
    /// </summary>
    static void WinogradCpu(int n, int cin, int h, int w, int cout, int pad,
        float[] input, int inputOffset, float[] filters, int filterOffset, bool rotate,
        float[]? bias, int biasOffset, float[] output, int outputOffset, bool accumulate, bool relu, CpuKernel kernel = CpuKernel.Auto)
    {
        var p = new WinoProblem(n, cin, h, w, cout, pad, input, inputOffset, filters, filterOffset, rotate,
            bias, biasOffset, output, outputOffset, accumulate, relu);
        if (kernel == CpuKernel.Auto) kernel = Widest();
        else if (!IsAccelerated(kernel)) throw new PlatformNotSupportedException($"Conv2d: {kernel} is not accelerated on this machine.");
        switch (kernel)
        {
            case CpuKernel.Vector512: Winograd<Vector512Ops, System.Runtime.Intrinsics.Vector512<float>>(p); break;
            case CpuKernel.Vector256: Winograd<Vector256Ops, System.Runtime.Intrinsics.Vector256<float>>(p); break;
            case CpuKernel.Vector128: Winograd<Vector128Ops, System.Runtime.Intrinsics.Vector128<float>>(p); break;
            default: Winograd<ScalarOps, float>(p); break;
        }
    }

    internal readonly record struct WinoProblem(int N, int Cin, int H, int W, int Cout, int Pad,
        float[] Input, int InputOffset, float[] Filters, int FilterOffset, bool Rotate,
        float[]? Bias, int BiasOffset, float[] Output, int OutputOffset, bool Accumulate, bool Relu)
    {
        public int Ho => H + 2 * Pad - 2;
        public int Wo => W + 2 * Pad - 2;
        public int TilesH => WinoTiles(Ho);
        public int TilesW => WinoTiles(Wo);
        public int TilesPerImage => TilesH * TilesW;
        public long Tiles => (long)N * TilesPerImage;
        /// <summary>Output channels rounded up to whole micro-tiles (the padding rows of U are zero).</summary>
        public int Cout6 => (Cout + Mr - 1) / Mr * Mr;
    }

    /// <summary>Depth of one k block of the products (the B panel [KC, NR] stays in L1).</summary>
    const int WinoKc = 256;

    [ThreadStatic] static Workspace? _winoU, _winoV, _winoM;

    static unsafe void Winograd<TOps, TVec>(WinoProblem p)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, cout6 = p.Cout6, oPanels = cout6 / Mr;
        // Tiles per chunk: V [36, Cin, T] and M [36, Cout6, T] within the budget, whole NR panels.
        long perTile = (long)WinoPoints * (p.Cin + cout6);
        int chunkPanels = (int)Math.Clamp(WinogradChunkBudget / (perTile * nr), 1, (p.Tiles + nr - 1) / nr);
        int chunkTiles = chunkPanels * nr;

        using var uLease = Workspace.Take(ref _winoU, (int)(WinoPoints * PointStride((long)cout6 * p.Cin)));
        nint u = (nint)uLease.Pointer;

        TransformFilters(p, (float*)u);
        if (IsThreadChunked(p, nr, out int threadPanels, out int chunks))
        {
            // Small layers: each core takes whole chunks of tiles through all three phases, its V and M in L2.
            Parallel.For(0, chunks, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int chunk) =>
            {
                long t0 = (long)chunk * threadPanels * nr;
                int panels = (int)Math.Min(threadPanels, (p.Tiles - t0 + nr - 1) / nr);
                using var vl = Workspace.Take(ref _winoV, (int)(WinoPoints * PointStride((long)threadPanels * nr * p.Cin)));
                using var ml = Workspace.Take(ref _winoM, (int)(WinoPoints * PointStride((long)cout6 * threadPanels * nr)));
                TransformInput<TOps, TVec>(p, t0, panels, vl.Pointer, inline: true);
                MultiplyPoints<TOps, TVec>(p, panels, (float*)u, vl.Pointer, ml.Pointer, inline: true);
                TransformOutput<TOps, TVec>(p, t0, panels, ml.Pointer, inline: true);
            });
            return;
        }
        // Large layers: one phase at a time over all cores, U [36, Cout, Cin] read once per chunk.
        using var vLease = Workspace.Take(ref _winoV, (int)(WinoPoints * PointStride((long)chunkTiles * p.Cin)));
        using var mLease = Workspace.Take(ref _winoM, (int)(WinoPoints * PointStride((long)cout6 * chunkTiles)));
        float* v = vLease.Pointer, m = mLease.Pointer;
        for (long t0 = 0; t0 < p.Tiles; t0 += chunkTiles)
        {
            int panels = (int)Math.Min(chunkPanels, (p.Tiles - t0 + nr - 1) / nr);
            TransformInput<TOps, TVec>(p, t0, panels, v);
            MultiplyPoints<TOps, TVec>(p, panels, (float*)u, v, m);
            TransformOutput<TOps, TVec>(p, t0, panels, m);
        }
    }

    /// <summary>Largest U [36, Cout6, Cin] (floats) for which cores take whole chunks of tiles (1 MB: stays near the cores).</summary>
    internal const int ThreadChunkedMaxFilterFloats = 1 << 18;
    /// <summary>Floats of V and M one core keeps for its chunk in the thread-chunked schedule (1 MB of a 2 MB L2).</summary>
    internal static long WinogradThreadChunkBudget = 1 << 18;
    /// <summary>Chunks per core in the thread-chunked schedule: slack for uneven progress.</summary>
    const int WinoChunksPerThread = 4;
    /// <summary>Tests: force the thread-chunked schedule on or off (null: by shape). Either gives the same bits.</summary>
    internal static bool? ForceThreadChunked;

    /// <summary>
    /// Whether the layer runs thread-chunked (see <see cref="Winograd"/>) and with how many NR panels per
    /// chunk. A plain function of the shape and the core count: every tile's arithmetic is the same in
    /// both schedules, so the choice changes no bit of the result.
    /// </summary>
    static bool IsThreadChunked(in WinoProblem p, int nr, out int panelsPerChunk, out int chunks)
    {
        long totalPanels = (p.Tiles + nr - 1) / nr;
        long perPanel = (long)WinoPoints * (p.Cin + p.Cout6) * nr;
        long fit = Math.Max(1, WinogradThreadChunkBudget / perPanel);
        long spread = Math.Max(1, totalPanels / (WinoChunksPerThread * Environment.ProcessorCount));
        panelsPerChunk = (int)Math.Min(fit, spread);
        chunks = (int)((totalPanels + panelsPerChunk - 1) / panelsPerChunk);
        return ForceThreadChunked ?? ((long)WinoPoints * p.Cout6 * p.Cin <= ThreadChunkedMaxFilterFloats && chunks > 1);
    }

    // Packed layouts (kb: k block of WinoKc channels starting at c0, kcb channels long):
    //   U [36][Cout6 * Cin]: per point, per k block (at c0 * Cout6), per MR-row panel op (at op * MR * kcb): [kcb][MR]
    //   V [36][T * Cin]:     per point, per k block (at c0 * T),     per NR-tile panel q (at q * NR * kcb):  [kcb][NR]
    //   M [36][Cout6, T]:    row-major, leading dimension T (the chunk's tiles, whole panels)

    /// <summary>U = G g G^T for every (output, input) channel pair, into MR-tall A panels; rows past Cout are zero.</summary>
    static unsafe void TransformFilters(WinoProblem p, float* u)
    {
        int cin = p.Cin, cout6 = p.Cout6;
        long pointStride = PointStride((long)cout6 * cin);
        nint uBase = (nint)u;
        CpuLoop.For(cout6, 162L * cin, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int o) =>
        {
            float* ub = (float*)uBase;
            Span<float> g = stackalloc float[9];
            Span<float> gg = stackalloc float[18];   // G g [6][3]
            int op = o / Mr, r = o % Mr;
            for (int c = 0; c < cin; c++)
            {
                int c0 = c / WinoKc * WinoKc, kcb = Math.Min(WinoKc, cin - c0);
                float* dst = ub + (long)c0 * cout6 + (long)op * Mr * kcb + (long)(c - c0) * Mr + r;
                if (o >= p.Cout)
                {
                    for (int xi = 0; xi < WinoPoints; xi++) dst[xi * pointStride] = 0f;
                    continue;
                }
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++)
                        g[a * 3 + b] = p.Rotate
                            ? p.Filters[p.FilterOffset + ((c * p.Cout + o) * 3 + (2 - a)) * 3 + (2 - b)]
                            : p.Filters[p.FilterOffset + ((o * cin + c) * 3 + a) * 3 + b];
                // G g: rows of G applied down each column of g.
                for (int b = 0; b < 3; b++)
                {
                    float g0 = g[b], g1 = g[3 + b], g2 = g[6 + b];
                    gg[0 * 3 + b] = g0 * 0.25f;
                    gg[1 * 3 + b] = -(g0 + g1 + g2) / 6f;
                    gg[2 * 3 + b] = -(g0 - g1 + g2) / 6f;
                    gg[3 * 3 + b] = g0 / 24f + g1 / 12f + g2 / 6f;
                    gg[4 * 3 + b] = g0 / 24f - g1 / 12f + g2 / 6f;
                    gg[5 * 3 + b] = g2;
                }
                // (G g) G^T: the same rows along each row of G g.
                for (int a = 0; a < WinoPatch; a++)
                {
                    float g0 = gg[a * 3], g1 = gg[a * 3 + 1], g2 = gg[a * 3 + 2];
                    float* row = dst + a * WinoPatch * pointStride;
                    row[0] = g0 * 0.25f;
                    row[pointStride] = -(g0 + g1 + g2) / 6f;
                    row[2 * pointStride] = -(g0 - g1 + g2) / 6f;
                    row[3 * pointStride] = g0 / 24f + g1 / 12f + g2 / 6f;
                    row[4 * pointStride] = g0 / 24f - g1 / 12f + g2 / 6f;
                    row[5 * pointStride] = g2;
                }
            }
        });
    }

    /// <summary>
    /// V = B^T d B for the tiles [t0, t0 + panels*NR) of the batch and every input channel, into NR-wide
    /// B panels (lane = tile). One task per (tile panel, channel): the NR patches are gathered into a
    /// [36][NR] block (zeros outside the image and past the last tile), then transformed NR lanes at a time.
    /// </summary>
    static unsafe void TransformInput<TOps, TVec>(WinoProblem p, long t0, int panels, float* v, bool rowMajor = false, bool inline = false, int rowMajorRows = 0)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, cin = p.Cin;
        long chunkTiles = (long)panels * nr, pointStride = PointStride(chunkTiles * (rowMajor ? rowMajorRows : cin));
        nint vBase = (nint)v;
        CpuLoop.For(panels * cin, 36L * 8 * nr, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int task) =>
        {
            int q = task / cin, c = task % cin;
            float* d = stackalloc float[WinoPoints * 2 * 16];
            GatherPatches(p, t0 + (long)q * nr, nr, c, d);
            int c0 = c / WinoKc * WinoKc, kcb = Math.Min(WinoKc, cin - c0);
            // Packed B panels for the forward products, or row-major V[xi] [Cin, T] for the weight gradient.
            float* dst = rowMajor ? (float*)vBase + c * chunkTiles + (long)q * nr
                                  : (float*)vBase + c0 * chunkTiles + (long)q * nr * kcb + (long)(c - c0) * nr;
            InputTransform<TOps, TVec>(d, nr, dst, (nint)pointStride);
        }, inline);
    }

    /// <summary>
    /// d[r*6 + j][lane] = input[image, c, 4 ty - pad + r, 4 tx - pad + j] for the lanes' tiles (0 outside
    /// the image and past the last tile). Lanes are walked in runs of tiles that share a tile row: the
    /// run's six input rows are read front to back.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void GatherPatches(in WinoProblem p, long firstTile, int lanes, int c, float* d)
    {
        int h = p.H, w = p.W, tpi = p.TilesPerImage, tw = p.TilesW;
        long tiles = p.Tiles;
        int img = (int)(Math.Min(firstTile, tiles - 1) / tpi), rem = (int)(firstTile % tpi), ty = rem / tw, tx = rem % tw;
        fixed (float* xBase = p.Input)
        {
            int lane = 0;
            while (lane < lanes && firstTile + lane < tiles)
            {
                int run = (int)Math.Min(Math.Min(lanes - lane, tw - tx), tiles - firstTile - lane);
                int iy0 = ty * WinoTile - p.Pad, ix0 = tx * WinoTile - p.Pad;
                float* plane = xBase + p.InputOffset + ((long)img * p.Cin + c) * h * w;
                // Tiles [inner0, inner1) of the run read only columns inside the row; the ones before
                // (left padding) and after (right edge) are read with bounds checks.
                int inner0 = Math.Min(run, ix0 >= 0 ? 0 : (-ix0 + WinoTile - 1) / WinoTile);
                int inner1 = Math.Clamp(w - WinoPatch - ix0 < 0 ? 0 : (w - WinoPatch - ix0) / WinoTile + 1, inner0, run);
                for (int r = 0; r < WinoPatch; r++)
                {
                    int iy = iy0 + r;
                    float* dr = d + r * WinoPatch * lanes + lane;
                    if (iy < 0 || iy >= h)
                    {
                        for (int j = 0; j < WinoPatch; j++) new Span<float>(dr + j * lanes, run).Clear();
                        continue;
                    }
                    float* src = plane + (long)iy * w + ix0;
                    int l = inner0;
                    if (Avx512F.IsSupported && inner1 - inner0 >= 16)
                    {
                        // 16 tiles at a time; the last group ends at the last inner tile, overlapping the one
                        // before (same values written twice) and loading no float past the row (68 per group).
                        int last = inner1 - 16;
                        while (last >= inner0 && ix0 + WinoTile * last + 68 > w) last--;
                        if (last >= inner0)
                        {
                            for (; l < last; l += 16) Deinterleave16(src + WinoTile * l, dr + l, lanes);
                            Deinterleave16(src + WinoTile * last, dr + last, lanes);
                            l = last + 16;
                        }
                    }
                    for (; l < inner1; l++)
                    {
                        float* s = src + WinoTile * l;
                        dr[l] = s[0]; dr[lanes + l] = s[1]; dr[2 * lanes + l] = s[2];
                        dr[3 * lanes + l] = s[3]; dr[4 * lanes + l] = s[4]; dr[5 * lanes + l] = s[5];
                    }
                    for (l = 0; l < run; l++)
                    {
                        if (l == inner0) l = inner1;
                        if (l >= run) break;
                        for (int j = 0; j < WinoPatch; j++)
                        {
                            int ix = ix0 + WinoTile * l + j;
                            dr[j * lanes + l] = ix >= 0 && ix < w ? src[WinoTile * l + j] : 0f;
                        }
                    }
                }
                lane += run;
                tx += run;
                if (tx == tw) { tx = 0; if (++ty == p.TilesH) { ty = 0; img++; } }
            }
            // Lanes past the last tile.
            for (; lane < lanes; lane++)
                for (int k = 0; k < WinoPoints; k++) d[k * lanes + lane] = 0f;
        }
    }

    // Lane indices for Deinterleave16: lanes 0-7 of the first permute take src[4l + j] from the first
    // 32 floats, lanes 8-15 of the second take src[32 + 4(l - 8) + j] from the next 32.
    static readonly Vector512<int> DeinterleaveLow = Vector512.Create(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
    static readonly Vector512<int> DeinterleaveHigh = Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 8, 12, 16, 20, 24, 28);
    static readonly Vector512<float> UpperHalf = Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1).AsSingle();

    // Lane indices for Interleave16: output lane 4l + 0 (4l + 2) takes tile l of the first vector of a
    // pair, lane 4l + 1 (4l + 3) tile l of the second (index + 16); shifted by 4 per group of 4 tiles.
    static readonly Vector512<int> InterleaveEven = Vector512.Create(0, 16, 0, 0, 1, 17, 0, 0, 2, 18, 0, 0, 3, 19, 0, 0);
    static readonly Vector512<int> InterleaveOdd = Vector512.Create(0, 0, 0, 16, 0, 0, 1, 17, 0, 0, 2, 18, 0, 0, 3, 19);
    static readonly Vector512<float> OddPairs = Vector512.Create(0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1).AsSingle();

    /// <summary>
    /// dst[4 l + j] (=, + bias, ReLU, or +=) src[j * lanes + l] for j &lt; 4, l &lt; 16: one output row of 16
    /// neighbouring tiles from the transform's [j][lane] layout, as four 16-float stores.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Interleave16(float* src, int lanes, float* dst, float bias, bool accumulate, bool relu)
    {
        Vector512<float> y0 = Vector512.Load(src), y1 = Vector512.Load(src + lanes), y2 = Vector512.Load(src + 2 * lanes), y3 = Vector512.Load(src + 3 * lanes);
        var b = Vector512.Create(bias);
        for (int m = 0; m < 4; m++)
        {
            var shift = Vector512.Create(4 * m);
            var v = Vector512.ConditionalSelect(OddPairs,
                Avx512F.PermuteVar16x32x2(y2, InterleaveOdd + shift, y3), Avx512F.PermuteVar16x32x2(y0, InterleaveEven + shift, y1));
            float* d = dst + 16 * m;
            if (accumulate) (Vector512.Load(d) + v).Store(d);
            else if (relu) Vector512.Max(v + b, Vector512<float>.Zero).Store(d);
            else (v + b).Store(d);
        }
    }

    /// <summary>
    /// dst[j * lanes + l] = src[4 l + j] for j &lt; 6, l &lt; 16: one input row of 16 neighbouring patches
    /// (reads src[0 .. 68)). Two permutes and a blend per j instead of 16 scalar moves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Deinterleave16(float* src, float* dst, int lanes)
    {
        Vector512<float> a0 = Vector512.Load(src), a1 = Vector512.Load(src + 16), a2 = Vector512.Load(src + 32), a3 = Vector512.Load(src + 48);
        Vector512<float> b0 = Vector512.Load(src + 4), b1 = Vector512.Load(src + 20), b2 = Vector512.Load(src + 36), b3 = Vector512.Load(src + 52);
        for (int j = 0; j < 4; j++)
        {
            var shift = Vector512.Create(j);
            var lo = Avx512F.PermuteVar16x32x2(a0, DeinterleaveLow + shift, a1);
            var hi = Avx512F.PermuteVar16x32x2(a2, DeinterleaveHigh + shift, a3);
            Vector512.ConditionalSelect(UpperHalf, hi, lo).Store(dst + j * lanes);
            if (j < 2)
            {
                lo = Avx512F.PermuteVar16x32x2(b0, DeinterleaveLow + shift, b1);
                hi = Avx512F.PermuteVar16x32x2(b2, DeinterleaveHigh + shift, b3);
                Vector512.ConditionalSelect(UpperHalf, hi, lo).Store(dst + (j + 4) * lanes);
            }
        }
    }

    /// <summary>V[r*6 + l] = (B^T d B)[r, l] over NR lanes: d [36][NR] contiguous, V rows <paramref name="pointStride"/> apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void InputTransform<TOps, TVec>(float* d, int nr, float* v, nint pointStride)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        float* t = stackalloc float[WinoPoints * 2 * 16];
        int w = TOps.Count;
        nint row = WinoPatch * nr;
        for (int half = 0; half < nr; half += w)
        {
            // Columns: t[k][j] = sum_r B^T[k, r] d[r][j].
            for (int j = 0; j < WinoPatch; j++)
                BtRows<TOps, TVec>(d + j * nr + half, row, t + j * nr + half, row);
            // Rows: V[k][l] = sum_j t[k][j] B[j, l].
            for (int k = 0; k < WinoPatch; k++)
                BtRows<TOps, TVec>(t + k * row + half, nr, v + k * WinoPatch * pointStride + half, pointStride);
        }
    }

    /// <summary>out[k * os] = sum_r B^T[k, r] in[r * istride] for six vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void BtRows<TOps, TVec>(float* src, nint istride, float* dst, nint ostride)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        float fourF = 4f, fiveF = 5f, twoF = 2f;
        TVec four = TOps.Broadcast(&fourF), five = TOps.Broadcast(&fiveF), two = TOps.Broadcast(&twoF);
        TVec d0 = TOps.Load(src), d1 = TOps.Load(src + istride), d2 = TOps.Load(src + 2 * istride);
        TVec d3 = TOps.Load(src + 3 * istride), d4 = TOps.Load(src + 4 * istride), d5 = TOps.Load(src + 5 * istride);
        // t0 = 4 d0 - 5 d2 + d4;  t5 = 4 d1 - 5 d3 + d5
        TOps.Store(dst, TOps.Subtract(TOps.MultiplyAdd(four, d0, d4), TOps.Multiply(five, d2)));
        TOps.Store(dst + 5 * ostride, TOps.Subtract(TOps.MultiplyAdd(four, d1, d5), TOps.Multiply(five, d3)));
        // t1,2 = -+4 (d1 + d2) ... : t1 = (d3 + d4) - 4 (d1 + d2), t2 = (d4 - d3) + 4 (d1 - d2)
        TVec s12 = TOps.Add(d1, d2), s34 = TOps.Add(d3, d4);
        TOps.Store(dst + ostride, TOps.Subtract(s34, TOps.Multiply(four, s12)));
        TOps.Store(dst + 2 * ostride, TOps.MultiplyAdd(four, TOps.Subtract(d1, d2), TOps.Subtract(d4, d3)));
        // t3 = (d4 - d2) + 2 (d3 - d1),  t4 = (d4 - d2) - 2 (d3 - d1)
        TVec a = TOps.Subtract(d4, d2), b = TOps.Multiply(two, TOps.Subtract(d3, d1));
        TOps.Store(dst + 3 * ostride, TOps.Add(a, b));
        TOps.Store(dst + 4 * ostride, TOps.Subtract(a, b));
    }

    /// <summary>
    /// M[xi] [Cout6, T] = U[xi] [Cout6, Cin] V[xi] [Cin, T] for the 36 points, k block by k block on
    /// the GEMM micro-kernel. One task per point: the B panel stays in L1 across every A panel.
    /// </summary>
    static unsafe void MultiplyPoints<TOps, TVec>(WinoProblem p, int panels, float* u, float* v, float* m, bool inline = false)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, cin = p.Cin, cout6 = p.Cout6, oPanels = cout6 / Mr;
        long chunkTiles = (long)panels * nr;
        nint uBase = (nint)u, vBase = (nint)v, mBase = (nint)m;
        CpuLoop.For(WinoPoints, 2L * cout6 * cin * chunkTiles, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int xi) =>
        {
            float* uxi = (float*)uBase + xi * PointStride((long)cout6 * cin);
            float* vxi = (float*)vBase + xi * PointStride(chunkTiles * cin);
            float* mxi = (float*)mBase + xi * PointStride(cout6 * chunkTiles);
            for (int c0 = 0; c0 < cin; c0 += WinoKc)
            {
                int kcb = Math.Min(WinoKc, cin - c0);
                float beta = c0 == 0 ? 0f : 1f;
                float* ublk = uxi + (long)c0 * cout6, vblk = vxi + c0 * chunkTiles;
                for (int q = 0; q < panels; q++)
                {
                    float* bPanel = vblk + (long)q * nr * kcb;
                    for (int op = 0; op < oPanels; op++)
                        MicroKernel<TOps, TVec>(kcb, ublk + (long)op * Mr * kcb, bPanel, mxi + (long)op * Mr * chunkTiles + q * nr,
                            (nint)chunkTiles, 1f, beta, Mr);
                }
            }
        }, inline);
    }

    /// <summary>
    /// Y = A^T M A per tile and output channel, then out = Y + bias (ReLU), or out += Y. One task per
    /// (output channel, tile panel): the panel's 36 M rows are contiguous over its NR tiles.
    /// </summary>
    static unsafe void TransformOutput<TOps, TVec>(WinoProblem p, long t0, int panels, float* m, bool inline = false)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, w = TOps.Count;
        long chunkTiles = (long)panels * nr, pointStride = PointStride(p.Cout6 * chunkTiles);
        nint mBase = (nint)m;
        CpuLoop.For(p.Cout * panels, 16L * 8 * nr, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int task) =>
        {
            int o = task / panels, q = task % panels;
            float* src = (float*)mBase + o * chunkTiles + (long)q * nr;
            float* t = stackalloc float[WinoTile * WinoPatch * 2 * 16];
            float* y = stackalloc float[WinoTile * WinoTile * 2 * 16];
            nint row = WinoPatch * nr;
            for (int half = 0; half < nr; half += w)
            {
                // Columns: t[i][l] = sum_k A^T[i, k] M[k][l].
                for (int l = 0; l < WinoPatch; l++)
                    AtRows<TOps, TVec>(src + l * pointStride + half, (nint)(WinoPatch * pointStride), t + l * nr + half, row);
                // Rows: y[i][j] = sum_l t[i][l] A[l, j].
                for (int i = 0; i < WinoTile; i++)
                    AtRows<TOps, TVec>(t + i * row + half, nr, y + i * WinoTile * nr + half, nr);
            }
            ScatterTiles(p, t0 + (long)q * nr, nr, o, y);
        }, inline);
    }

    /// <summary>out[i * os] = sum_k A^T[i, k] in[k * is] for six vectors in, four out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void AtRows<TOps, TVec>(float* src, nint istride, float* dst, nint ostride)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        float twoF = 2f, fourF = 4f, eightF = 8f;
        TVec two = TOps.Broadcast(&twoF), four = TOps.Broadcast(&fourF), eight = TOps.Broadcast(&eightF);
        TVec m0 = TOps.Load(src), m1 = TOps.Load(src + istride), m2 = TOps.Load(src + 2 * istride);
        TVec m3 = TOps.Load(src + 3 * istride), m4 = TOps.Load(src + 4 * istride), m5 = TOps.Load(src + 5 * istride);
        TVec s12 = TOps.Add(m1, m2), d12 = TOps.Subtract(m1, m2), s34 = TOps.Add(m3, m4), d34 = TOps.Subtract(m3, m4);
        TOps.Store(dst, TOps.Add(TOps.Add(m0, s12), s34));
        TOps.Store(dst + ostride, TOps.MultiplyAdd(two, d34, d12));
        TOps.Store(dst + 2 * ostride, TOps.MultiplyAdd(four, s34, s12));
        TOps.Store(dst + 3 * ostride, TOps.Add(TOps.MultiplyAdd(eight, d34, d12), m5));
    }

    /// <summary>
    /// Writes the 4x4 tiles y[i*4 + j][lane] of output channel o (parts past the map's edge dropped).
    /// Lanes are walked in runs of tiles that share a tile row, so each output row segment is written
    /// front to back.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void ScatterTiles(in WinoProblem p, long firstTile, int lanes, int o, float* y)
    {
        int ho = p.Ho, wo = p.Wo, tpi = p.TilesPerImage, tw = p.TilesW;
        long tiles = p.Tiles;
        float bias = p.Bias is null ? 0f : p.Bias[p.BiasOffset + o];
        bool accumulate = p.Accumulate, relu = p.Relu;
        int img = (int)(firstTile / tpi), rem = (int)(firstTile % tpi), ty = rem / tw, tx = rem % tw;
        fixed (float* outBase = p.Output)
        {
            for (int lane = 0; lane < lanes && firstTile + lane < tiles;)
            {
                int run = (int)Math.Min(Math.Min(lanes - lane, tw - tx), tiles - firstTile - lane);
                int oy0 = ty * WinoTile, ox0 = tx * WinoTile;
                int rows = Math.Min(WinoTile, ho - oy0), cols = Math.Min(WinoTile * run, wo - ox0);
                float* plane = outBase + p.OutputOffset + ((long)img * p.Cout + o) * ho * wo;
                for (int i = 0; i < rows; i++)
                {
                    float* dst = plane + (long)(oy0 + i) * wo + ox0;
                    float* src = y + i * WinoTile * lanes + lane;
                    int k = 0;
                    if (Avx512F.IsSupported)
                        // 16 whole tiles (64 columns) at a time.
                        for (; k + 64 <= cols; k += 64)
                            Interleave16(src + k / WinoTile, lanes, dst + k, bias, accumulate, relu);
                    if (accumulate)
                        for (; k < cols; k++) dst[k] += src[(k & 3) * lanes + (k >> 2)];
                    else if (relu)
                        for (; k < cols; k++) dst[k] = MathF.Max(src[(k & 3) * lanes + (k >> 2)] + bias, 0f);
                    else
                        for (; k < cols; k++) dst[k] = src[(k & 3) * lanes + (k >> 2)] + bias;
                }
                lane += run;
                tx += run;
                if (tx == tw) { tx = 0; if (++ty == p.TilesH) { ty = 0; img++; } }
            }
        }
    }

    /// <summary>
    /// Weight gradient of a 3x3 stride-1 convolution in the Winograd domain (the adjoint of the forward):
    /// <code>
    /// dM = A dY A^T  [6x6 per 4x4 tile of dy]     V = B^T d B  [6x6 per input patch, as forward]
    /// dU[xi] [Cout, Cin] = sum over tiles of dM[xi] [Cout, T] V[xi]^T [T, Cin]    (36 products)
    /// dW[o, c] += G^T dU[o, c] G                                                    [3x3 from 6x6]
    /// </code>
    /// x [N, Cin, H, W], dy [N, Cout, Ho, Wo], dw [Cout, Cin, 3, 3] (accumulated).
    /// </summary>
    static void WinogradWeightGradientCpu(int n, int cin, int h, int w, int cout, int pad,
        float[] x, int xOffset, float[] dy, int dyOffset, float[] dw, int dwOffset, CpuKernel kernel = CpuKernel.Auto)
    {
        var p = new WinoProblem(n, cin, h, w, cout, pad, x, xOffset, dw, dwOffset, false, null, 0, dy, dyOffset, false, false);
        if (kernel == CpuKernel.Auto) kernel = Widest();
        else if (!IsAccelerated(kernel)) throw new PlatformNotSupportedException($"Conv2d: {kernel} is not accelerated on this machine.");
        switch (kernel)
        {
            case CpuKernel.Vector512: WeightGradient<Vector512Ops, System.Runtime.Intrinsics.Vector512<float>>(p); break;
            case CpuKernel.Vector256: WeightGradient<Vector256Ops, System.Runtime.Intrinsics.Vector256<float>>(p); break;
            case CpuKernel.Vector128: WeightGradient<Vector128Ops, System.Runtime.Intrinsics.Vector128<float>>(p); break;
            default: WeightGradient<ScalarOps, float>(p); break;
        }
    }

    [ThreadStatic] static Workspace? _winoDu;

    /// <summary>Channel blocking of the weight gradient's products: 4 x 4 dot products in registers.</summary>
    const int DotBlock = 4;
    /// <summary>Fixed number of partial dU sums in the thread-chunked weight gradient (not the core count: the result bits must not depend on the machine).</summary>
    const int WinoGradientPartitions = 8;

    // Here p.Output is dy (read) and p.Filters is dw (accumulated).
    //   V  [36][Cin4][k]  and  dM [36][Cout4][k]: row-major over a chunk of k tiles, rows past Cin / Cout zero
    //   dU [36][Cout4][Cin4] = sum over chunks of dM V^T, as 4 x 4 blocks of dot products along the tiles
    //   (both operands are tile-contiguous, so nothing is repacked)
    static unsafe void WeightGradient<TOps, TVec>(WinoProblem p)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, cin4 = RoundUp4(p.Cin), cout4 = RoundUp4(p.Cout);
        long duFloats = WinoPoints * PointStride((long)cout4 * cin4);
        long totalPanels = (p.Tiles + nr - 1) / nr;
        long perPanel = (long)WinoPoints * (cin4 + cout4) * nr;
        if (duFloats <= ThreadChunkedMaxFilterFloats && totalPanels > 1)
        {
            // Small layers: partitions of consecutive chunks, each through every phase on one core into
            // its own dU, the partial sums added in partition order.
            int parts = (int)Math.Min(WinoGradientPartitions, totalPanels);
            int panelsPerChunk = (int)Math.Clamp(WinogradThreadChunkBudget / perPanel, 1, (totalPanels + parts - 1) / parts);
            using var partial = Workspace.Take(ref _winoDu, (int)(parts * duFloats));
            nint partialBase = (nint)partial.Pointer;
            Parallel.For(0, parts, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int part) =>
            {
                long panel0 = totalPanels * part / parts, panel1 = totalPanels * (part + 1) / parts;
                float* du = (float*)partialBase + part * duFloats;
                new Span<float>(du, (int)duFloats).Clear();
                int chunkTiles = panelsPerChunk * nr;
                using var vl = Workspace.Take(ref _winoV, (int)(WinoPoints * PointStride((long)cin4 * chunkTiles)));
                using var ml = Workspace.Take(ref _winoM, (int)(WinoPoints * PointStride((long)cout4 * chunkTiles)));
                for (long q0 = panel0; q0 < panel1; q0 += panelsPerChunk)
                {
                    int panels = (int)Math.Min(panelsPerChunk, panel1 - q0);
                    GradientChunk<TOps, TVec>(p, q0 * nr, panels, vl.Pointer, ml.Pointer, du, cin4, cout4, inline: true);
                }
            });
            float* sum = (float*)partialBase;
            for (int part = 1; part < parts; part++)
                System.Numerics.Tensors.TensorPrimitives.Add(new ReadOnlySpan<float>(sum, (int)duFloats),
                    new ReadOnlySpan<float>(sum + part * duFloats, (int)duFloats), new Span<float>(sum, (int)duFloats));
            AccumulateFilterGradient(p, sum, cin4);
            return;
        }

        // Large layers: one phase at a time over all cores, chunk after chunk into one dU, each point's
        // product dU[xi] += dM[xi] V[xi]^T on the blocked GEMM: with hundreds of channels its packing is
        // cheap, while 4 x 4 dot products would spend a third of their time on horizontal sums unless the
        // chunk held a thousand tiles. Chunks as long as 32 MB of V and M allow (a whole 28x28 batch of 4).
        int chunkPanels = (int)Math.Clamp(4 * WinogradChunkBudget / perPanel, 1, totalPanels);
        int tilesPerChunk = chunkPanels * nr;
        using var vLease = Workspace.Take(ref _winoV, (int)(WinoPoints * PointStride((long)cin4 * tilesPerChunk)));
        using var mLease = Workspace.Take(ref _winoM, (int)(WinoPoints * PointStride((long)cout4 * tilesPerChunk)));
        using var uLease = Workspace.Take(ref _winoDu, (int)duFloats);
        new Span<float>(uLease.Pointer, (int)duFloats).Clear();
        for (long q0 = 0; q0 < totalPanels; q0 += chunkPanels)
        {
            int panels = (int)Math.Min(chunkPanels, totalPanels - q0);
            int k = panels * nr;
            TransformInput<TOps, TVec>(p, q0 * nr, panels, vLease.Pointer, rowMajor: true, rowMajorRows: cin4);
            TransformOutputGradient<TOps, TVec>(p, q0 * nr, panels, mLease.Pointer, false, cout4);
            long vStride = PointStride((long)cin4 * k), mStride = PointStride((long)cout4 * k), uStride = PointStride((long)cout4 * cin4);
            // Only rows < Cin and < Cout are read: the padding rows are never written here.
            for (int xi = 0; xi < WinoPoints; xi++)
                Gemm.Cpu(false, true, p.Cout, p.Cin, k, 1f, mLease.Array, mLease.Offset + (int)(xi * mStride), k,
                    vLease.Array, vLease.Offset + (int)(xi * vStride), k, 1f, uLease.Array, uLease.Offset + (int)(xi * uStride), cin4);
        }
        AccumulateFilterGradient(p, uLease.Pointer, cin4);
    }

    /// <summary>
    /// Distance between the 36 points' blocks in V, M, U and dU: the block rounded up to an odd number of
    /// cache lines. Blocks a multiple of 4 KB apart (V of 16 channels x 128 tiles is 8 KB) put all 36 rows
    /// a transform writes into one L1 set; measured on the 2-core Xeon, that made the width-0.25 input
    /// transform 3-5x slower.
    /// </summary>
    static long PointStride(long floats)
    {
        long lines = (floats + 15) / 16;
        return (lines | 1) * 16;
    }

    static int RoundUp4(int x) => (x + DotBlock - 1) / DotBlock * DotBlock;

    /// <summary>dU += dM V^T for the tiles [t0, t0 + panels*NR): transforms, then 4 x 4 blocks of dot products.</summary>
    static unsafe void GradientChunk<TOps, TVec>(WinoProblem p, long t0, int panels, float* v, float* m, float* du, int cin4, int cout4, bool inline)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count;
        int k = panels * nr;   // lanes past the last tile are zero in both V and dM
        long vStride = PointStride((long)cin4 * k), mStride = PointStride((long)cout4 * k), uStride = PointStride((long)cout4 * cin4);
        // Rows past Cin and Cout are never written by the transforms: zero them.
        for (int xi = 0; xi < WinoPoints; xi++)
        {
            if (cin4 > p.Cin) new Span<float>(v + xi * vStride + (long)p.Cin * k, (cin4 - p.Cin) * k).Clear();
            if (cout4 > p.Cout) new Span<float>(m + xi * mStride + (long)p.Cout * k, (cout4 - p.Cout) * k).Clear();
        }
        TransformInput<TOps, TVec>(p, t0, panels, v, rowMajor: true, inline: inline, rowMajorRows: cin4);
        TransformOutputGradient<TOps, TVec>(p, t0, panels, m, inline, cout4);
        int oBlocks = cout4 / DotBlock, cBlocks = cin4 / DotBlock;
        nint vBase = (nint)v, mBase = (nint)m, uBase = (nint)du;
        CpuLoop.For(WinoPoints * oBlocks, 2L * DotBlock * cin4 * k, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int item) =>
        {
            int xi = item / oBlocks, ob = item % oBlocks;
            float* a = (float*)mBase + xi * mStride + (long)ob * DotBlock * k;
            float* c = (float*)uBase + xi * uStride + (long)ob * DotBlock * cin4;
            for (int cb = 0; cb < cBlocks; cb++)
                DotProducts4x4<TOps, TVec>(a, (float*)vBase + xi * vStride + (long)cb * DotBlock * k, k, c + cb * DotBlock, cin4);
        }, inline);
    }

    /// <summary>c[i, j] += sum over t &lt; k of a[i, t] b[j, t] for 4 rows of a and 4 of b (rows k apart; k a multiple of the vector width).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void DotProducts4x4<TOps, TVec>(float* a, float* b, int k, float* c, int ldc)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int w = TOps.Count;
        TVec c00 = TOps.Zero, c01 = TOps.Zero, c02 = TOps.Zero, c03 = TOps.Zero;
        TVec c10 = TOps.Zero, c11 = TOps.Zero, c12 = TOps.Zero, c13 = TOps.Zero;
        TVec c20 = TOps.Zero, c21 = TOps.Zero, c22 = TOps.Zero, c23 = TOps.Zero;
        TVec c30 = TOps.Zero, c31 = TOps.Zero, c32 = TOps.Zero, c33 = TOps.Zero;
        for (int t = 0; t < k; t += w)
        {
            TVec b0 = TOps.Load(b + t), b1 = TOps.Load(b + k + t), b2 = TOps.Load(b + 2 * k + t), b3 = TOps.Load(b + 3 * k + t);
            TVec a0 = TOps.Load(a + t);
            c00 = TOps.MultiplyAdd(a0, b0, c00); c01 = TOps.MultiplyAdd(a0, b1, c01); c02 = TOps.MultiplyAdd(a0, b2, c02); c03 = TOps.MultiplyAdd(a0, b3, c03);
            TVec a1 = TOps.Load(a + k + t);
            c10 = TOps.MultiplyAdd(a1, b0, c10); c11 = TOps.MultiplyAdd(a1, b1, c11); c12 = TOps.MultiplyAdd(a1, b2, c12); c13 = TOps.MultiplyAdd(a1, b3, c13);
            TVec a2 = TOps.Load(a + 2 * k + t);
            c20 = TOps.MultiplyAdd(a2, b0, c20); c21 = TOps.MultiplyAdd(a2, b1, c21); c22 = TOps.MultiplyAdd(a2, b2, c22); c23 = TOps.MultiplyAdd(a2, b3, c23);
            TVec a3 = TOps.Load(a + 3 * k + t);
            c30 = TOps.MultiplyAdd(a3, b0, c30); c31 = TOps.MultiplyAdd(a3, b1, c31); c32 = TOps.MultiplyAdd(a3, b2, c32); c33 = TOps.MultiplyAdd(a3, b3, c33);
        }
        c[0] += TOps.Sum(c00); c[1] += TOps.Sum(c01); c[2] += TOps.Sum(c02); c[3] += TOps.Sum(c03);
        c += ldc;
        c[0] += TOps.Sum(c10); c[1] += TOps.Sum(c11); c[2] += TOps.Sum(c12); c[3] += TOps.Sum(c13);
        c += ldc;
        c[0] += TOps.Sum(c20); c[1] += TOps.Sum(c21); c[2] += TOps.Sum(c22); c[3] += TOps.Sum(c23);
        c += ldc;
        c[0] += TOps.Sum(c30); c[1] += TOps.Sum(c31); c[2] += TOps.Sum(c32); c[3] += TOps.Sum(c33);
    }

    /// <summary>dM[xi] [rows, T] = (A dY A^T) per 4x4 tile of dy (zero past the map's edge) for rows o &lt; Cout, NR lanes at a time.</summary>
    static unsafe void TransformOutputGradient<TOps, TVec>(WinoProblem p, long t0, int panels, float* m, bool inline, int rows)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        int nr = 2 * TOps.Count, w = TOps.Count;
        long chunkTiles = (long)panels * nr, pointStride = PointStride((long)rows * chunkTiles);
        nint mBase = (nint)m;
        CpuLoop.For(p.Cout * panels, 36L * 8 * nr, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int task) =>
        {
            int o = task / panels, q = task % panels;
            float* g = stackalloc float[WinoTile * WinoTile * 2 * 16];
            float* t = stackalloc float[WinoPatch * WinoTile * 2 * 16];
            GatherTiles(p, t0 + (long)q * nr, nr, o, g);
            float* dst = (float*)mBase + o * chunkTiles + (long)q * nr;
            nint row = WinoTile * nr;
            for (int half = 0; half < nr; half += w)
            {
                // Columns: t[k][j] = sum_i A[k, i] g[i][j].
                for (int j = 0; j < WinoTile; j++)
                    ARows<TOps, TVec>(g + j * nr + half, row, t + j * nr + half, row);
                // Rows: dM[k][l] = sum_j t[k][j] A[l, j].
                for (int k = 0; k < WinoPatch; k++)
                    ARows<TOps, TVec>(t + k * row + half, nr, dst + k * WinoPatch * pointStride + half, (nint)pointStride);
            }
        }, inline);
    }

    /// <summary>out[k * os] = sum_i A[k, i] in[i * is]: four vectors in, six out (A = (A^T)^T).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void ARows<TOps, TVec>(float* src, nint istride, float* dst, nint ostride)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        float twoF = 2f, fourF = 4f;
        TVec two = TOps.Broadcast(&twoF), four = TOps.Broadcast(&fourF);
        TVec y0 = TOps.Load(src), y1 = TOps.Load(src + istride), y2 = TOps.Load(src + 2 * istride), y3 = TOps.Load(src + 3 * istride);
        TVec s02 = TOps.Add(y0, y2), s13 = TOps.Add(y1, y3);
        TVec e = TOps.MultiplyAdd(four, y2, y0), f = TOps.Multiply(two, TOps.MultiplyAdd(four, y3, y1));
        TOps.Store(dst, y0);
        TOps.Store(dst + ostride, TOps.Add(s02, s13));
        TOps.Store(dst + 2 * ostride, TOps.Subtract(s02, s13));
        TOps.Store(dst + 3 * ostride, TOps.Add(e, f));
        TOps.Store(dst + 4 * ostride, TOps.Subtract(e, f));
        TOps.Store(dst + 5 * ostride, y3);
    }

    /// <summary>g[i*4 + j][lane] = dy[image, o, 4 ty + i, 4 tx + j] for the lanes' tiles (0 past the edge and the last tile).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void GatherTiles(in WinoProblem p, long firstTile, int lanes, int o, float* g)
    {
        int ho = p.Ho, wo = p.Wo, tpi = p.TilesPerImage, tw = p.TilesW;
        long tiles = p.Tiles;
        new Span<float>(g, WinoTile * WinoTile * lanes).Clear();
        int img = (int)(Math.Min(firstTile, tiles - 1) / tpi), rem = (int)(firstTile % tpi), ty = rem / tw, tx = rem % tw;
        fixed (float* dyBase = p.Output)
        {
            for (int lane = 0; lane < lanes && firstTile + lane < tiles;)
            {
                int run = (int)Math.Min(Math.Min(lanes - lane, tw - tx), tiles - firstTile - lane);
                int oy0 = ty * WinoTile, ox0 = tx * WinoTile;
                int rows = Math.Min(WinoTile, ho - oy0), cols = Math.Min(WinoTile * run, wo - ox0);
                float* plane = dyBase + p.OutputOffset + ((long)img * p.Cout + o) * ho * wo;
                for (int i = 0; i < rows; i++)
                {
                    float* src = plane + (long)(oy0 + i) * wo + ox0;
                    float* dst = g + i * WinoTile * lanes + lane;
                    for (int kx = 0; kx < cols; kx++) dst[(kx & 3) * lanes + (kx >> 2)] = src[kx];
                }
                lane += run;
                tx += run;
                if (tx == tw) { tx = 0; if (++ty == p.TilesH) { ty = 0; img++; } }
            }
        }
    }

    /// <summary>dw[o, c] += G^T dU[o, c] G for every channel pair (dU [36][Cout4, Cin4]).</summary>
    static unsafe void AccumulateFilterGradient(WinoProblem p, float* du, int cin4)
    {
        int cin = p.Cin, cout = p.Cout;
        long pointStride = PointStride((long)RoundUp4(cout) * cin4);
        nint duBase = (nint)du;
        // Columns of G (6x3): G[a, u].
        CpuLoop.For(cout, 162L * cin, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int o) =>
        {
            Span<float> t = stackalloc float[WinoPatch * 3];   // (dU G) [6][3]
            float* src0 = (float*)duBase + (long)o * cin4;
            for (int c = 0; c < cin; c++)
            {
                float* src = src0 + c;
                // t[a][v] = sum_b dU[a][b] G[b, v]
                for (int a = 0; a < WinoPatch; a++)
                {
                    float* r = src + a * WinoPatch * pointStride;
                    float d0 = r[0], d1 = r[pointStride], d2 = r[2 * pointStride], d3 = r[3 * pointStride], d4 = r[4 * pointStride], d5 = r[5 * pointStride];
                    t[a * 3 + 0] = d0 * 0.25f - (d1 + d2) / 6f + (d3 + d4) / 24f;
                    t[a * 3 + 1] = (d2 - d1) / 6f + (d3 - d4) / 12f;
                    t[a * 3 + 2] = -(d1 + d2) / 6f + (d3 + d4) / 6f + d5;
                }
                // dw[u][v] += sum_a G[a, u] t[a][v]
                int at = p.FilterOffset + (o * cin + c) * 9;
                for (int v = 0; v < 3; v++)
                {
                    float d0 = t[v], d1 = t[3 + v], d2 = t[6 + v], d3 = t[9 + v], d4 = t[12 + v], d5 = t[15 + v];
                    p.Filters[at + v] += d0 * 0.25f - (d1 + d2) / 6f + (d3 + d4) / 24f;
                    p.Filters[at + 3 + v] += (d2 - d1) / 6f + (d3 - d4) / 12f;
                    p.Filters[at + 6 + v] += -(d1 + d2) / 6f + (d3 + d4) / 6f + d5;
                }
            }
        });
    }
}
