using ILGPU.Runtime;

namespace Chroma.Kernels.Harness;

/// <summary>
/// <see cref="Gemm"/> in the harness: C [M,N] = alpha op(A) op(B) + beta C, with op(A) [M,K] stored [M,K] or
/// (transA) [K,M] and op(B) [K,N] stored [K,N] or (transB) [N,K]. Backward is two more products, each in its
/// operand's stored layout: dA += alpha dC op(B)^T, dB += alpha op(A)^T dC (for C = W cols(x), a convolution's
/// forward, these are its weight-gradient and input-gradient products); the gradient of the input C (beta dC)
/// is not computed. Sizes: M, N, K, transA (0), transB (0), alpha% and beta% (alpha and beta in hundredths;
/// 100 and 0), cpu_kernel (<see cref="CpuKernelSize"/>), gpu_kernel (0: <see cref="Gemm.Gpu(GpuDevice, bool, bool, int, int, int, float, ILGPU.ArrayView{float}, int, ILGPU.ArrayView{float}, int, float, ILGPU.ArrayView{float}, int)"/>'s
/// plan; 1 naive, 2 tiled 4x4, 3 tiled 8x8, forced).
/// </summary>
public sealed class GemmOp : OpDeclaration
{
    public static readonly GemmOp Instance = new();

    public override string Name => "gemm";
    public override string Summary => "GEMM: C [M,N] = alpha op(A) op(B) + beta C, op = transpose or not; backward dA, dB as two more products";

    /// <summary>A product case; "nn", "tn", "nt", "tt" in its name say which operands are transposed (BLAS's N and T).</summary>
    public static OpCase Case(string name, int m, int n, int k, bool transA = false, bool transB = false, int alphaPercent = 100, int betaPercent = 0) =>
        OpCase.Of(name, ("M", m), ("N", n), ("K", k), ("transA", transA ? 1 : 0), ("transB", transB ? 1 : 0),
            ("alpha%", alphaPercent), ("beta%", betaPercent));

    /// <summary>The GPU kernels gpu_kernel forces, by number (Gemm.Gpu.cs: kernel 1, 2, 3).</summary>
    public static readonly IReadOnlyList<string> GpuKernels = ["planned", "naive", "tiled 4x4", "tiled 8x8"];

    /// <summary>The case with one GPU kernel forced, so named ("kernels.37x45x21.nn tiled 8x8").</summary>
    public static OpCase WithGpuKernel(OpCase c, int kernel) => c.With("gpu_kernel", kernel, GpuKernels[kernel]);

    /// <summary>The four transpose combinations of one shape: name.nn, name.tn, name.nt, name.tt.</summary>
    static IEnumerable<OpCase> Transposed(string name, int m, int n, int k, int alphaPercent, int betaPercent) =>
        from ta in new[] { false, true }
        from tb in new[] { false, true }
        select Case($"{name}.{(ta ? 't' : 'n')}{(tb ? 't' : 'n')}", m, n, k, ta, tb, alphaPercent, betaPercent);

    static readonly OpCase[] s_checkCases =
    [
        // odd sizes, alpha and beta both away from 1 and 0
        .. Transposed("small.13x21x17", 13, 21, 17, 75, 50),
        // partial tiles: across the simulator's 16 and CUDA's 64-wide GPU tiles and TileK = 16 (37x70x33), and the
        // CPU's 6-row micro-tile, its vector columns and two 192/256-deep k blocks (67x45x300)
        .. Transposed("tiles.37x70x33", 37, 70, 33, 125, -50),
        .. Transposed("tiles.67x45x300", 67, 45, 300, 125, -50),
        // beta 0 must overwrite C without reading it: C starts as NaN (the GPU's one k stage, the CPU's two k blocks)
        .. Transposed("beta0.19x23x18", 19, 23, 18, 200, 0),
        .. Transposed("beta0.19x23x260", 19, 23, 260, 200, 0),
        Case("beta1.11x26x40.nt", 11, 26, 40, transB: true, alphaPercent: -100, betaPercent: 100),
        // K = 0: the product is empty, so C = beta C (zeros for beta 0, even over NaN)
        Case("empty.5x7x0.nn", 5, 7, 0, betaPercent: 300),
        Case("empty_beta0.5x7x0.nn", 5, 7, 0),
        // the CPU blocking (MR = 6, NR = 2 vectors, KC = 192/256, MC <= 144, NC = 4096) and its parallel split
        // (products above 96^3 multiply-adds; along k when C is small), one dimension stressed at a time, the rest
        // small so that the scalar kernel is quick too: smaller than one micro-tile; partial tiles in m and n, two
        // k blocks; several A blocks (m > MC), a partial last one; two B blocks (n > NC); three k blocks (beta only
        // with the first); parallel, two A blocks sharing each packed B block; small C, long k (summed partial
        // products); parallel with few rows (work items split the columns)
        .. Blocks(1, 1, 1), .. Blocks(5, 3, 2), .. Blocks(67, 45, 300), .. Blocks(301, 19, 11), .. Blocks(7, 4131, 3),
        .. Blocks(9, 35, 700), .. Blocks(150, 70, 300), .. Blocks(7, 20, 8000), .. Blocks(8, 300, 400),
        // every GPU kernel (gpu_kernel 1, 2, 3 forced by the tests) with partial tiles for both tiled ones (16 and 32 on the simulator)
        .. Transposed("kernels.37x45x21", 37, 45, 21, 50, -200),
    ];

