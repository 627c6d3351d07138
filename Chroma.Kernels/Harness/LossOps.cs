namespace Chroma.Kernels.Harness;

/// <summary>
/// <see cref="MseLoss"/> in the harness: prediction p and target t [N,C,H,W] -> L = mean((p - t)^2), one value;
/// backward dp += scale 2 (p - t) / count with the training step's colour weight scale = 0.75 (the upstream
/// gradient of L); t gets no gradient. Sizes: N, C, H, W, readback (1: L returned to the host, <c>float Forward(p, t)</c>;
/// 0: L written into a loss tensor on the device, the training step's form).
/// </summary>
public sealed class MseLossOp : OpDeclaration
{
    public static readonly MseLossOp Instance = new();

    /// <summary>The weight of the loss in backward (the upstream gradient of L).</summary>
    public const float Scale = 0.75f;

    public override string Name => "mse_loss";
    public override string Summary => "MSE loss: L = mean((p - t)^2) over p, t [N,C,H,W]; backward dp = scale 2 (p - t) / count";

    public static OpCase Case(string name, int n, int c, int h, int w, bool readback) =>
        OpCase.Of(name, ("N", n), ("C", c), ("H", h), ("W", w), ("readback", readback ? 1 : 0));

    static readonly OpCase[] s_checkCases =
    [
        // a chrominance-like map [N, 2, H, W] with odd sizes
        Case("n2c2h7w9", 2, 2, 7, 9, readback: true),
        Case("n2c2h7w9_device", 2, 2, 7, 9, readback: false),
        // above the CPU path's parallel threshold (2 chunks of 65536) and many reduction groups on a GPU
        Case("n3c2h151w157", 3, 2, 151, 157, readback: true),
        Case("n3c2h151w157_device", 3, 2, 151, 157, readback: false),
    ];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    sealed class Run : OpRun
    {
        readonly int[] _shape;
        readonly int _count;
        readonly bool _readback;
        readonly double[] _p, _t;
        readonly Tensor _tp, _tt, _loss, _tdp;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            _shape = [c["N"], c["C"], c["H"], c["W"]];
            _count = Tensor.ShapeLength(_shape);
            _readback = c.Flag("readback", false);
            // a target with another mean than the prediction's, so that the errors do not average out
            _p = Values(seed, _count);
            _t = Values(seed + 1, _count, -0.5, 1.5);
            _tp = Upload(_p, _shape);
            _tt = Upload(_t, _shape);
            _loss = Filled(7, 1); // forward must overwrite it
            // backward accumulates onto a start of the gradient's own size, so that float32 keeps its digits
            _tdp = Gradient(true, 1f / _count, _shape)!;
            Gradient(false, 0, _shape); // the target's
        }

        public override string Label => "mse";
        public override Tensor Output => _loss;
        public override double[] Dy => [Scale];
        public override double[][] Inputs => [_p, _t];
        public override double[] Reference(double[][] i) => [MseLoss.Reference.Forward(i[0], i[1])];

        // float64 squares on the CPU; a large map's float32 partial sums on the GPU path lose a few ulps per reduction level
        public override Tolerance ForwardTolerance => new(_count > 65536 ? 1e-5 : 1e-6, 0);

        public override void Forward()
        {
            if (_readback) _loss.CopyFrom([MseLoss.Forward(_tp, _tt)]);
            else MseLoss.Forward(_tp, _tt, _loss);
        }

        public override void Backward() => MseLoss.Backward(_tp, _tt, _tdp, Scale);

        public override bool HasReferenceBackward => true;

        /// <summary>
        /// The closed form scale 2 (p - t) / count: one float32 product (rtol 1e-5); the sum start + gradient
        /// rounds by at most 1.2e-7 (start + |gradient|), hence atol 1e-6 start.
        /// </summary>
        public override string? ReferenceBackwardMismatch(float[]?[] g)
        {
            var expected = _p.Select((p, i) => Scale * 2 * (p - _t[i]) / _count).ToArray();
            return Closeness.Mismatch($"mse dp {Case} vs the closed form", expected, g[0]!, 1e-5, 1e-6 / _count);
        }

        public override bool CentralDifferences => CentralDifferencesWithin(_count);
    }
}

/// <summary>
/// <see cref="SoftmaxCrossEntropy"/> in the harness: logits z [N,C] and N labels -> L = mean_n(logsumexp(z_n) - z_n[label_n]),
/// one value, and q = softmax(z) [N,C] (compared too); backward dz += scale (q - onehot(labels)) / N with the training
/// step's class weight scale = 1/3. Sizes: N, C, range (logits in [-range, range); 3), large_logits (0; 1: plus
/// 1000, -1000 or 997 by position, which overflow exp without the row-max shift), in_place (0; 1: q written over z),
/// readback (1: host labels and L returned to the host; 0: labels and L on the device, the training step's form).
/// </summary>
public sealed class CrossEntropyOp : OpDeclaration
{
    public static readonly CrossEntropyOp Instance = new();

    /// <summary>The weight of the loss in backward, as the classification term is weighted in training.</summary>
    public const double Scale = 1.0 / 3;

    public override string Name => "cross_entropy";
    public override string Summary => "Softmax cross-entropy: L = mean_n(logsumexp(z_n) - z_n[label_n]), q = softmax(z) over z [N,C]; backward dz = scale (q - onehot) / N";

