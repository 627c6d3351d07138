using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Chroma.Kernels;

// GPU path: three kernels, each checked against the float64 reference by the tests.
//
// kernel 1 (NaiveKernel): one thread per element of C, every operand read from global memory.
//   Kept as the baseline the tiled kernels are measured against.
// kernel 2 (TiledKernel): shared-memory tiles and a 4 x 4 register block per thread.
//   A group of S x S threads computes a (4S) x (4S) tile of C; each step of k stages
//   op(A)[4S, TileK] and op(B)[TileK, 4S] in shared memory (Stage: loads coalesced for either
//   transpose, out-of-range elements read as 0), then every thread does 16 FMAs per 8
//   shared-memory reads. S = 16 on CUDA (64 x 64 tile, 256 threads); the launch picks the
//   largest S with S*S <= MaxGroupSize (GpuTarget.SquareGroupSide), so ILGPU's CPU simulator
//   (16 threads) runs the same kernel with S = 4 (16 x 16 tile).
//   Thread (tx, ty) owns rows ty + r*S and columns tx + c*S (r, c < 4): neighbouring threads
//   read neighbouring shared-memory words (no bank conflicts) and write neighbouring C columns.
// kernel 3 (Tiled8Kernel): the same scheme with 8 x 8 outputs per thread and (8S) x (8S) tiles
//   (128 x 128 on CUDA, K-step 8): 64 FMAs per 16 shared-memory reads, the ratio at which a
//   Hopper SM's shared-memory port (one 32-lane read per cycle) keeps up with its FMA units
//   (four 32-lane FMAs per cycle); kernel 2's 2:1 ratio caps it near half of FMA peak.
// Gemm.Gpu takes kernel 3 for products large enough to give every multiprocessor two of its
// groups, else kernel 2. Neither has been timed on a GPU yet (this branch was built without
// one); on the CPU simulator they only check indexing and barriers.
public static partial class Gemm
{
    const int TileK = Tile4x4.Depth;  // depth of one shared-memory stage
    const int ThreadTile = 4;         // each thread computes ThreadTile x ThreadTile outputs
    const int MaxGroupSide = 16;      // S on CUDA: 16 x 16 threads
    const int MaxBlockTile = MaxGroupSide * ThreadTile;
    // Shared tiles are stored k-major with one word of padding per row, so the
    // transposed-order stores of the staging loops do not all hit one bank.
    const int SharedTileLength = TileK * (MaxBlockTile + 1);
    const int Tile8K = 8;             // depth of one stage of the 8 x 8 kernel

    /// <summary>
    /// Smallest depth one split of a split-K product gets: 2 stages of <see cref="TileK"/> (the 7x7 layers
    /// of the global path at batch 1, M = 128, N = 49, K = 1152, need 36 splits to give 264 groups).
    /// </summary>
    const int MinSplitDepth = 2 * TileK;

    /// <summary>Most floats of partial products one split launch may write (128 MB).</summary>
    const long MaxPartials = 32L << 20;

    /// <summary>
    /// The launches of one product on a target GPU, a plain function of the shapes (see <see cref="PlanGpu"/>).
    /// <see cref="Product"/> is the tiled kernel; with <see cref="Splits"/> &gt; 1 it writes
    /// <see cref="Splits"/> partial products [M, N] (each over a depth range of <see cref="SplitDepth"/>)
    /// and <see cref="Reduce"/> adds them in split order into C: the same result on every run, no atomics.
    /// </summary>
    public readonly record struct GpuPlan(LaunchPlan Product, LaunchPlan? Reduce, int Side, int Tile, int Splits, int SplitDepth)
    {
        public IEnumerable<LaunchPlan> Launches => Reduce is { } r ? [Product, r] : [Product];
    }

