namespace Chroma.Kernels.Harness;

/// <summary>
/// <see cref="Conv2d"/> in the harness: x [N,Cin,H,W], w [Cout,Cin/groups,k,k], b [Cout] (bias 1) -> y [N,Cout,Ho,Wo];
/// backward gives dx (dx 1), dw and db. Sizes: N, Cin, H, W, Cout, k, stride, padding, dilation (1), groups (1),
/// bias (1), dx (1), relu (0; 1: the fused ReLU epilogue of inference, y = max(0, conv + b), forward-only), and on the CPU
/// path cpu_algorithm (absent: Conv2d's choice; else <see cref="Conv2d.CpuAlgorithm"/>'s value, forced for forward and the
/// input gradient) and cpu_kernel (<see cref="CpuKernelSize"/>). The check cases have odd H, W so the last row and
/// column are edge cases.
/// </summary>
public sealed class Conv2dOp : OpDeclaration
{
    public static readonly Conv2dOp Instance = new();

    public override string Name => "conv2d";
    public override string Summary => "Conv2d: x [N,Cin,H,W] * w [Cout,Cin/groups,k,k] + b -> y [N,Cout,Ho,Wo]; backward dx, dw, db";

    /// <summary>A convolution case; key order as in op_shapes.json.</summary>
    public static OpCase Case(string name, int n, int cin, int cout, int h, int w, int k, int stride, int pad, bool bias, bool inputGradient,
        int dilation = 1, int groups = 1) =>
        OpCase.Of(name, ("N", n), ("Cin", cin), ("H", h), ("W", w), ("Cout", cout), ("k", k), ("stride", stride), ("padding", pad),
            ("dilation", dilation), ("groups", groups), ("bias", bias ? 1 : 0), ("dx", inputGradient ? 1 : 0));

    static readonly OpCase[] s_checkCases =
    [
        Case("k3s1p1", 2, 3, 4, 7, 9, 3, 1, 1, bias: true, inputGradient: true),
        Case("k3s2p1", 2, 3, 4, 7, 9, 3, 2, 1, bias: true, inputGradient: true),
        Case("k1s1p0", 2, 3, 4, 7, 9, 1, 1, 0, bias: true, inputGradient: true),
        // stride 2 without padding leaves the last input row and column unread: their dx must stay 0
        Case("k3s2p0_no_bias_no_dx", 2, 3, 4, 7, 9, 3, 2, 0, bias: false, inputGradient: false),
        Case("k5s2p2", 2, 3, 4, 7, 9, 5, 2, 2, bias: true, inputGradient: true),
        // rows wide enough for the CPU's vectorized stride-2 gather (8 outputs from 16 inputs) plus a scalar tail
        Case("k3s2p1_wide", 1, 2, 3, 5, 41, 3, 2, 1, bias: true, inputGradient: true),
        // dilation: "same" padding for a 3x3 kernel dilated by 2; stride 2 with dilation 3 (taps 3 apart, outputs 2 apart)
        Case("k3s1p2d2", 2, 3, 4, 9, 11, 3, 1, 2, bias: true, inputGradient: true, dilation: 2),
        Case("k3s2p1d3", 2, 3, 4, 11, 13, 3, 2, 1, bias: true, inputGradient: true, dilation: 3),
        // padding 0 with dilation and stride 2: the last input column is never read, so its dx must stay 0
        Case("k3s2p0d2_no_bias", 2, 3, 4, 9, 12, 3, 2, 0, bias: false, inputGradient: true, dilation: 2),
        // groups: 2 groups of 2 -> 3 channels; 4 groups of 2 -> 1 channel, dilated, stride 2, padding 2
        Case("k3s1p1g2", 2, 4, 6, 7, 9, 3, 1, 1, bias: true, inputGradient: true, groups: 2),
        Case("k3s2p2d2g4", 2, 8, 4, 9, 7, 3, 2, 2, bias: true, inputGradient: true, dilation: 2, groups: 4),
        // depthwise (groups = Cin): channel multiplier 2, dilated; and a 5x5 dilated kernel with padding 0, multiplier 1
        Case("k3s1p2d2_depthwise", 2, 4, 8, 7, 9, 3, 1, 2, bias: true, inputGradient: true, dilation: 2, groups: 4),
        Case("k5s1p0d2_depthwise", 1, 3, 3, 11, 13, 5, 1, 0, bias: true, inputGradient: true, dilation: 2, groups: 3),
        // grouped 1x1; the wide one (575 pixels, above CpuMinColumns) takes the CPU's no-im2col pointwise path per group
        Case("k1s1p0g2", 2, 4, 6, 7, 9, 1, 1, 0, bias: true, inputGradient: true, groups: 2),
        Case("k1s1p0g2_wide", 1, 4, 6, 23, 25, 1, 1, 0, bias: true, inputGradient: true, groups: 2),
    ];

