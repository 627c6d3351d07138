namespace Chroma.Kernels.Harness;

/// <summary>
/// <see cref="Linear"/> (a GEMM plus bias) in the harness: x [N,In], W [Out,In], b [Out] (bias 1) -> y [N,Out];
/// backward dx, dW, db. Sizes: N, In, Out, bias (1).
/// </summary>
public sealed class LinearOp : OpDeclaration
{
    public static readonly LinearOp Instance = new();

    public override string Name => "linear";
    public override string Summary => "Linear (GEMM + bias): y [N,Out] = x [N,In] W^T + b; backward dx, dW, db";

    public static OpCase Case(string name, int n, int inFeatures, int outFeatures, bool bias) =>
        OpCase.Of(name, ("N", n), ("In", inFeatures), ("Out", outFeatures), ("bias", bias ? 1 : 0));

    // odd sizes catch indexing errors
    static readonly OpCase[] s_checkCases = [Case("n3_in17_out11", 3, 17, 11, bias: true), Case("n3_in17_out11_no_bias", 3, 17, 11, bias: false)];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    public override double ForwardMultiplyAdds(OpCase c) => (double)c["N"] * c["In"] * c["Out"];

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    sealed class Run : OpRun
    {
        readonly int _n, _in, _out;
        readonly bool _bias;
        readonly double[] _x, _w, _b, _dy;
        readonly Tensor _tx, _tw, _ty, _tdy;
        readonly Tensor? _tb, _tdx, _tdw, _tdb;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            (_n, _in, _out, _bias) = (c["N"], c["In"], c["Out"], c.Flag("bias"));
            _x = Values(seed, _n * _in);
            _w = Values(seed + 1, _out * _in);
            _b = Values(seed + 2, _out);
            _dy = Values(seed + 3, _n * _out);
            _tx = Upload(_x, _n, _in);
            _tw = Upload(_w, _out, _in);
            _tb = _bias ? Upload(_b, _out) : null;
            _ty = Filled(3, _n, _out); // y starts non-zero: forward must overwrite it, not accumulate
            _tdy = Upload(_dy, _n, _out);
            // backward accumulates: start every gradient at 0.5 and take it off afterwards
            _tdx = Gradient(true, 0.5f, _n, _in);
            _tdw = Gradient(true, 0.5f, _out, _in);
            _tdb = Gradient(_bias, 0.5f, _out);
        }

        public override string Label => "linear";
        public override Tensor Output => _ty;
        public override double[] Dy => _dy;
        public override double[][] Inputs => _bias ? [_x, _w, _b] : [_x, _w];
        public override double[] Reference(double[][] i) => Linear.Reference.Forward(i[0], _n, _in, i[1], _bias ? i[2] : null, _out);
        public override void Forward() => Linear.Forward(_tx, _tw, _tb, _ty);
        public override void Backward() => Linear.Backward(_tx, _tw, _tdy, _tdx, _tdw!, _tdb);
    }
}