    /// <summary>
    /// Chooses the kernel, tile, split factor and grid for C[M,N] = op(A) op(B) on <paramref name="target"/>:
    /// <list type="number">
    /// <item>kernel 3 (8 x 8 per thread, 128 x 128 tiles on CUDA) when its tiles alone give
    /// <see cref="GpuTarget.GroupsToFill"/> groups (2 per multiprocessor);</item>
    /// <item>else kernel 2 with 64 x 64 tiles when those fill the GPU, else with 32 x 32 tiles (8 x 8
    /// threads): 4x the groups, so a product that must be split needs 4x fewer splits (and less
    /// partial-product traffic);</item>
    /// <item>else split-K: the depth is cut into ceil(fill / tiles) ranges of at least
    /// <see cref="MinSplitDepth"/> (grid z), which turns the skinny weight-gradient and fully
    /// connected products (M, N of 16-512, K up to 100 000) into hundreds of groups.</item>
    /// </list>
    /// </summary>
    public static GpuPlan PlanGpu(GpuTarget target, bool transA, bool transB, int m, int n, int k)
    {
        long work = (long)m * n * k, fill = target.GroupsToFill;
        int side = target.SquareGroupSide(MaxGroupSide);
        long Tiles(int tile) => (long)((m + tile - 1) / tile) * ((n + tile - 1) / tile);
        string tiled = KernelName(nameof(TiledKernel)), tiled8 = KernelName(nameof(Tiled8Kernel));

        if (Tiles(8 * side) >= fill)
            return new(new LaunchPlan(tiled8, Grid(8 * side, 1), new Index3D(side, side, 1), work), null, side, 8 * side, 1, k);
        if (side > 8 && Tiles(ThreadTile * side) < fill) side = 8;
        int tile = ThreadTile * side;
        long tiles = Tiles(tile);
        var (splits, depth) = PlanSplitK(tiles, fill, k, (long)m * n);
        var product = new LaunchPlan(tiled, Grid(tile, splits), new Index3D(side, side, 1), work);
        LaunchPlan? reduce = splits > 1
            ? new LaunchPlan(KernelName(nameof(SplitReduceKernel)), new Index3D(m * n, 1, 1), default, (long)m * n * splits)
            : null;
        return new(product, reduce, side, tile, splits, depth);

        Index3D Grid(int t, int z) => new((n + t - 1) / t, (m + t - 1) / t, z);
    }

    static string KernelName(string method) => nameof(Gemm) + "." + method;

    /// <summary>
    /// Split-K for a product whose <paramref name="tiles"/> give fewer than <paramref name="fill"/> groups:
    /// the depth <paramref name="k"/> is cut into ranges of whole <see cref="TileK"/> stages, at least
    /// <see cref="MinSplitDepth"/> deep, so that tiles x splits reaches fill where the depth allows; the
    /// partial products [splits, M, N] stay within <see cref="MaxPartials"/> floats. Shared by the plain
    /// and the implicit-GEMM (convolution) products. Returns (1, k) when no split is needed or possible.
    /// </summary>
    public static (int Splits, int Depth) PlanSplitK(long tiles, long fill, int k, long mn)
    {
        if (tiles >= fill || k < 2 * MinSplitDepth) return (1, k);
        long wanted = (fill + tiles - 1) / tiles;
        long most = Math.Min(k / MinSplitDepth, Math.Max(1, MaxPartials / Math.Max(1, mn)));
        wanted = Math.Clamp(wanted, 1, most);
        if (wanted == 1) return (1, k);
        // Rounded down to whole stages, so that ceil(k / depth) >= wanted.
        int depth = Math.Max(MinSplitDepth, (int)(k / wanted) / TileK * TileK);
        return ((k + depth - 1) / depth, depth);
    }