    static IEnumerable<OpCase> Blocks(int m, int n, int k) => Transposed($"blocks.{m}x{n}x{k}", m, n, k, 75, -150);

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    /// <summary>"128x50176x576 A B^T" (plus alpha and beta where they are not 1 and 0).</summary>
    public override string Describe(OpCase c)
    {
        var s = Shape.Of(c);
        return $"{s.M}x{s.N}x{s.K} {(s.TransA ? "A^T" : "A")} {(s.TransB ? "B^T" : "B")}" +
            (s.Alpha != 1 ? $" alpha {s.Alpha}" : "") + (s.Beta != 0 ? $" beta {s.Beta}" : "");
    }

    public override double ForwardMultiplyAdds(OpCase c) => (double)c["M"] * c["N"] * c["K"];

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    /// <summary>A product case's sizes, typed, with the float64 references they give.</summary>
    internal sealed record Shape(int M, int N, int K, bool TransA, bool TransB, float Alpha, float Beta, Gemm.CpuKernel CpuKernel, int GpuKernel)
    {
        public static Shape Of(OpCase c) => new(c["M"], c["N"], c["K"], c.Flag("transA", false), c.Flag("transB", false),
            c.Get("alpha%", 100) / 100f, c.Get("beta%", 0) / 100f, CpuKernelSize.Of(c), c.Get("gpu_kernel", 0));

        public int[] AShape => TransA ? [K, M] : [M, K];
        public int[] BShape => TransB ? [N, K] : [K, N];

        /// <summary>alpha op(A) op(B) + beta C0 (C0 null: beta 0, C not read).</summary>
        public double[] Reference(double[] a, double[] b, double[]? c0) =>
            Gemm.Reference.Multiply(TransA, TransB, M, N, K, Alpha, a, b, Beta, c0 ?? new double[M * N]);

        /// <summary>dA and dB in A's and B's stored layouts for upstream gradient dC [M,N].</summary>
        public (double[] Da, double[] Db) ReferenceBackward(double[] a, double[] b, double[] dc) => (
            TransA ? Gemm.Reference.Multiply(TransB, true, K, M, N, Alpha, b, dc, 0, new double[K * M])
                   : Gemm.Reference.Multiply(false, !TransB, M, K, N, Alpha, dc, b, 0, new double[M * K]),
            TransB ? Gemm.Reference.Multiply(true, TransA, N, K, M, Alpha, dc, a, 0, new double[N * K])
                   : Gemm.Reference.Multiply(!TransA, false, K, N, M, Alpha, a, dc, 0, new double[K * N]));

        /// <summary>Forward: float32 sums of K products; K = 0 (C = beta C) is one rounding.</summary>
        public Tolerance Tolerance => K == 0 ? new(1e-6, 0) : SumOf(K);

        /// <summary>
        /// A float32 sum of <paramref name="terms"/> products of values in [-1, 1): 2e-6 per term absolute, at most
        /// 1e-5 up to 300 terms (the GEMM tests' bounds before the harness, the stricter where they differed).
        /// </summary>
        public static Tolerance SumOf(int terms) => new(1e-5, terms > 300 ? 2e-6 * terms : Math.Min(1e-5, 2e-6 * terms));
    }

