namespace Chroma.Kernels.Harness;

/// <summary>
/// <see cref="BilinearResize"/> in the harness: x [N,C,H,W] -> y [N,C,Ho,Wo], antialiased when shrinking; backward
/// dx += the transposed resize of dy. Sizes: N, C, H, W, Ho, Wo. The same size is an exact copy (tolerance 0).
/// </summary>
public sealed class BilinearResizeOp : OpDeclaration
{
    public static readonly BilinearResizeOp Instance = new();

    public override string Name => "bilinear_resize";
    public override string Summary => "Bilinear resize (antialiased when shrinking): x [N,C,H,W] -> y [N,C,Ho,Wo]; backward dx = the transposed resize of dy";

    public static OpCase Case(int n, int c, int h, int w, int ho, int wo, string? name = null) =>
        OpCase.Of(name ?? $"{h}x{w}->{ho}x{wo}", ("N", n), ("C", c), ("H", h), ("W", w), ("Ho", ho), ("Wo", wo));

    // growing both axes, shrinking both by non-integer factors, the identity, mixed (grow H, shrink W; shrink H by an
    // integer factor, grow W), and large factors both ways
    static readonly OpCase[] s_checkCases =
    [
        Case(2, 3, 5, 7, 11, 9), Case(2, 3, 13, 11, 4, 5), Case(2, 3, 5, 7, 5, 7),
        Case(2, 3, 5, 13, 9, 4), Case(2, 3, 12, 4, 3, 10), Case(2, 3, 31, 3, 4, 17),
    ];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    public override string Describe(OpCase c) => $"{c["N"]}x{c["C"]}x{c["H"]}x{c["W"]} -> {c["Ho"]}x{c["Wo"]}";

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    sealed class Run : OpRun
    {
        readonly int _n, _c, _h, _w, _ho, _wo;
        readonly double[] _x, _dy;
        readonly Tensor _tx, _ty, _tdy, _tdx;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            (_n, _c, _h, _w, _ho, _wo) = (c["N"], c["C"], c["H"], c["W"], c["Ho"], c["Wo"]);
            _x = Values(seed, _n * _c * _h * _w);
            _dy = Values(seed + 1, _n * _c * _ho * _wo);
            _tx = Upload(_x, _n, _c, _h, _w);
            _ty = Filled(7, _n, _c, _ho, _wo); // forward must overwrite it
            _tdy = Upload(_dy, _n, _c, _ho, _wo);
            _tdx = Gradient(true, 0.5f, _n, _c, _h, _w)!; // backward accumulates
        }

        public override string Label => "resize";
        public override Tensor Output => _ty;
        public override double[] Dy => _dy;
        public override double[][] Inputs => [_x];
        public override double[] Reference(double[][] i) => BilinearResize.Reference.Forward(i[0], _n, _c, _h, _w, _ho, _wo);

        // weighted sums of a few inputs in [-1, 1); the same size is an exact copy
        public override Tolerance ForwardTolerance => _h == _ho && _w == _wo ? new(0, 0) : new(1e-5, 1e-6);

        public override void Forward() => BilinearResize.Forward(_tx, _ty);
        public override void Backward() => BilinearResize.Backward(_tdy, _tdx);
    }
}

/// <summary>
/// <see cref="UpsampleNearest"/> in the harness: x [N,C,H,W] -> y [N,C,2H,2W], each value copied to a 2x2 block
/// (exact: tolerance 0); backward dx += the sum of each 2x2 block of dy. Sizes: N, C, H, W.
/// </summary>
public sealed class UpsampleNearestOp : OpDeclaration
{
    public static readonly UpsampleNearestOp Instance = new();

    public override string Name => "upsample_nearest";
    public override string Summary => "Nearest upsampling by 2: x [N,C,H,W] -> y [N,C,2H,2W]; backward dx = the sum of each 2x2 block of dy";

    public static OpCase Case(string name, int n, int c, int h, int w) => OpCase.Of(name, ("N", n), ("C", c), ("H", h), ("W", w));