    /// <summary>The size that forces a CPU algorithm (<see cref="Conv2d.CpuAlgorithm"/>'s value).</summary>
    public const string CpuAlgorithmKey = "cpu_algorithm";

    /// <summary>The case with the CPU algorithm forced, so named ("relu.odd_p1 Winograd4x4").</summary>
    internal static OpCase WithCpuAlgorithm(OpCase c, Conv2d.CpuAlgorithm algorithm) => c.With(CpuAlgorithmKey, (int)algorithm, algorithm.ToString());

    internal static Conv2d.CpuAlgorithm? CpuAlgorithmOf(OpCase c) =>
        c.Sizes.TryGetValue(CpuAlgorithmKey, out int a) ? (Conv2d.CpuAlgorithm)a : null;

    /// <summary>A 3x3, stride-1 case run with Winograd F(4x4, 3x3) forced on the CPU.</summary>
    static OpCase Winograd(string name, int n, int cin, int cout, int h, int w, int pad) =>
        Renamed($"winograd.{name}", WithCpuAlgorithm(Case(name, n, cin, cout, h, w, 3, 1, pad, bias: true, inputGradient: true), Conv2d.CpuAlgorithm.Winograd4x4));

    /// <summary>A case run with the direct packed product forced on the CPU (the forward of every non-Winograd layer).</summary>
    static OpCase Direct(string name, OpCase c) => Renamed($"direct.{name}", WithCpuAlgorithm(c, Conv2d.CpuAlgorithm.DirectGemm));

    static OpCase Renamed(string name, OpCase c) => new(name, c.Sizes);

    /// <summary>
    /// The cases that force a CPU path (tests run them on every vector width): Winograd F(4x4, 3x3) on its edges (maps not a
    /// multiple of the 4x4 tile, a partial last tile panel, output channels not a multiple of the micro-tile's 6 rows, more
    /// than one 256-channel k block, every padding it takes; one-pixel maps; rows of 38 tiles: the AVX-512 gather's 16-tile
    /// groups, then the scalar tail near the right edge), and the direct packed product (more than one k block, Cin*K*K over
    /// 192; Cout not a multiple of the 6-row micro-tile; a short last panel of output pixels; padding on every side; two groups
    /// of 24 channels, 216-deep columns, two k blocks each, 7 outputs per group, dilation 2; depthwise with dilation 3, padding 3).
    /// The fused-ReLU case runs on every path and CPU algorithm.
    /// </summary>
    static readonly OpCase[] s_cpuPathCases =
    [
        Winograd("odd_p1", 3, 5, 7, 11, 13, 1),
        Winograd("odd_p0", 2, 3, 13, 9, 10, 0),
        Winograd("odd_p2", 1, 4, 5, 7, 6, 2),
        Winograd("one_pixel_maps", 17, 2, 3, 1, 1, 1),
        Winograd("two_k_blocks", 1, 300, 7, 5, 6, 1),
        Winograd("wide_rows", 2, 3, 5, 9, 150, 1),
        Direct("k3s2p1_blocks", Case("", 2, 30, 13, 17, 23, 3, 2, 1, bias: true, inputGradient: true)),
        Direct("k1s1p0_blocks", Case("", 1, 200, 7, 5, 9, 1, 1, 0, bias: true, inputGradient: true)),
        Direct("k5s2p2", Case("", 2, 3, 4, 7, 9, 5, 2, 2, bias: true, inputGradient: true)),
        Direct("k3s2p2d2g2_blocks", Case("", 2, 48, 14, 17, 23, 3, 2, 2, bias: true, inputGradient: true, dilation: 2, groups: 2)),
        Direct("k3s1p3d3_depthwise", Case("", 1, 5, 10, 13, 11, 3, 1, 3, bias: true, inputGradient: true, dilation: 3, groups: 5)),
        Renamed("relu.odd_p1", Case("", 3, 5, 7, 11, 13, 3, 1, 1, bias: true, inputGradient: true).With("relu", 1)),
    ];

