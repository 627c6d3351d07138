using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Chroma.Kernels;

// GPU path: implicit-GEMM convolution. The three products of a convolution are matrix products
// whose operands the kernel reads through the im2col index map, so no column buffer is written
// to (or read back from) global memory:
//
//   forward       y  [Cout, N*Ho*Wo] = W [Cout, Cin*K*K] x cols(x)          (+ bias, ReLU in the store)
//   input grad    dx [Cin,  N*H*W]  += W'[Cin, Cout*K*K] x rows(dy)         (gather form: each dx pixel
//                 sums the dy entries that read it, so no two threads write one element)
//   weight grad   dW [Cout, Cin*K*K] += dY [Cout, N*Ho*Wo] x cols(x)^T      (split-K over N*Ho*Wo)
//
// With G groups each is G independent products of a G-th of the channels (Cin, Cout above read
// Cin/G, Cout/G), one per grid z slice (z = group * splits + split): the index maps add the group's
// first channel. Dilation only scales the kernel taps in the maps (u*dil, v*dil). Those take
// GeneralImplicitGemmKernel; dilation 1 with one group (every layer of the paper's network) keeps
// ImplicitGemmKernel, the same body with group 0 and dilation 1 as constants, which ILGPU folds away:
// its register use is what it was before dilation and groups (ptxas 12.4: 48 registers for sm_80,
// 40 for sm_90). The general kernel keeps the group index and takes 48 for both: on sm_90, at 256
// threads a group, that leaves room for 5 resident groups per SM where 40 registers leave 6.
//
// The kernel is the 4 x 4 register-tiled SIMT product of Gemm.TiledKernel (S x S threads, a
// (4S) x (4S) tile, TileK-deep shared-memory stages), with the operand loads and the store
// replaced by the mode's index maps. When the tiles do not fill the GPU (the 7x7 and 14x14 layers
// of the global path, every weight gradient), the depth is split: grid z writes a partial product,
// and ReduceKernel adds the splits in order and applies the store. The bias gradient is a split
// channel sum (Reductions). Float32 SIMT on purpose: tensor cores come later.
// Not yet timed on a GPU (no GPU was lent while it was written): the plan tests check the
// structure (groups per launch) and the op tests check the values on ILGPU's CPU accelerator
// and on PoCL's OpenCL device.
public static partial class Conv2d
{
    /// <summary>Which product of the convolution the implicit-GEMM kernel computes.</summary>
    public enum GpuMode
    {
        /// <summary>y = W x cols(x) + b (ReLU optional).</summary>
        Forward = 0,
        /// <summary>dx += W' x rows(dy).</summary>
        InputGradient = 1,
        /// <summary>dW += dY x cols(x)^T.</summary>
        WeightGradient = 2,
    }

    const int TileK = Tile4x4.Depth;      // depth of one shared-memory stage (as Gemm's: Gemm.PlanSplitK cuts the depth in its stages)
    const int ThreadTile = 4;             // outputs per thread along each axis
    const int MaxSide = 16;               // S on CUDA: 16 x 16 threads, 64 x 64 tiles
    const int SharedTile = TileK * (MaxSide * ThreadTile + 1);

    /// <summary>
    /// Sizes of one implicit-GEMM launch: the convolution, the mode, one group's product M, N, K, the split
    /// depth, the store's options, and the channels per group (computed once here, not divided in the kernel).
    /// Public because ILGPU's CPU accelerator emits code in another assembly that must see kernel parameter types.
    /// </summary>
    public readonly record struct GemmArgs(ConvArgs S, int Mode, int M, int N, int K, int SplitDepth, int Splits, int HasBias, int Relu,
        int GroupCin, int GroupCout);

    /// <summary>The launches of one convolution product: the tiled product and, when split, the ordered reduction.</summary>
    public readonly record struct GpuPlan(GpuMode Mode, LaunchPlan Product, LaunchPlan? Reduce, int Side, int Splits, int SplitDepth)
    {
        public IEnumerable<LaunchPlan> Launches => Reduce is { } r ? [Product, r] : [Product];
    }