    /// <summary>GPU path on raw views with leading dimensions (row strides), planned for the device's target.</summary>
    public static void Gpu(GpuDevice gpu, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc) =>
        Gpu(gpu, PlanGpu(gpu.Target, transA, transB, m, n, k), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>Runs a given plan (tests run a Hopper plan's split factor on the simulator this way).</summary>
    internal static void Gpu(GpuDevice gpu, in GpuPlan plan, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"Gemm.Gpu: sizes must be >= 0, got m={m}, n={n}, k={k}.");
        if (m == 0 || n == 0) return;
        var product = plan.Product;
        if (product.Group.X > gpu.Target.MaxGroupSize / Math.Max(1, product.Group.Y) && !gpu.PlanOnly)
            throw new ArgumentException($"Gemm.Gpu: the plan's {product.Group.X}x{product.Group.Y} groups exceed this device's {gpu.Target.MaxGroupSize} threads.");
        var args = new GemmArgs(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, lda, ldb, beta, ldc, plan.SplitDepth, 0);
        var config = new KernelConfig(product.Grid, product.Group);
        if (plan.Splits == 1)
        {
            gpu.Launching(product);
            if (plan.Tile == 8 * plan.Side)
                gpu.GroupedKernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Tiled8Kernel)(config, args, a, b, c);
            else
                gpu.GroupedKernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(TiledKernel)(config, args, a, b, c);
            return;
        }
        // Split z writes its partial product [M, N] (ldc = N, alpha 1, beta 0) at z * M * N.
        long mn = (long)m * n;
        var partials = gpu.Workspace("gemm.partials", checked((int)(mn * plan.Splits))).View;
        gpu.Launching(product);
        gpu.GroupedKernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(TiledKernel)(
            config, args with { Alpha = 1f, Beta = 0f, Ldc = n, PartialStride = (int)mn }, a, b, partials);
        gpu.Launching(plan.Reduce!.Value);
        gpu.Kernel<GemmArgs, int, ArrayView<float>, ArrayView<float>>(SplitReduceKernel)((int)mn, args, plan.Splits, partials, c);
    }

    /// <summary>Kernel 2 with its own tile choice (kept for the tests' comparisons of the kernels).</summary>
    internal static void GpuTiled4(GpuDevice gpu, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc)
    {
        if (m == 0 || n == 0) return;
        var args = new GemmArgs(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, lda, ldb, beta, ldc, k, 0);
        int side = gpu.Target.SquareGroupSide(MaxGroupSide), tile = side * ThreadTile;
        var config = new KernelConfig(new Index2D((n + tile - 1) / tile, (m + tile - 1) / tile), new Index2D(side, side));
        gpu.GroupedKernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(TiledKernel)(config, args, a, b, c);
    }