    static readonly OpCase[] s_allCheckCases = [.. s_checkCases, .. s_cpuPathCases];

    public override IReadOnlyList<OpCase> CheckCases => s_allCheckCases;

    /// <summary>The cases every path runs with Conv2d's own choices (not the forced CPU paths, not the forward-only ReLU).</summary>
    public static IEnumerable<OpCase> PlainCases => s_checkCases;

    /// <summary>"4x16x112x112 -> 32 k3 s1 p1" (plus d, g, "no bias", "no dx", "relu" and a forced CPU algorithm where they apply).</summary>
    public override string Describe(OpCase c)
    {
        var s = Shape.Of(c);
        return $"{s.N}x{s.Cin}x{s.H}x{s.W} -> {s.Cout} k{s.K} s{s.Stride} p{s.Pad}" + (s.Dilation > 1 ? $" d{s.Dilation}" : "") +
            (s.Groups > 1 ? $" g{s.Groups}" : "") + (s.Bias ? "" : " no bias") + (s.InputGradient ? "" : " no dx") + (s.Relu ? " relu" : "") +
            (CpuAlgorithmOf(c) is { } a ? $" cpu {a}" : "");
    }

    public override double ForwardMultiplyAdds(OpCase c)
    {
        var s = Shape.Of(c);
        return (double)s.YCount * s.GroupCin * s.K * s.K;
    }

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    /// <summary>A convolution case's sizes, typed, with the shapes and the float64 reference they give.</summary>
    public sealed record Shape(int N, int Cin, int Cout, int H, int W, int K, int Stride, int Pad, bool Bias, bool InputGradient,
        int Dilation = 1, int Groups = 1, bool Relu = false)
    {
        public static Shape Of(OpCase c) => new(c["N"], c["Cin"], c["Cout"], c["H"], c["W"], c["k"], c["stride"], c["padding"],
            c.Flag("bias"), c.Flag("dx"), c.Get("dilation", 1), c.Get("groups", 1), c.Flag("relu", false));

        public int Ho => Conv2d.OutputSize(H, K, Stride, Pad, Dilation);
        public int Wo => Conv2d.OutputSize(W, K, Stride, Pad, Dilation);
        /// <summary>Input channels one output channel reads (the weight's second dimension).</summary>
        public int GroupCin => Cin / Groups;
        public int GroupCout => Cout / Groups;
        public int[] XShape => [N, Cin, H, W];
        public int[] WShape => [Cout, GroupCin, K, K];
        public int[] YShape => [N, Cout, Ho, Wo];
        public int XCount => N * Cin * H * W;
        public int WCount => Cout * GroupCin * K * K;
        public int YCount => N * Cout * Ho * Wo;

        public Conv2d.ConvArgs Args => new(N, Cin, H, W, Cout, K, Stride, Pad, Ho, Wo, 0, N, 0, Ho, Dilation, Groups);

        public double[] Reference(double[] x, double[] w, double[]? b)
        {
            var y = Conv2d.Reference.Forward(x, N, Cin, H, W, w, b, Cout, K, Stride, Pad, Dilation, Groups);
            return Relu ? y.Select(v => Math.Max(v, 0)).ToArray() : y;
        }

        public (double[] Dx, double[] Dw, double[] Db) ReferenceBackward(double[] x, double[] w, double[] dy) =>
            Conv2d.Reference.Backward(x, N, Cin, H, W, w, dy, Cout, K, Stride, Pad, Dilation, Groups);
    }

    sealed class Run : OpRun
    {
        readonly Shape _s;
        readonly Conv2d.CpuAlgorithm? _algorithm;
        readonly Gemm.CpuKernel _kernel;
        readonly double[] _x, _w, _b, _dy;
        readonly Tensor _tx, _tw, _ty, _tdy;
        readonly Tensor? _tb, _tdx, _tdw, _tdb;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            _s = Shape.Of(c);
            (_algorithm, _kernel) = (CpuAlgorithmOf(c), CpuKernelSize.Of(c));
            _x = Values(seed, _s.XCount);
            _w = Values(seed + 1, _s.WCount);
            _b = Values(seed + 2, _s.Cout);
            _dy = Values(seed + 3, _s.YCount);
            _tx = Upload(_x, _s.XShape);
            _tw = Upload(_w, _s.WShape);
            _tb = _s.Bias ? Upload(_b, _s.Cout) : null;
            _ty = Filled(7, _s.YShape); // forward must overwrite it
            _tdy = Upload(_dy, _s.YShape);
            // backward accumulates: every gradient starts at a known non-zero value, taken off when read
            _tdx = Gradient(_s.InputGradient, 0.5f, _s.XShape);
            _tdw = Gradient(true, -0.25f, _s.WShape);
            _tdb = Gradient(_s.Bias, 0.75f, _s.Cout);
        }

