using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

// GPU path.
//
// kernel 1 (NaiveKernel): one thread per element of C, every operand read from global memory.
//   Kept as the reference the tiled kernel is measured against.
// kernel 2 (TiledKernel): shared-memory tiles and a 4 x 4 register block per thread.
//   A group of S x S threads computes a (4S) x (4S) tile of C; each step of k stages
//   op(A)[4S, TileK] and op(B)[TileK, 4S] in shared memory (loads coalesced for either
//   transpose, out-of-range elements read as 0), then every thread does 16 FMAs per 8
//   shared-memory reads. S = 16 on CUDA (64 x 64 tile, 256 threads); the launch picks the
//   largest S with S*S <= MaxGroupSize, so ILGPU's CPU simulator (16 threads) runs the same
//   kernel with S = 4 (16 x 16 tile).
//   Thread (tx, ty) owns rows ty + r*S and columns tx + c*S (r, c < 4): neighbouring threads
//   read neighbouring shared-memory words (no bank conflicts) and write neighbouring C columns.
public static partial class Gemm
{
    const int TileK = 16;             // depth of one shared-memory stage
    const int ThreadTile = 4;         // each thread computes ThreadTile x ThreadTile outputs
    const int MaxGroupSide = 16;      // S on CUDA: 16 x 16 threads
    const int MaxBlockTile = MaxGroupSide * ThreadTile;
    // Shared tiles are stored k-major with one word of padding per row, so the
    // transposed-order stores of the staging loops do not all hit one bank.
    const int SharedTileLength = TileK * (MaxBlockTile + 1);

    /// <summary>GPU path on raw views with leading dimensions (row strides).</summary>
    public static void Gpu(GpuDevice gpu, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"Gemm.Gpu: sizes must be >= 0, got m={m}, n={n}, k={k}.");
        if (m == 0 || n == 0) return;
        var args = new GemmArgs(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, lda, ldb, beta, ldc);
        int side = GroupSide(gpu.MaxGroupSize), tile = side * ThreadTile;
        var config = new KernelConfig(new Index2D((n + tile - 1) / tile, (m + tile - 1) / tile), new Index2D(side, side));
        gpu.GroupedKernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(TiledKernel)(config, args, a, b, c);
    }

    /// <summary>Kernel 1 (one thread per output, no reuse): the baseline the tiled kernel replaces.</summary>
    internal static void GpuNaive(GpuDevice gpu, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, int lda, ArrayView<float> b, int ldb, float beta, ArrayView<float> c, int ldc)
    {
        if (m == 0 || n == 0) return;
        gpu.Kernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(NaiveKernel)(
            m * n, new GemmArgs(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, lda, ldb, beta, ldc), a, b, c);
    }

    /// <summary>Side S of the square thread group: the largest S &lt;= 16 with S*S threads allowed.</summary>
    static int GroupSide(int maxGroupSize)
    {
        int side = MaxGroupSide;
        while (side > 1 && side * side > maxGroupSize) side /= 2;
        return side;
    }

    /// <summary>Sizes and flags of one product, passed to kernels as one struct.</summary>
    public readonly record struct GemmArgs(int TransA, int TransB, int M, int N, int K, float Alpha, int Lda, int Ldb, float Beta, int Ldc);

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

        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;

        for (int p0 = 0; p0 < g.K; p0 += TileK)
        {
            // Stage op(A)[row0.., p0..]: consecutive threads take consecutive addresses of A.
            for (int e = tid; e < tile * TileK; e += threads)
            {
                int i, p;
                if (g.TransA == 0) { i = e / TileK; p = e - i * TileK; }   // A[i, p] row-major
                else { p = e / tile; i = e - p * tile; }                     // A stored [K, M]
                int gi = row0 + i, gp = p0 + p;
                float v = 0;
                if (gi < g.M && gp < g.K) v = g.TransA == 0 ? a[gi * g.Lda + gp] : a[gp * g.Lda + gi];
                aTile[p * stride + i] = v;
            }
            // Stage op(B)[p0.., col0..].
            for (int e = tid; e < tile * TileK; e += threads)
            {
                int j, p;
                if (g.TransB == 0) { p = e / tile; j = e - p * tile; }     // B[p, j] row-major
                else { j = e / TileK; p = e - j * TileK; }                   // B stored [N, K]
                int gj = col0 + j, gp = p0 + p;
                float v = 0;
                if (gj < g.N && gp < g.K) v = g.TransB == 0 ? b[gp * g.Ldb + gj] : b[gj * g.Ldb + gp];
                bTile[p * stride + j] = v;
            }
            Group.Barrier();

            for (int p = 0; p < TileK; p++)
            {
                int ar = p * stride + ty, bc = p * stride + tx;
                float a0 = aTile[ar], a1 = aTile[ar + side], a2 = aTile[ar + 2 * side], a3 = aTile[ar + 3 * side];
                float b0 = bTile[bc], b1 = bTile[bc + side], b2 = bTile[bc + 2 * side], b3 = bTile[bc + 3 * side];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }

        int i0 = row0 + ty, j0 = col0 + tx;
        StoreRow(g, c, i0, j0, side, c00, c01, c02, c03);
        StoreRow(g, c, i0 + side, j0, side, c10, c11, c12, c13);
        StoreRow(g, c, i0 + 2 * side, j0, side, c20, c21, c22, c23);
        StoreRow(g, c, i0 + 3 * side, j0, side, c30, c31, c32, c33);
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