    /// <summary>Kernel 3: 8 x 8 outputs per thread, (8S) x (8S) tiles (128 x 128 on CUDA).</summary>
    internal static void GpuTiled8(GpuDevice gpu, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc)
    {
        if (m == 0 || n == 0) return;
        var args = new GemmArgs(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, lda, ldb, beta, ldc, k, 0);
        int side = gpu.Target.SquareGroupSide(MaxGroupSide), tile = side * 8;
        var config = new KernelConfig(new Index2D((n + tile - 1) / tile, (m + tile - 1) / tile), new Index2D(side, side));
        gpu.GroupedKernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Tiled8Kernel)(config, args, a, b, c);
    }

    /// <summary>
    /// One thread per element of C: C = alpha * (sum of the splits' partial products, in split order) + beta * C.
    /// partials holds splits blocks of [M, N] (row stride N).
    /// </summary>
    static void SplitReduceKernel(Index1D index, GemmArgs g, int splits, ArrayView<float> partials, ArrayView<float> c)
    {
        int i = index / g.N, j = index - i * g.N;
        long mn = (long)g.M * g.N;
        float s = 0f;
        for (int z = 0; z < splits; z++) s += partials[z * mn + index];
        long ci = (long)i * g.Ldc + j;
        c[ci] = g.Beta == 0f ? g.Alpha * s : g.Alpha * s + g.Beta * c[ci];
    }

    /// <summary>Kernel 1 (one thread per output, no reuse): the baseline the tiled kernel replaces.</summary>
    internal static void GpuNaive(GpuDevice gpu, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc)
    {
        if (m == 0 || n == 0) return;
        gpu.Kernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(NaiveKernel)(
            m * n, new GemmArgs(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, lda, ldb, beta, ldc, k, 0), a, b, c);
    }

    /// <summary>
    /// Sizes and flags of one product, passed to kernels as one struct. Split-K: grid z covers
    /// depths [z * SplitDepth, min(K, (z + 1) * SplitDepth)) and writes C at z * PartialStride.
    /// </summary>
    public readonly record struct GemmArgs(int TransA, int TransB, int M, int N, int K, float Alpha, int Lda, int Ldb, float Beta, int Ldc,
        int SplitDepth, int PartialStride);

    // One thread per element of C.
    static void NaiveKernel(Index1D idx, GemmArgs g, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        int i = idx / g.N, j = idx % g.N;
        float s = 0;
        for (int p = 0; p < g.K; p++)
            s += (g.TransA != 0 ? a[p * g.Lda + i] : a[i * g.Lda + p]) * (g.TransB != 0 ? b[j * g.Ldb + p] : b[p * g.Ldb + j]);
        int ci = i * g.Ldc + j;
        c[ci] = g.Beta == 0f ? g.Alpha * s : g.Alpha * s + g.Beta * c[ci];
    }

    // Group (S, S) computes C[Grid.IdxY*4S .. +4S, Grid.IdxX*4S .. +4S].
    static void TiledKernel(GemmArgs g, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        int tx = Group.IdxX, ty = Group.IdxY, side = Group.DimX;
        int tile = side * ThreadTile, stride = tile + 1;      // shared row length (padded)
        int threads = side * side, tid = ty * side + tx;
        int row0 = Grid.IdxY * tile, col0 = Grid.IdxX * tile;
        var aTile = SharedMemory.Allocate<float>(SharedTileLength);   // op(A) tile, [TileK, tile]
        var bTile = SharedMemory.Allocate<float>(SharedTileLength);   // op(B) tile, [TileK, tile]

        var acc = new Tile4x4();   // this thread's 4x4 block of C, in registers

        int kBegin = Grid.IdxZ * g.SplitDepth, kEnd = XMath.Min(g.K, kBegin + g.SplitDepth);
        for (int p0 = kBegin; p0 < kEnd; p0 += TileK)
        {
            Stage(g, a, b, aTile, bTile, row0, col0, p0, kEnd, tile, TileK, tid, threads);
            Group.Barrier();

            acc.MultiplyAdd(aTile, bTile, stride, side, ty, tx);
            Group.Barrier();
        }

        int i0 = row0 + ty, j0 = col0 + tx;
        if (Grid.IdxZ > 0) c = c.SubView((long)Grid.IdxZ * g.PartialStride);
        StoreRow(g, c, i0, j0, side, acc.C00, acc.C01, acc.C02, acc.C03);
        StoreRow(g, c, i0 + side, j0, side, acc.C10, acc.C11, acc.C12, acc.C13);
        StoreRow(g, c, i0 + 2 * side, j0, side, acc.C20, acc.C21, acc.C22, acc.C23);
        StoreRow(g, c, i0 + 3 * side, j0, side, acc.C30, acc.C31, acc.C32, acc.C33);
    }

    // Copies op(A)[row0 .. +tile, p0 .. +tileK] and op(B)[p0 .. +tileK, col0 .. +tile] into the
    // shared tiles (k-major, row length tile + 1), zero outside the matrices. Consecutive threads
    // take consecutive addresses of the stored matrix, whichever way it is transposed.
    static void Stage(GemmArgs g, ArrayView<float> a, ArrayView<float> b, ArrayView<float> aTile, ArrayView<float> bTile,
        int row0, int col0, int p0, int kEnd, int tile, int tileK, int tid, int threads)
    {
        int stride = tile + 1;
        for (int e = tid; e < tile * tileK; e += threads)
        {
            int i, p;
            if (g.TransA == 0) { i = e / tileK; p = e - i * tileK; }   // A[i, p] row-major
            else { p = e / tile; i = e - p * tile; }                     // A stored [K, M]
            int gi = row0 + i, gp = p0 + p;
            float v = 0;
            if (gi < g.M && gp < kEnd) v = g.TransA == 0 ? a[gi * g.Lda + gp] : a[gp * g.Lda + gi];
            aTile[p * stride + i] = v;
        }
        for (int e = tid; e < tile * tileK; e += threads)
        {
            int j, p;
            if (g.TransB == 0) { p = e / tile; j = e - p * tile; }     // B[p, j] row-major
            else { j = e / tileK; p = e - j * tileK; }                   // B stored [N, K]
            int gj = col0 + j, gp = p0 + p;
            float v = 0;
            if (gj < g.N && gp < kEnd) v = g.TransB == 0 ? b[gp * g.Ldb + gj] : b[gj * g.Ldb + gp];
            bTile[p * stride + j] = v;
        }
    }
    // Group (S, S) computes C[Grid.IdxY*8S .. +8S, Grid.IdxX*8S .. +8S]; thread (tx, ty) owns rows
    // ty + r*S and columns tx + c*S, r, c < 8: 64 accumulators, 16 shared reads per 64 FMAs.
    static void Tiled8Kernel(GemmArgs g, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        int tx = Group.IdxX, ty = Group.IdxY, side = Group.DimX;
        int tile = side * 8, stride = tile + 1;
        int row0 = Grid.IdxY * tile, col0 = Grid.IdxX * tile;
        var aTile = SharedMemory.Allocate<float>(Tile8K * (MaxGroupSide * 8 + 1));   // op(A) tile, [Tile8K, tile]
        var bTile = SharedMemory.Allocate<float>(Tile8K * (MaxGroupSide * 8 + 1));   // op(B) tile, [Tile8K, tile]

        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c04 = 0, c05 = 0, c06 = 0, c07 = 0;
        float c10 = 0, c11 = 0, c12 = 0, c13 = 0, c14 = 0, c15 = 0, c16 = 0, c17 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c24 = 0, c25 = 0, c26 = 0, c27 = 0;
        float c30 = 0, c31 = 0, c32 = 0, c33 = 0, c34 = 0, c35 = 0, c36 = 0, c37 = 0;
        float c40 = 0, c41 = 0, c42 = 0, c43 = 0, c44 = 0, c45 = 0, c46 = 0, c47 = 0;
        float c50 = 0, c51 = 0, c52 = 0, c53 = 0, c54 = 0, c55 = 0, c56 = 0, c57 = 0;
        float c60 = 0, c61 = 0, c62 = 0, c63 = 0, c64 = 0, c65 = 0, c66 = 0, c67 = 0;
        float c70 = 0, c71 = 0, c72 = 0, c73 = 0, c74 = 0, c75 = 0, c76 = 0, c77 = 0;

        for (int p0 = 0; p0 < g.K; p0 += Tile8K)
        {
            Stage(g, a, b, aTile, bTile, row0, col0, p0, g.K, tile, Tile8K, ty * side + tx, side * side);
            Group.Barrier();
            for (int p = 0; p < Tile8K; p++)
            {
                int ar = p * stride + ty, bc = p * stride + tx;
                float a0 = aTile[ar], a1 = aTile[ar + 1 * side], a2 = aTile[ar + 2 * side], a3 = aTile[ar + 3 * side], a4 = aTile[ar + 4 * side], a5 = aTile[ar + 5 * side], a6 = aTile[ar + 6 * side], a7 = aTile[ar + 7 * side];
                float b0 = bTile[bc], b1 = bTile[bc + 1 * side], b2 = bTile[bc + 2 * side], b3 = bTile[bc + 3 * side], b4 = bTile[bc + 4 * side], b5 = bTile[bc + 5 * side], b6 = bTile[bc + 6 * side], b7 = bTile[bc + 7 * side];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3; c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3; c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3; c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3; c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
                c40 += a4 * b0; c41 += a4 * b1; c42 += a4 * b2; c43 += a4 * b3; c44 += a4 * b4; c45 += a4 * b5; c46 += a4 * b6; c47 += a4 * b7;
                c50 += a5 * b0; c51 += a5 * b1; c52 += a5 * b2; c53 += a5 * b3; c54 += a5 * b4; c55 += a5 * b5; c56 += a5 * b6; c57 += a5 * b7;
                c60 += a6 * b0; c61 += a6 * b1; c62 += a6 * b2; c63 += a6 * b3; c64 += a6 * b4; c65 += a6 * b5; c66 += a6 * b6; c67 += a6 * b7;
                c70 += a7 * b0; c71 += a7 * b1; c72 += a7 * b2; c73 += a7 * b3; c74 += a7 * b4; c75 += a7 * b5; c76 += a7 * b6; c77 += a7 * b7;
            }
            Group.Barrier();
        }

        int i0 = row0 + ty, j0 = col0 + tx;
        StoreRow8(g, c, i0, j0, side, c00, c01, c02, c03, c04, c05, c06, c07);
        StoreRow8(g, c, i0 + 1 * side, j0, side, c10, c11, c12, c13, c14, c15, c16, c17);
        StoreRow8(g, c, i0 + 2 * side, j0, side, c20, c21, c22, c23, c24, c25, c26, c27);
        StoreRow8(g, c, i0 + 3 * side, j0, side, c30, c31, c32, c33, c34, c35, c36, c37);
        StoreRow8(g, c, i0 + 4 * side, j0, side, c40, c41, c42, c43, c44, c45, c46, c47);
        StoreRow8(g, c, i0 + 5 * side, j0, side, c50, c51, c52, c53, c54, c55, c56, c57);
        StoreRow8(g, c, i0 + 6 * side, j0, side, c60, c61, c62, c63, c64, c65, c66, c67);
        StoreRow8(g, c, i0 + 7 * side, j0, side, c70, c71, c72, c73, c74, c75, c76, c77);
    }

    static void StoreRow8(GemmArgs g, ArrayView<float> c, int i, int j, int side,
        float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7)
    {
        if (i >= g.M) return;
        StoreOne(g, c, i, j, v0); StoreOne(g, c, i, j + side, v1);
        StoreOne(g, c, i, j + 2 * side, v2); StoreOne(g, c, i, j + 3 * side, v3);
        StoreOne(g, c, i, j + 4 * side, v4); StoreOne(g, c, i, j + 5 * side, v5);
        StoreOne(g, c, i, j + 6 * side, v6); StoreOne(g, c, i, j + 7 * side, v7);
    }

    // Writes one thread's outputs of row i (columns j, j+side, j+2side, j+3side), skipping those outside C.
    static void StoreRow(GemmArgs g, ArrayView<float> c, int i, int j, int side, float v0, float v1, float v2, float v3)
    {
        if (i >= g.M) return;
        StoreOne(g, c, i, j, v0);
        StoreOne(g, c, i, j + side, v1);
        StoreOne(g, c, i, j + 2 * side, v2);
        StoreOne(g, c, i, j + 3 * side, v3);
    }

    static void StoreOne(GemmArgs g, ArrayView<float> c, int i, int j, float v)
    {
        if (j >= g.N) return;
        int ci = i * g.Ldc + j;
        c[ci] = g.Beta == 0f ? g.Alpha * v : g.Alpha * v + g.Beta * c[ci];
    }
}