    /// <summary>The bias-gradient launches: the split channel sum and its ordered final pass.</summary>
    public readonly record struct GpuBiasPlan(LaunchPlan Partial, LaunchPlan Final, int Splits, int Chunk);

    /// <summary>(M, N, K) of one group's product in a mode (G = 1: the whole product); there are <see cref="ConvArgs.Groups"/> of them.</summary>
    public static (int M, int N, int K) ProductShape(in ConvArgs s, GpuMode mode) => mode switch
    {
        GpuMode.Forward => (s.GroupCout, s.N * s.HoWo, s.Ckk),
        GpuMode.InputGradient => (s.GroupCin, s.N * s.HW, s.GroupCout * s.K * s.K),
        _ => (s.GroupCout, s.Ckk, s.N * s.HoWo),
    };

    /// <summary>
    /// Plans one product on <paramref name="target"/> (a plain function of the shapes): 64 x 64 tiles
    /// when they fill the GPU, else 32 x 32 (4x the groups, 4x fewer splits needed); then, while the tiles give fewer than
    /// <see cref="GpuTarget.GroupsToFill"/> groups, the depth is split (<see cref="Gemm.PlanSplitK"/>).
    /// With channel groups the G products are one launch (grid z = G x splits), so their tiles count together.
    /// </summary>
    public static GpuPlan PlanGpu(GpuTarget target, in ConvArgs s, GpuMode mode)
    {
        var (m, n, k) = ProductShape(s, mode);
        int groups = s.Groups;
        long fill = target.GroupsToFill;
        int side = target.SquareGroupSide(MaxSide);
        long Tiles(int tile) => (long)((m + tile - 1) / tile) * ((n + tile - 1) / tile) * groups;
        if (side > 8 && Tiles(ThreadTile * side) < fill) side = 8;
        int tileSize = ThreadTile * side;
        long tiles = Tiles(tileSize);
        long mn = (long)m * n * groups;   // every group's C
        var (splits, depth) = Gemm.PlanSplitK(tiles, fill, k, mn);
        long work = mn * k;
        var product = new LaunchPlan(nameof(Conv2d) + "." + (IsPlain(s) ? nameof(ImplicitGemmKernel) : nameof(GeneralImplicitGemmKernel)),
            new Index3D((n + tileSize - 1) / tileSize, (m + tileSize - 1) / tileSize, groups * splits), new Index3D(side, side, 1), work);
        LaunchPlan? reduce = splits > 1
            ? new LaunchPlan(nameof(Conv2d) + "." + nameof(ReduceKernel), new Index3D((int)mn, 1, 1), default, mn * splits)
            : null;
        return new GpuPlan(mode, product, reduce, side, splits, depth);
    }

    /// <summary>Dilation 1 and one group: the product <see cref="ImplicitGemmKernel"/> computes.</summary>
    static bool IsPlain(in ConvArgs s) => s.Dilation == 1 && s.Groups == 1;

    /// <summary>Plans the bias gradient db[o] += sum over n, i, j of dy[n, o, i, j].</summary>
    public static GpuBiasPlan PlanGpuBias(GpuTarget target, in ConvArgs s)
    {
        var split = Reductions.PlanChannels(target, s.Cout, (long)s.N * s.HoWo);
        return new GpuBiasPlan(
            new LaunchPlan(nameof(Conv2d) + "." + nameof(BiasPartialKernel), split.Grid, split.Group, (long)s.N * s.HoWo * s.Cout),
            new LaunchPlan(nameof(Conv2d) + "." + nameof(BiasFinalKernel), new Index3D(s.Cout, 1, 1), default, (long)s.Cout * split.Splits),
            split.Splits, split.Chunk);
    }

