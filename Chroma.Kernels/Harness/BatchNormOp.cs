namespace Chroma.Kernels.Harness;

/// <summary>
/// Training-mode <see cref="BatchNorm"/> in the harness: x [N,C,H,W], gamma, beta [C] -> y [N,C,H,W] with the
/// batch's statistics (running statistics updated, saved mean and 1/std kept for backward); backward dx,
/// dgamma, dbeta. Sizes: N, C, H, W.
/// </summary>
public sealed class BatchNormOp : OpDeclaration
{
    public static readonly BatchNormOp Instance = new();

    public override string Name => "batchnorm";
    public override string Summary => "BatchNorm (training): y [N,C,H,W] = gamma (x - mean) / sqrt(var + eps) + beta per channel; backward dx, dgamma, dbeta";

    public static OpCase Case(string name, int n, int c, int h, int w) => OpCase.Of(name, ("N", n), ("C", c), ("H", h), ("W", w));

    // odd sizes; a 1x1 map (BatchNorm1d's [N, C] layout) with a batch of 5
    static readonly OpCase[] s_checkCases = [Case("n2c3h5w7", 2, 3, 5, 7), Case("n5c4h1w1", 5, 4, 1, 1)];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    sealed class Run : OpRun
    {
        readonly int _n, _c, _s;
        readonly int[] _shape;
        readonly double[] _x, _gamma, _beta, _dy;
        readonly Tensor _tx, _tg, _tb, _rm, _rv, _ty, _mean, _invStd, _tdy, _tdx, _tdg, _tdb;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            (_n, _c, _s) = (c["N"], c["C"], c["H"] * c["W"]);
            _shape = [_n, _c, c["H"], c["W"]];
            int count = _n * _c * _s;
            // values with a mean away from 0 (2 +- 3), as activations are; gamma away from 0
            _x = Values(seed, count, -1, 5);
            _gamma = Values(seed + 1, _c, 0.5, 1.5);
            _beta = Values(seed + 2, _c);
            _dy = Values(seed + 3, count);
            _tx = Upload(_x, _shape);
            _tg = Upload(_gamma, _c);
            _tb = Upload(_beta, _c);
            _rm = Filled(0, _c);
            _rv = Filled(1, _c);
            _ty = Filled(7, _shape);
            _mean = Filled(0, _c);
            _invStd = Filled(0, _c);
            _tdy = Upload(_dy, _shape);
            _tdx = Gradient(true, 0.5f, _shape)!;
            _tdg = Gradient(true, -0.25f, _c)!;
            _tdb = Gradient(true, 0.75f, _c)!;
        }

        public override string Label => "batchnorm";
        public override Tensor Output => _ty;
        public override double[] Dy => _dy;
        public override double[][] Inputs => [_x, _gamma, _beta];
        public override double[] Reference(double[][] i) => BatchNorm.Reference.ForwardTraining(i[0], _n, _c, _s, i[1], i[2], BatchNorm.DefaultEps);
        // |y| is a few units; float32 normalization leaves ~1e-5 absolute error
        public override Tolerance ForwardTolerance => new(1e-5, 5e-5);
        public override void Forward() => BatchNorm.ForwardTraining(_tx, _tg, _tb, _rm, _rv, _ty, _mean, _invStd);
        public override void Backward() => BatchNorm.Backward(_tx, _tg, _mean, _invStd, _tdy, _tdx, _tdg, _tdb);
    }
}
