namespace Chroma.Kernels.Harness;

/// <summary>
/// An element-wise activation in the harness: x [N,C,H,W] -> y, backward dx from the output y. Sizes: N, C, H, W,
/// and "range" (x uniform in [-range, range]; default 1).
/// </summary>
public abstract class ElementwiseOp : OpDeclaration
{
    public static OpCase Case(string name, int n, int c, int h, int w, int range = 1) =>
        OpCase.Of(name, ("N", n), ("C", c), ("H", h), ("W", w), ("range", range));

    /// <summary>y = f(x) on the device.</summary>
    protected abstract void Forward(Tensor x, Tensor y);

    /// <summary>dx += f'(x) dy on the device, from y = f(x).</summary>
    protected abstract void Backward(Tensor y, Tensor dy, Tensor dx);

    protected abstract double[] Reference(double[] x);

    /// <summary>Where the reference has no derivative (ReLU at 0), inputs are moved away from it.</summary>
    protected virtual double[] AwayFromKinks(double[] x) => x;

    protected virtual Tolerance ForwardTolerance => new(1e-6, 1e-7);

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(this, device, c, seed);

    sealed class Run : OpRun
    {
        readonly ElementwiseOp _op;
        readonly double[] _x, _dy;
        readonly Tensor _tx, _ty, _tdy, _tdx;

        public Run(ElementwiseOp op, Device device, OpCase c, int seed) : base(device, c, seed)
        {
            _op = op;
            int[] shape = [c["N"], c["C"], c["H"], c["W"]];
            int count = Tensor.ShapeLength(shape), range = c.Get("range", 1);
            _x = op.AwayFromKinks(Values(seed, count, -range, range));
            _dy = Values(seed + 1, count);
            _tx = Upload(_x, shape);
            _ty = Filled(7, shape);
            _tdy = Upload(_dy, shape);
            _tdx = Gradient(true, 0.5f, shape)!; // backward accumulates
        }

        public override string Label => _op.Name;
        public override Tensor Output => _ty;
        public override double[] Dy => _dy;
        public override double[][] Inputs => [_x];
        public override double[] Reference(double[][] i) => _op.Reference(i[0]);
        public override Tolerance ForwardTolerance => _op.ForwardTolerance;
        public override void Forward() => _op.Forward(_tx, _ty);
        public override void Backward() => _op.Backward(_ty, _tdy, _tdx);
    }
}

/// <summary><see cref="Sigmoid"/>: y = 1 / (1 + exp(-x)), dx += dy y (1 - y).</summary>
public sealed class SigmoidOp : ElementwiseOp
{
    public static readonly SigmoidOp Instance = new();

    public override string Name => "sigmoid";
    public override string Summary => "Sigmoid: y = 1 / (1 + exp(-x)), element-wise on [N,C,H,W]; backward dx = dy y (1 - y)";

    // odd shapes; x in [-8, 8] reaches the flat tails, [-4, 4] the slope
    static readonly OpCase[] s_checkCases = [Case("n2c3h7w9_range8", 2, 3, 7, 9, range: 8), Case("n2c3h7w9_range4", 2, 3, 7, 9, range: 4)];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;
    protected override void Forward(Tensor x, Tensor y) => Sigmoid.Forward(x, y);
    protected override void Backward(Tensor y, Tensor dy, Tensor dx) => Sigmoid.Backward(y, dy, dx);
    protected override double[] Reference(double[] x) => Sigmoid.Reference.Forward(x);
}

/// <summary><see cref="Relu"/>: y = max(x, 0), dx += dy [y &gt; 0]; exact, so forward is compared with tolerance 0.</summary>
public sealed class ReluOp : ElementwiseOp
{
    public static readonly ReluOp Instance = new();

    public override string Name => "relu";
    public override string Summary => "ReLU: y = max(x, 0), element-wise on [N,C,H,W]; backward dx = dy [y > 0]";

    static readonly OpCase[] s_checkCases = [Case("n2c3h7w9", 2, 3, 7, 9)];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;
    protected override void Forward(Tensor x, Tensor y) => Relu.Forward(x, y);
    protected override void Backward(Tensor y, Tensor dy, Tensor dx) => Relu.Backward(y, dy, dx);
    protected override double[] Reference(double[] x) => Relu.Reference.Forward(x);
    // keep |x| at least 0.01 from 0, where ReLU has no derivative (central differences step 1e-5)
    protected override double[] AwayFromKinks(double[] x) => x.Select(v => (double)(float)(v + Math.Sign(v) * 0.01)).ToArray();
    protected override Tolerance ForwardTolerance => new(0, 0);
}

/// <summary>Every op declared in the harness, by name.</summary>
public static class Ops
{
    public static IReadOnlyList<OpDeclaration> All { get; } =
        [Conv2dOp.Instance, LinearOp.Instance, BatchNormOp.Instance, SigmoidOp.Instance, ReluOp.Instance, GemmOp.Instance,
         MseLossOp.Instance, CrossEntropyOp.Instance,
         BilinearResizeOp.Instance, UpsampleNearestOp.Instance, FusionOp.Instance, AdadeltaOp.Instance];

    public static OpDeclaration? Find(string name) => All.FirstOrDefault(o => string.Equals(o.Name, name, StringComparison.OrdinalIgnoreCase));

    public static string Names => string.Join(", ", All.Select(o => o.Name));
}