    /// <summary>Every launch of a forward (or, with <paramref name="backward"/>, a backward) on a target: what the tests check.</summary>
    public static IEnumerable<LaunchPlan> PlanGpuLaunches(GpuTarget target, in ConvArgs s, bool backward, bool inputGradient = true, bool bias = true)
    {
        var launches = new List<LaunchPlan>();
        if (!backward) { launches.AddRange(PlanGpu(target, s, GpuMode.Forward).Launches); return launches; }
        if (bias) { var b = PlanGpuBias(target, s); launches.Add(b.Partial); launches.Add(b.Final); }
        launches.AddRange(PlanGpu(target, s, GpuMode.WeightGradient).Launches);
        if (inputGradient) launches.AddRange(PlanGpu(target, s, GpuMode.InputGradient).Launches);
        return launches;
    }

    static void ForwardGpu(GpuDevice gpu, ConvArgs s, Tensor x, Tensor w, Tensor? b, Tensor y, bool relu) =>
        RunGpu(gpu, PlanGpu(gpu.Target, s, GpuMode.Forward), s, w.View, x.View, y.View, b?.View ?? y.View, b is not null, relu);

    static void BackwardGpu(GpuDevice gpu, ConvArgs s, Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db)
    {
        if (db is not null) BiasGradientGpu(gpu, PlanGpuBias(gpu.Target, s), s, dy.View, db.View);
        RunGpu(gpu, PlanGpu(gpu.Target, s, GpuMode.WeightGradient), s, dy.View, x.View, dw.View, dw.View, false, false);
        if (dx is not null)
            RunGpu(gpu, PlanGpu(gpu.Target, s, GpuMode.InputGradient), s, w.View, dy.View, dx.View, dx.View, false, false);
    }