    // odd sizes; W = 19 also runs the CPU's 8-wide SIMD loops and their tails
    static readonly OpCase[] s_checkCases = [Case("n2c3h5w7", 2, 3, 5, 7), Case("n2c3h3w19", 2, 3, 3, 19)];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    sealed class Run : OpRun
    {
        readonly int _n, _c, _h, _w;
        readonly double[] _x, _dy;
        readonly Tensor _tx, _ty, _tdy, _tdx;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            (_n, _c, _h, _w) = (c["N"], c["C"], c["H"], c["W"]);
            _x = Values(seed, _n * _c * _h * _w);
            _dy = Values(seed + 1, _n * _c * 4 * _h * _w);
            _tx = Upload(_x, _n, _c, _h, _w);
            _ty = Filled(7, _n, _c, 2 * _h, 2 * _w); // forward must overwrite it
            _tdy = Upload(_dy, _n, _c, 2 * _h, 2 * _w);
            _tdx = Gradient(true, 0.5f, _n, _c, _h, _w)!; // backward accumulates
        }

        public override string Label => "upsample";
        public override Tensor Output => _ty;
        public override double[] Dy => _dy;
        public override double[][] Inputs => [_x];
        public override double[] Reference(double[][] i) => UpsampleNearest.Reference.Forward(i[0], _n, _c, _h, _w);
        public override Tolerance ForwardTolerance => new(0, 0); // copies are exact
        public override void Forward() => UpsampleNearest.Forward(_tx, _ty);
        public override void Backward() => UpsampleNearest.Backward(_tdy, _tdx);
    }
}

/// <summary>
/// <see cref="Fusion"/> (the fusion layer's input) in the harness: local [N,Cl,H,W] and global [N,Cg] -> y [N,Cl+Cg,H,W],
/// the global vector tiled over H x W after the local channels (exact: tolerance 0); backward dLocal += dy[:, :Cl],
/// dGlobal += dy[:, Cl:] summed over H x W, either skipped. Sizes: N, Cl, Cg, H, W, dlocal (1), dglobal (1).
/// </summary>
public sealed class FusionOp : OpDeclaration
{
    public static readonly FusionOp Instance = new();

    public override string Name => "fusion";
    public override string Summary => "Fusion input: local [N,Cl,H,W] ; global [N,Cg] tiled over H x W -> y [N,Cl+Cg,H,W]; backward dLocal, dGlobal";

    public static OpCase Case(string name, int n, int cl, int cg, int h, int w, bool localGradient = true, bool globalGradient = true) =>
        OpCase.Of(name, ("N", n), ("Cl", cl), ("Cg", cg), ("H", h), ("W", w), ("dlocal", localGradient ? 1 : 0), ("dglobal", globalGradient ? 1 : 0));

    // odd sizes; backward with either gradient skipped
    static readonly OpCase[] s_checkCases =
    [
        Case("n2l3g4h5w7", 2, 3, 4, 5, 7),
        Case("n2l3g4h5w7_global_only", 2, 3, 4, 5, 7, localGradient: false),
        Case("n2l3g4h5w7_local_only", 2, 3, 4, 5, 7, globalGradient: false),
    ];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    sealed class Run : OpRun
    {
        readonly int _n, _cl, _cg, _h, _w;
        readonly double[] _local, _global, _dy;
        readonly Tensor _tLocal, _tGlobal, _ty, _tdy;
        readonly Tensor? _tdLocal, _tdGlobal;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            (_n, _cl, _cg, _h, _w) = (c["N"], c["Cl"], c["Cg"], c["H"], c["W"]);
            _local = Values(seed, _n * _cl * _h * _w);
            _global = Values(seed + 1, _n * _cg);
            _dy = Values(seed + 2, _n * (_cl + _cg) * _h * _w);
            _tLocal = Upload(_local, _n, _cl, _h, _w);
            _tGlobal = Upload(_global, _n, _cg);
            _ty = Filled(7, _n, _cl + _cg, _h, _w); // forward must overwrite it
            _tdy = Upload(_dy, _n, _cl + _cg, _h, _w);
            // backward accumulates
            _tdLocal = Gradient(c.Flag("dlocal"), 0.5f, _n, _cl, _h, _w);
            _tdGlobal = Gradient(c.Flag("dglobal"), 0.5f, _n, _cg);
        }

        public override string Label => "fusion";
        public override Tensor Output => _ty;
        public override double[] Dy => _dy;
        public override double[][] Inputs => [_local, _global];
        public override double[] Reference(double[][] i) => Fusion.Reference.Forward(i[0], _n, _cl, _h, _w, i[1], _cg);
        public override Tolerance ForwardTolerance => new(0, 0); // copies are exact
        public override void Forward() => Fusion.Forward(_tLocal, _tGlobal, _ty);
        public override void Backward() => Fusion.Backward(_tdy, _tdLocal, _tdGlobal);
    }
}