/// <summary>
/// One thread's 4 x 4 register block of C in the tiled products with a 4 x 4 block per thread
/// (<c>Gemm.TiledKernel</c> and Conv2d's implicit GEMM): thread (tx, ty) of an S x S group owns rows
/// ty + r*S and columns tx + c*S (r, c &lt; 4) of the group's (4S) x (4S) tile, so that the threads of a
/// warp read consecutive shared-memory words. A local of this struct stays in registers: ILGPU inlines
/// <see cref="MultiplyAdd"/> and splits the struct into its fields (ptxas: 40-48 registers, no stack
/// frame, no spills, the same as the 16 locals it replaced).
/// </summary>
internal struct Tile4x4
{
    /// <summary>Depths per shared-memory stage (the kernels' TileK).</summary>
    public const int Depth = 16;

    public float C00, C01, C02, C03, C10, C11, C12, C13, C20, C21, C22, C23, C30, C31, C32, C33;

    /// <summary>
    /// C += A B over one stage of <see cref="Depth"/> depths in shared memory: <paramref name="aTile"/> holds A's
    /// tile as [Depth, 4S] and <paramref name="bTile"/> B's as [Depth, 4S], rows <paramref name="stride"/> floats
    /// apart (4S + 1: the padding keeps the stores of the staging loops off one bank).
    /// </summary>
    public void MultiplyAdd(ArrayView<float> aTile, ArrayView<float> bTile, int stride, int side, int ty, int tx)
    {
        for (int p = 0; p < Depth; p++)
        {
            int ar = p * stride + ty, bc = p * stride + tx;
            float a0 = aTile[ar], a1 = aTile[ar + side], a2 = aTile[ar + 2 * side], a3 = aTile[ar + 3 * side];
            float b0 = bTile[bc], b1 = bTile[bc + side], b2 = bTile[bc + 2 * side], b3 = bTile[bc + 3 * side];
            C00 += a0 * b0; C01 += a0 * b1; C02 += a0 * b2; C03 += a0 * b3;
            C10 += a1 * b0; C11 += a1 * b1; C12 += a1 * b2; C13 += a1 * b3;
            C20 += a2 * b0; C21 += a2 * b1; C22 += a2 * b2; C23 += a2 * b3;
            C30 += a3 * b0; C31 += a3 * b1; C32 += a3 * b2; C33 += a3 * b3;
        }
    }
}