        public override string Label => "conv";
        public override Tensor Output => _ty;
        public override double[] Dy => _dy;
        public override double[][] Inputs => _s.Bias ? [_x, _w, _b] : [_x, _w];
        public override double[] Reference(double[][] i) => _s.Reference(i[0], i[1], _s.Bias ? i[2] : null);

        /// <summary>On the CPU path with an algorithm or a width forced (else Conv2d's public overloads decide).</summary>
        bool Forced => Device is not GpuDevice && (_algorithm is not null || _kernel != Gemm.CpuKernel.Auto);

        /// <summary>
        /// Float32 sums of Cin/G*K*K products of values in [-1, 1]: 1e-5 absolute up to 300 of them, 2e-6 each beyond.
        /// Winograd's transforms add a few ulps of the largest partial sums (WinogradTests.Float32_error_of_the_tile_size).
        /// </summary>
        public override Tolerance ForwardTolerance
        {
            get
            {
                if (_algorithm == Conv2d.CpuAlgorithm.Winograd4x4 && Device is not GpuDevice) return new(1e-4, 2e-5 * Math.Sqrt(_s.Cin));
                int terms = _s.GroupCin * _s.K * _s.K;
                return new(1e-5, terms > 300 ? 2e-6 * terms : 1e-5);
            }
        }

        public override bool HasBackward => !_s.Relu;

        public override void Forward()
        {
            if (Forced) Conv2d.Forward(_tx, _tw, _tb, _ty, _s.Stride, _s.Pad, _algorithm, _kernel, _s.Relu, _s.Dilation, _s.Groups);
            else if (_s.Dilation == 1 && _s.Groups == 1) Conv2d.Forward(_tx, _tw, _tb, _ty, _s.Stride, _s.Pad, _s.Relu);
            else Conv2d.Forward(_tx, _tw, _tb, _ty, _s.Stride, _s.Pad, _s.Dilation, _s.Groups, _s.Relu);
        }

        public override void Backward()
        {
            if (Forced) Conv2d.Backward(_tx, _tw, _tdy, _tdx, _tdw!, _tdb, _s.Stride, _s.Pad, _algorithm, _kernel, _s.Dilation, _s.Groups);
            else if (_s.Dilation == 1 && _s.Groups == 1) Conv2d.Backward(_tx, _tw, _tdy, _tdx, _tdw!, _tdb, _s.Stride, _s.Pad);
            else Conv2d.Backward(_tx, _tw, _tdy, _tdx, _tdw!, _tdb, _s.Stride, _s.Pad, _s.Dilation, _s.Groups);
        }

        public override bool HasReferenceBackward => true;

        // the Winograd cases two_k_blocks and wide_rows are beyond it: the backward reference alone checks them
        public override bool CentralDifferences => CentralDifferencesWithin((double)_s.YCount * _s.GroupCin * _s.K * _s.K);

        /// <summary>Against the float64 backward reference: float32 sums of Cout/G*K*K (dx) and N*Ho*Wo (dw, db) products.</summary>
        public override string? ReferenceBackwardMismatch(float[]?[] g)
        {
            var r = _s.ReferenceBackward(_x, _w, _dy);
            string what = $"conv {{0}} {Case} vs reference backward";
            return (g[0] is { } dx ? Closeness.Mismatch(string.Format(what, "dx"), r.Dx, dx, 1e-5, 2e-6 * _s.GroupCout * _s.K * _s.K) : null)
                ?? Closeness.Mismatch(string.Format(what, "dw"), r.Dw, g[1]!, 1e-5, 2e-6 * _s.N * _s.Ho * _s.Wo)
                ?? (_s.Bias ? Closeness.Mismatch(string.Format(what, "db"), r.Db, g[2]!, 1e-5, 2e-6 * _s.N * _s.Ho * _s.Wo) : null);
        }
    }
}