    /// <summary>Runs one planned product: a = the left operand's tensor, b = the right's (read through the mode's maps).</summary>
    internal static void RunGpu(GpuDevice gpu, in GpuPlan plan, ConvArgs s, ArrayView<float> a, ArrayView<float> b,
        ArrayView<float> output, ArrayView<float> bias, bool hasBias, bool relu)
    {
        var (m, n, k) = ProductShape(s, plan.Mode);
        if (m == 0 || n == 0) return;
        var args = new GemmArgs(s, (int)plan.Mode, m, n, k, plan.SplitDepth, plan.Splits, hasBias ? 1 : 0, relu ? 1 : 0, s.GroupCin, s.GroupCout);
        var config = new KernelConfig(plan.Product.Grid, plan.Product.Group);
        var kernel = gpu.GroupedKernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            IsPlain(s) ? ImplicitGemmKernel : GeneralImplicitGemmKernel);
        gpu.Launching(plan.Product);
        if (plan.Splits == 1) { kernel(config, args, a, b, output, bias); return; }
        long mn = (long)m * n * s.Groups;
        // partials [G, splits, M, N]: grid z slice (group, split) writes its own [M, N]
        var partials = gpu.Workspace("conv2d.partials", checked((int)(mn * plan.Splits))).View;
        kernel(config, args, a, b, partials, bias);
        gpu.Launching(plan.Reduce!.Value);
        gpu.Kernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ReduceKernel)((int)mn, args, partials, output, bias);
    }

    static void BiasGradientGpu(GpuDevice gpu, in GpuBiasPlan plan, ConvArgs s, ArrayView<float> dy, ArrayView<float> db)
    {
        var partials = gpu.Workspace("conv2d.bias.partials", s.Cout * plan.Splits).View;
        gpu.Launching(plan.Partial);
        gpu.GroupedKernel<ConvArgs, int, ArrayView<float>, ArrayView<float>>(BiasPartialKernel)(
            new KernelConfig(plan.Partial.Grid, plan.Partial.Group), s, plan.Chunk, dy, partials);
        gpu.Launching(plan.Final);
        gpu.Kernel<int, ArrayView<float>, ArrayView<float>>(BiasFinalKernel)(s.Cout, plan.Splits, partials, db);
    }

    /// <summary>
    /// The product of a convolution with dilation 1 and one group: <see cref="ImplicitGemm"/> with those as
    /// constants. Group (S, S) at grid (x, y, z) computes the (4S) x (4S) tile of C at rows y*4S, columns x*4S,
    /// over depths [z*SplitDepth, +SplitDepth).
    /// </summary>
    static void ImplicitGemmKernel(GemmArgs g, ArrayView<float> a, ArrayView<float> b, ArrayView<float> output, ArrayView<float> bias) =>
        ImplicitGemm(g, a, b, output, bias, general: false);

    /// <summary>The product of a convolution with any dilation and groups (<see cref="ImplicitGemm"/>).</summary>
    static void GeneralImplicitGemmKernel(GemmArgs g, ArrayView<float> a, ArrayView<float> b, ArrayView<float> output, ArrayView<float> bias) =>
        ImplicitGemm(g, a, b, output, bias, general: true);

    /// <summary>
    /// Group (S, S) at grid (x, y, z) computes the (4S) x (4S) tile of channel group z / splits's C at rows
    /// y*4S, columns x*4S, over depths [(z % splits)*SplitDepth, +SplitDepth): with one split it stores through
    /// the mode's map, else it writes the raw partial to output[z, M, N] for <see cref="ReduceKernel"/>.
    /// Thread (tx, ty) owns rows ty + r*S and columns tx + c*S (r, c &lt; 4), as in Gemm.TiledKernel.
    /// <paramref name="general"/> is a constant in each kernel: false makes the group 0 and the dilation 1,
    /// and ILGPU's inlining and constant folding leave the plain product.
    /// </summary>
    static void ImplicitGemm(GemmArgs g, ArrayView<float> a, ArrayView<float> b, ArrayView<float> output, ArrayView<float> bias, bool general)
    {
        int tx = Group.IdxX, ty = Group.IdxY, side = Group.DimX;
        int tile = side * ThreadTile, stride = tile + 1;
        int threads = side * side, tid = ty * side + tx;
        int row0 = Grid.IdxY * tile, col0 = Grid.IdxX * tile;
        var aTile = SharedMemory.Allocate<float>(SharedTile);   // A tile, [TileK, tile]
        var bTile = SharedMemory.Allocate<float>(SharedTile);   // B tile, [TileK, tile]

        var acc = new Tile4x4();   // this thread's 4x4 block of C, in registers

        int grp = general ? Grid.IdxZ / g.Splits : 0;   // channel group
        int dil = general ? g.S.Dilation : 1;
        int kBegin = (Grid.IdxZ - grp * g.Splits) * g.SplitDepth, kEnd = XMath.Min(g.K, kBegin + g.SplitDepth);
        for (int p0 = kBegin; p0 < kEnd; p0 += TileK)
        {
            // A[row0 .. +tile, p0 .. +TileK]: consecutive threads take consecutive depths.
            for (int e = tid; e < tile * TileK; e += threads)
            {
                int i = e / TileK, p = e - i * TileK;
                int gi = row0 + i, gp = p0 + p;
                aTile[p * stride + i] = gi < g.M && gp < kEnd ? LoadA(g, a, grp, gi, gp) : 0f;
            }
            // B[p0 .. +TileK, col0 .. +tile]: consecutive threads take consecutive columns (output or input
            // pixels), except for the weight gradient, whose depth runs along the pixels.
            for (int e = tid; e < tile * TileK; e += threads)
            {
                int j, p;
                if (g.Mode == (int)GpuMode.WeightGradient) { j = e / TileK; p = e - j * TileK; }
                else { p = e / tile; j = e - p * tile; }
                int gj = col0 + j, gp = p0 + p;
                bTile[p * stride + j] = gj < g.N && gp < kEnd ? LoadB(g, b, grp, dil, gp, gj) : 0f;
            }
            Group.Barrier();

            acc.MultiplyAdd(aTile, bTile, stride, side, ty, tx);
            Group.Barrier();
        }

        int i0 = row0 + ty, j0 = col0 + tx;
        StoreRow(g, output, bias, grp, i0, j0, side, acc.C00, acc.C01, acc.C02, acc.C03);
        StoreRow(g, output, bias, grp, i0 + side, j0, side, acc.C10, acc.C11, acc.C12, acc.C13);
        StoreRow(g, output, bias, grp, i0 + 2 * side, j0, side, acc.C20, acc.C21, acc.C22, acc.C23);
        StoreRow(g, output, bias, grp, i0 + 3 * side, j0, side, acc.C30, acc.C31, acc.C32, acc.C33);
    }

    static void StoreRow(GemmArgs g, ArrayView<float> output, ArrayView<float> bias, int grp, int i, int j, int side, float v0, float v1, float v2, float v3)
    {
        if (i >= g.M) return;
        StoreOne(g, output, bias, grp, i, j, v0);
        StoreOne(g, output, bias, grp, i, j + side, v1);
        StoreOne(g, output, bias, grp, i, j + 2 * side, v2);
        StoreOne(g, output, bias, grp, i, j + 3 * side, v3);
    }

    static void StoreOne(GemmArgs g, ArrayView<float> output, ArrayView<float> bias, int grp, int i, int j, float v)
    {
        if (j >= g.N) return;
        if (g.Splits > 1) output[((long)Grid.IdxZ * g.M + i) * g.N + j] = v;
        else Store(g, output, bias, grp, i, j, v);
    }

    /// <summary>
    /// One thread per element of every group's C ([G, M, N]): adds the splits' partials ([G, splits, M, N]) in
    /// split order, then stores through the mode's map.
    /// </summary>
    static void ReduceKernel(Index1D index, GemmArgs g, ArrayView<float> partials, ArrayView<float> output, ArrayView<float> bias)
    {
        int mn = g.M * g.N;   // the host checked that every group's partials fit an int
        int grp = index / mn, e = index - grp * mn;
        int i = e / g.N, j = e - i * g.N;
        long first = (long)grp * g.Splits * mn + e;
        float sum = 0f;
        for (int z = 0; z < g.Splits; z++) sum += partials[first + (long)z * mn];
        Store(g, output, bias, grp, i, j, sum);
    }

    /// <summary>
    /// A[i, p] of group grp's product (o0 = grp Cout/G its first output channel). Forward: W_g [Cout/G, Ckk] =
    /// w[o0 + i, p]. Input gradient: W'[c, (o, u, v)] = w[o0 + o, c, u, v]. Weight gradient:
    /// dY[o, (n, i, j)] = dy[n, o0 + o, i, j].
    /// </summary>
    static float LoadA(GemmArgs g, ArrayView<float> a, int grp, int i, int p)
    {
        var s = g.S;
        if (g.Mode == (int)GpuMode.Forward) return a[((long)grp * g.M + i) * g.K + p];
        if (g.Mode == (int)GpuMode.InputGradient)
        {
            int kk = s.K * s.K, o = p / kk;
            return a[(((long)grp * g.GroupCout + o) * g.GroupCin + i) * kk + (p - o * kk)];
        }
        int n = p / s.HoWo;
        return a[((long)n * s.Cout + grp * g.GroupCout + i) * s.HoWo + (p - n * s.HoWo)];
    }

    /// <summary>
    /// B[p, j] of group grp's product. Forward: cols_g(x)[(c, u, v), (n, i, j)]. Input gradient:
    /// rows(dy)[(o, u, v), (n, y, x)] = dy[n, o0 + o, (y + pad - u*dil) / stride, (x + pad - v*dil) / stride] where
    /// that divides exactly and lies inside, else 0. Weight gradient: cols_g(x)^T[(n, i, j), (c, u, v)].
    /// </summary>
    static float LoadB(GemmArgs g, ArrayView<float> b, int grp, int dil, int p, int j)
    {
        var s = g.S;
        if (g.Mode == (int)GpuMode.InputGradient)
        {
            int kk = s.K * s.K, o = p / kk, uv = p - o * kk, u = uv / s.K, v = uv - u * s.K;
            int n = j / s.HW, q = j - n * s.HW, py = q / s.W, px = q - py * s.W;
            int ty = py + s.Pad - u * dil, tx = px + s.Pad - v * dil;
            if (ty < 0 || tx < 0) return 0f;
            int oy = ty / s.Stride, ox = tx / s.Stride;
            if (oy * s.Stride != ty || ox * s.Stride != tx || oy >= s.Ho || ox >= s.Wo) return 0f;
            return b[(((long)n * s.Cout + grp * g.GroupCout + o) * s.Ho + oy) * s.Wo + ox];
        }
        int row = p, col = j;
        if (g.Mode == (int)GpuMode.WeightGradient) { row = j; col = p; }
        return ColumnValue(s, b, grp * g.GroupCin, dil, row, col);
    }

    /// <summary>
    /// cols_g(x)[(c, u, v), (n, i, j)] = x[n, c0 + c, i*stride - pad + u*dil, j*stride - pad + v*dil], 0 in the padding
    /// (c0: the group's first input channel).
    /// </summary>
    static float ColumnValue(ConvArgs s, ArrayView<float> x, int c0, int dil, int row, int col)
    {
        int kk = s.K * s.K, c = row / kk, uv = row - c * kk, u = uv / s.K, v = uv - u * s.K;
        int n = col / s.HoWo, q = col - n * s.HoWo, i = q / s.Wo, j = q - i * s.Wo;
        int iy = i * s.Stride - s.Pad + u * dil, ix = j * s.Stride - s.Pad + v * dil;
        if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) return 0f;
        return x[(((long)n * s.Cin + c0 + c) * s.H + iy) * s.W + ix];
    }

    /// <summary>
    /// Writes group grp's C[i, j] = v through the mode's map. Forward: y[n, o=o0+i, pixel] = v (+ b[o], then ReLU).
    /// Input gradient: dx[n, c=c0+i, pixel] += v. Weight gradient: dW[o0+i, j] += v.
    /// </summary>
    static void Store(GemmArgs g, ArrayView<float> output, ArrayView<float> bias, int grp, int i, int j, float v)
    {
        var s = g.S;
        if (g.Mode == (int)GpuMode.Forward)
        {
            int n = j / s.HoWo, o = grp * g.GroupCout + i;
            if (g.HasBias != 0) v += bias[o];
            if (g.Relu != 0) v = XMath.Max(v, 0f);
            output[((long)n * s.Cout + o) * s.HoWo + (j - n * s.HoWo)] = v;
        }
        else if (g.Mode == (int)GpuMode.InputGradient)
        {
            int n = j / s.HW;
            output[((long)n * s.Cin + grp * g.GroupCin + i) * s.HW + (j - n * s.HW)] += v;
        }
        else output[((long)grp * g.M + i) * g.N + j] += v;
    }

    /// <summary>
    /// Pass 1 of the bias gradient: group (z, o) sums dy[:, o] over its chunk of the N*Ho*Wo values
    /// (consecutive threads read consecutive pixels) into partials[o * splits + z].
    /// </summary>
    static void BiasPartialKernel(ConvArgs s, int chunk, ArrayView<float> dy, ArrayView<float> partials)
    {
        var shared = SharedMemory.Allocate<float>(Reductions.MaxGroup);
        int z = Grid.IdxX, o = Grid.IdxY, t = Group.IdxX;
        long total = (long)s.N * s.HoWo, begin = (long)z * chunk, end = XMath.Min(total, begin + chunk);
        float sum = 0f;
        for (long e = begin + t; e < end; e += Group.DimX) sum += dy[Reductions.ChannelElement(s.Cout, s.HoWo, o, e)];
        sum = Reductions.GroupSum(shared, sum);
        if (t == 0) partials[(long)o * Grid.DimX + z] = sum;
    }

    /// <summary>Pass 2: db[o] += the partials of channel o in split order.</summary>
    static void BiasFinalKernel(Index1D o, int splits, ArrayView<float> partials, ArrayView<float> db)
    {
        float sum = 0f;
        for (int z = 0; z < splits; z++) sum += partials[(long)(int)o * splits + z];
        db[o] += sum;
    }
}