    sealed class Run : OpRun
    {
        readonly Shape _s;
        readonly double[] _a, _b, _c0, _dc;
        readonly Tensor _ta, _tb, _tc, _tdc;
        readonly Tensor? _tc0, _tda, _tdb;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            _s = Shape.Of(c);
            _a = Values(seed, _s.M * _s.K);
            _b = Values(seed + 1, _s.K * _s.N);
            _c0 = Values(seed + 2, _s.M * _s.N);
            _dc = Values(seed + 3, _s.M * _s.N);
            _ta = Upload(_a, _s.AShape);
            _tb = Upload(_b, _s.BShape);
            // beta 0: C is not an input, and starts as NaN, which forward must not read; else C0, restored before each forward
            _tc0 = _s.Beta != 0 ? Upload(_c0, _s.M, _s.N) : null;
            _tc = Filled(double.NaN, _s.M, _s.N);
            _tdc = Upload(_dc, _s.M, _s.N);
            _tda = Gradient(true, 0.5f, _s.AShape);
            _tdb = Gradient(true, -0.25f, _s.BShape);
            if (_tc0 is not null) Gradient(false, 0, _s.M, _s.N); // beta dC is not computed
        }

        public override string Label => "gemm";
        public override Tensor Output => _tc;
        public override double[] Dy => _dc;
        public override double[][] Inputs => _tc0 is not null ? [_a, _b, _c0] : [_a, _b];
        public override double[] Reference(double[][] i) => _s.Reference(i[0], i[1], _tc0 is not null ? i[2] : null);
        public override Tolerance ForwardTolerance => _s.Tolerance;

        public override void Forward()
        {
            if (_tc0 is not null) Device.Copy(_tc0, _tc);
            Product(_ta, _tb, _tc, _s.TransA, _s.TransB, _s.Alpha, _s.Beta);
        }

        public override void Backward()
        {
            if (_s.TransA) Product(_tb, _tdc, _tda!, _s.TransB, true, _s.Alpha, 1f);
            else Product(_tdc, _tb, _tda!, false, !_s.TransB, _s.Alpha, 1f);
            if (_s.TransB) Product(_tdc, _ta, _tdb!, true, _s.TransA, _s.Alpha, 1f);
            else Product(_ta, _tdc, _tdb!, !_s.TransA, false, _s.Alpha, 1f);
        }

        /// <summary>c = alpha op(a) op(b) + beta c on the case's forced kernel if any, else through <see cref="Gemm.Multiply"/>.</summary>
        void Product(Tensor a, Tensor b, Tensor c, bool transA, bool transB, float alpha, float beta)
        {
            int m = c.Dim(0), n = c.Dim(1), k = transA ? a.Dim(0) : a.Dim(1);
            if (c.Device is GpuDevice gpu && _s.GpuKernel != 0)
            {
                var kernel = _s.GpuKernel switch
                {
                    1 => (GpuProduct)Gemm.GpuNaive,
                    2 => Gemm.GpuTiled4,
                    3 => Gemm.GpuTiled8,
                    _ => throw new ArgumentException($"gemm case {Case}: gpu_kernel {_s.GpuKernel} is not 0 to 3."),
                };
                kernel(gpu, transA, transB, m, n, k, alpha, a.View, a.Dim(1), b.View, b.Dim(1), beta, c.View, n);
            }
            else if (c.Device is not GpuDevice && _s.CpuKernel != Gemm.CpuKernel.Auto)
                Gemm.Cpu(_s.CpuKernel, transA, transB, m, n, k, alpha, a.HostArray, a.Offset, a.Dim(1), b.HostArray, b.Offset, b.Dim(1),
                    beta, c.HostArray, c.Offset, n);
            else Gemm.Multiply(a, b, c, transA, transB, alpha, beta);
        }

        delegate void GpuProduct(GpuDevice gpu, bool transA, bool transB, int m, int n, int k, float alpha,
            ILGPU.ArrayView<float> a, int lda, ILGPU.ArrayView<float> b, int ldb, float beta, ILGPU.ArrayView<float> c, int ldc);

        // dA sums N products, dB sums M, each of values in [-1, 1)
        public override bool HasReferenceBackward => true;

        public override string? ReferenceBackwardMismatch(float[]?[] g)
        {
            var (da, db) = _s.ReferenceBackward(_a, _b, _dc);
            string what = $"gemm {{0}} {Case} vs reference backward";
            Tolerance ta = Shape.SumOf(_s.N), tb = Shape.SumOf(_s.M);
            return Closeness.Mismatch(string.Format(what, "dA"), da, g[0]!, ta.Rtol, ta.Atol)
                ?? Closeness.Mismatch(string.Format(what, "dB"), db, g[1]!, tb.Rtol, tb.Atol);
        }

        public override bool CentralDifferences => CentralDifferencesWithin((double)_s.M * _s.N * _s.K);
    }
}