    public static OpCase Case(string name, int n, int c, int range = 3, bool largeLogits = false, bool inPlace = false, bool readback = true) =>
        OpCase.Of(name, ("N", n), ("C", c), ("range", range), ("large_logits", largeLogits ? 1 : 0), ("in_place", inPlace ? 1 : 0),
            ("readback", readback ? 1 : 0));

    static readonly OpCase[] s_checkCases =
    [
        Case("n5c7", 5, 7),
        Case("n5c7_device", 5, 7, readback: false),
        Case("n5c7_large_logits", 5, 7, largeLogits: true),
        // forward may overwrite the logits with the probabilities
        Case("n5c7_in_place", 5, 7, inPlace: true),
        // N*C above the CPU path's parallel threshold; C = Places' class count
        Case("n331c205", 331, 205, range: 6),
    ];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    /// <summary>softmax of each row of row-major [n, c] logits, in float64.</summary>
    public static double[] Softmax(double[] z, int n, int c)
    {
        var q = new double[z.Length];
        for (int row = 0; row < n; row++)
        {
            var r = z.AsSpan(row * c, c);
            double max = double.NegativeInfinity, sum = 0;
            foreach (double v in r) max = Math.Max(max, v);
            for (int j = 0; j < c; j++) sum += Math.Exp(r[j] - max);
            for (int j = 0; j < c; j++) q[row * c + j] = Math.Exp(r[j] - max) / sum;
        }
        return q;
    }

    sealed class Run : OpRun
    {
        readonly int _n, _c;
        readonly bool _readback, _large;
        readonly int[] _labels;
        readonly double[] _z;
        readonly Tensor _tz, _tq, _loss, _tdz;
        readonly Tensor? _deviceLabels;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            (_n, _c, _readback, _large) = (c["N"], c["C"], c.Flag("readback"), c.Flag("large_logits", false));
            int range = c.Get("range", 3);
            var z = Values(seed, _n * _c, -range, range);
            if (_large) z = z.Select((v, i) => (double)(float)(v + (i % 3 == 0 ? 1000 : i % 3 == 1 ? -1000 : 997))).ToArray();
            _z = z;
            var rng = new Random(seed + 1);
            _labels = Enumerable.Range(0, _n).Select(_ => rng.Next(_c)).ToArray();
            // large logits: each label on a logit near -1000, so that L (near 2000) is a difference of values near 1000
            if (_large)
                for (int row = 0; row < _n; row++)
                    while ((row * _c + _labels[row]) % 3 != 1) _labels[row] = (_labels[row] + 1) % _c;
            _tz = Upload(_z, _n, _c);
            _tq = c.Flag("in_place", false) ? _tz : Filled(7, _n, _c);
            _loss = Filled(7, 1); // forward must overwrite it
            if (!_readback)
            {
                _deviceLabels = Filled(0, _n);
                SoftmaxCrossEntropy.CopyLabels(_labels, _c, _deviceLabels);
            }
            // backward accumulates onto a start of the gradient's own size (scale / N), so that float32 keeps its digits
            _tdz = Gradient(true, (float)(Scale / _n), _n, _c)!;
        }

        public override string Label => "cross-entropy";
        public override Tensor Output => _loss;
        public override double[] Dy => [Scale];
        public override double[][] Inputs => [_z];
        public override double[] Reference(double[][] i) => [SoftmaxCrossEntropy.Reference.Forward(i[0], _n, _c, _labels)];

        // large logits: L is a difference of values near 1000, of which float32 keeps ~1e-4
        public override Tolerance ForwardTolerance => new(1e-6, _large ? 1e-4 : 1e-7);

        /// <summary>Relative error of q: the shift by the row's maximum near 1000 costs float32 digits.</summary>
        double QRtol => _large ? 1e-4 : 1e-5;

        public override string? OtherOutputsMismatch() =>
            Closeness.Mismatch($"softmax {Case}", Softmax(_z, _n, _c), _tq.ToArray(), QRtol, 1e-9);

        public override void Forward()
        {
            if (_readback) _loss.CopyFrom([SoftmaxCrossEntropy.Forward(_tz, _labels, _tq)]);
            else SoftmaxCrossEntropy.Forward(_tz, _deviceLabels!, _tq, _loss);
        }

        public override void Backward()
        {
            if (_readback) SoftmaxCrossEntropy.Backward(_tq, _labels, _tdz, (float)Scale);
            else SoftmaxCrossEntropy.Backward(_tq, _deviceLabels!, _tdz, (float)Scale);
        }

        public override Tolerance GradTolerance => new(1e-3, 1e-6);

        public override bool HasReferenceBackward => true;

        /// <summary>
        /// The closed form scale (q - onehot) / N: q's own error (<see cref="QRtol"/>, also where q is near 1 and
        /// q - 1 near 0) and the rounding of start + gradient, each below QRtol scale / N.
        /// </summary>
        public override string? ReferenceBackwardMismatch(float[]?[] g)
        {
            var q = Softmax(_z, _n, _c);
            var expected = q.Select((v, i) => Scale * (v - (_labels[i / _c] == i % _c ? 1 : 0)) / _n).ToArray();
            return Closeness.Mismatch($"cross-entropy dz {Case} vs the closed form", expected, g[0]!, QRtol, 2 * QRtol * Scale / _n);
        }

        public override bool CentralDifferences => CentralDifferencesWithin(2.0 * _n * _c);
    }
}
