namespace Chroma.Kernels.Harness;

/// <summary>
/// <see cref="BatchNorm"/> in the harness. Training mode: x [N,C,H,W] (or [N,C]), gamma, beta [C] -> y with the batch's
/// statistics, the running statistics updated, saved mean and 1/std kept for backward (all compared); backward dx,
/// dgamma, dbeta against the closed form and central differences. Inference mode: y with the running statistics,
/// forward-only. Sizes: N, C, H, W, rank (4; 2: x is [N, C], H = W = 1), training (1; 0: inference, eps
/// <see cref="InferenceEps"/>), relu (0; 1: the fused ReLU, y = max(0, bn(x)), backward masked by y; the inputs keep
/// bn(x) 1e-3 from the kink), offset (absent: x = U[-1, 1) + 10 (c mod 4); else x = offset + U[-1, 1), all channels).
/// </summary>
public sealed class BatchNormOp : OpDeclaration
{
    public static readonly BatchNormOp Instance = new();

    /// <summary>The inference cases' eps: not the default, so an op that dropped its eps argument would fail (a relative 1e-3 in y).</summary>
    public const float InferenceEps = 1e-3f;

    public override string Name => "batchnorm";
    public override string Summary => "BatchNorm: y [N,C,H,W] = gamma (x - mean) / sqrt(var + eps) + beta per channel (training; inference forward-only); backward dx, dgamma, dbeta";

    public static OpCase Case(string name, int n, int c, int h, int w, bool training = true, bool relu = false, int? offset = null) =>
        OpCase.Of(name, [("N", n), ("C", c), ("H", h), ("W", w), ("training", training ? 1 : 0), ("relu", relu ? 1 : 0),
            .. offset is { } o ? [("offset", o)] : Array.Empty<(string, int)>()]);

    /// <summary>A [N, C] case (BatchNorm1d's layout: one value per sample and channel).</summary>
    public static OpCase Case2d(string name, int n, int c, bool training = true, bool relu = false, int? offset = null) =>
        new(name, new Dictionary<string, int>(Case(name, n, c, 1, 1, training, relu, offset).Sizes) { ["rank"] = 2 });

    /// <summary>Training and inference, with and without the fused ReLU, of one shape ("NAME", "NAME_relu", "NAME_eval", "NAME_eval_relu").</summary>
    static IEnumerable<OpCase> Modes(OpCase c) =>
        from training in new[] { true, false }
        from relu in new[] { false, true }
        select new OpCase(c.Name + (training ? "" : "_eval") + (relu ? "_relu" : ""),
            new Dictionary<string, int>(c.Sizes) { ["training"] = training ? 1 : 0, ["relu"] = relu ? 1 : 0 });

    static readonly OpCase[] s_checkCases =
    [
        // odd sizes; a 1x1 map with a batch of 5
        Case("n2c3h5w7", 2, 3, 5, 7), Case("n5c4h1w1", 5, 4, 1, 1),
        // the 4-D and 2-D layouts in every mode; rows of 37 channels (partial vectors on the CPU)
        .. Modes(Case("n2c3h7w9", 2, 3, 7, 9)), .. Modes(Case2d("n5c4", 5, 4)), .. Modes(Case2d("n5c37", 5, 37)),
        // values 1000 + [-1, 1): sums of raw values and squares in float would cancel the variance (1e6 against 0.3) away
        Case("n2c3h7w9_offset1000", 2, 3, 7, 9, offset: 1000), Case2d("n5c4_offset1000", 5, 4, offset: 1000),
        // above the CPU path's sequential threshold (32K values), so channels run in parallel; too large for central differences
        Case("n4c16h24w24", 4, 16, 24, 24), Case2d("n40c900", 40, 900),
    ];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    /// <summary>A case's sizes, typed, with the float64 forward and closed-form backward they give.</summary>
    public sealed record Shape(int N, int C, int H, int W, int Rank, bool Training, bool Relu, int? Offset)
    {
        public static Shape Of(OpCase c) => new(c["N"], c["C"], c["H"], c["W"], c.Get("rank", 4), c.Flag("training"), c.Flag("relu", false),
            c.Sizes.TryGetValue("offset", out int o) ? o : null);

        public int S => H * W;
        /// <summary>Values per channel.</summary>
        public int M => N * S;
        public int Count => N * C * S;
        public int[] XShape => Rank == 2 ? [N, C] : [N, C, H, W];

        /// <summary>Seeded values rounded to float32: U[-1, 1) + 10 (c mod 4), so a variance that cancels would show; or offset + U[-1, 1).</summary>
        public double[] Input(int seed)
        {
            var rng = new Random(seed);
            var x = new double[Count];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(2 * rng.NextDouble() - 1 + (Offset ?? 10.0 * (i / S % C % 4)));
            return x;
        }

        public double[] Reference(double[] x, double[] gamma, double[] beta, double[] runningMean, double[] runningVar)
        {
            var y = Training ? BatchNorm.Reference.ForwardTraining(x, N, C, S, gamma, beta, BatchNorm.DefaultEps)
                : BatchNorm.Reference.ForwardInference(x, N, C, S, gamma, beta, runningMean, runningVar, InferenceEps);
            return Relu ? y.Select(v => Math.Max(v, 0)).ToArray() : y;
        }

        /// <summary>float64 batch mean and biased variance per channel.</summary>
        public (double[] Mean, double[] Var) Moments(double[] x)
        {
            var mean = new double[C];
            var var = new double[C];
            for (int ch = 0; ch < C; ch++)
            {
                for (int i = 0; i < N; i++) for (int j = 0; j < S; j++) mean[ch] += x[(i * C + ch) * S + j];
                mean[ch] /= M;
                for (int i = 0; i < N; i++) for (int j = 0; j < S; j++) { double d = x[(i * C + ch) * S + j] - mean[ch]; var[ch] += d * d; }
                var[ch] /= M;
            }
            return (mean, var);
        }

        /// <summary>
        /// Training-mode gradients in float64 by the closed form (the class summary's formulas, checked against central
        /// differences on the small cases) for upstream gradient dy, masked by bn(x) &gt; 0 with the fused ReLU.
        /// </summary>
        public (double[] Dx, double[] Dgamma, double[] Dbeta) ReferenceBackward(double[] x, double[] dy, double[] gamma, double[] beta)
        {
            if (Relu)
            {
                var z = BatchNorm.Reference.ForwardTraining(x, N, C, S, gamma, beta, BatchNorm.DefaultEps);
                dy = dy.Select((v, k) => z[k] > 0 ? v : 0).ToArray();
            }
            var (mean, var) = Moments(x);
            var dx = new double[x.Length];
            var dgamma = new double[C];
            var dbeta = new double[C];
            for (int ch = 0; ch < C; ch++)
            {
                double invStd = 1 / Math.Sqrt(var[ch] + BatchNorm.DefaultEps);
                for (int i = 0; i < N; i++)
                    for (int j = 0; j < S; j++)
                    {
                        int k = (i * C + ch) * S + j;
                        dbeta[ch] += dy[k];
                        dgamma[ch] += dy[k] * (x[k] - mean[ch]) * invStd;
                    }
                for (int i = 0; i < N; i++)
                    for (int j = 0; j < S; j++)
                    {
                        int k = (i * C + ch) * S + j;
                        double xhat = (x[k] - mean[ch]) * invStd;
                        dx[k] = gamma[ch] * invStd / M * (M * dy[k] - dbeta[ch] - xhat * dgamma[ch]);
                    }
            }
            return (dx, dgamma, dbeta);
        }
    }

    sealed class Run : OpRun
    {
        readonly Shape _s;
        readonly double[] _x, _gamma, _beta, _runningMean, _runningVar, _dy;
        readonly Tensor _tx, _tg, _tb, _rm, _rv, _ty, _mean, _invStd, _tdy;
        readonly Tensor? _tdx, _tdg, _tdb;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            _s = Shape.Of(c);
            // gamma away from 0; running statistics of the inputs' size (inference reads them, training moves them)
            _gamma = Values(seed + 1, _s.C, 0.5, 1.5);
            _beta = Values(seed + 2, _s.C);
            _runningMean = Values(seed + 3, _s.C);
            _runningVar = Values(seed + 4, _s.C, 0.5, 2);
            // training: values around per-channel offsets; inference: values around the running means
            _x = _s.Training ? _s.Input(seed) : Values(seed, _s.Count, -2, 2);
            // training with the ReLU: the first input (seeds seed + 100 k) whose bn(x) is nowhere within 1e-3 of the
            // kink, where central differences mean nothing
            for (int k = 1; _s.Training && _s.Relu && NearKink(); k++)
                _x = k < 100 ? _s.Input(seed + 100 * k) : throw new InvalidOperationException($"batchnorm {c}: no input keeps bn(x) off the ReLU's kink.");
            _dy = Values(seed + 5, _s.Count);
            _tx = Upload(_x, _s.XShape);
            _tg = Upload(_gamma, _s.C);
            _tb = Upload(_beta, _s.C);
            _rm = Upload(_runningMean, _s.C);
            _rv = Upload(_runningVar, _s.C);
            _ty = Filled(7, _s.XShape); // forward must overwrite it
            _mean = Filled(7, _s.C);
            _invStd = Filled(7, _s.C);
            _tdy = Upload(_dy, _s.XShape);
            // backward accumulates
            _tdx = Gradient(_s.Training, 0.5f, _s.XShape);
            _tdg = Gradient(_s.Training, -0.25f, _s.C);
            _tdb = Gradient(_s.Training, 0.75f, _s.C);
        }

        bool NearKink() => (_s with { Relu = false }).Reference(_x, _gamma, _beta, _runningMean, _runningVar).Any(v => Math.Abs(v) <= 1e-3);

        public override string Label => "batchnorm";
        public override Tensor Output => _ty;
        public override double[] Dy => _dy;
        public override double[][] Inputs => [_x, _gamma, _beta];
        public override double[] Reference(double[][] i) => _s.Reference(i[0], i[1], i[2], _runningMean, _runningVar);

        // |y| is a few units: float32 normalization of values up to 30 leaves ~1e-5 absolute error; at an offset of 1000
        // x - mean loses float32 digits (spacing 6e-5), whatever the statistics: ~2e-4 in y; inference takes x in [-2, 2)
        public override Tolerance ForwardTolerance => _s.Offset is not null ? new(0, 5e-4) : _s.Training ? new(1e-5, 5e-5) : new(1e-5, 1e-6);

        public override bool HasBackward => _s.Training;

        public override void Forward()
        {
            if (_s.Training) BatchNorm.ForwardTraining(_tx, _tg, _tb, _rm, _rv, _ty, _mean, _invStd, relu: _s.Relu);
            else BatchNorm.ForwardInference(_tx, _tg, _tb, _rm, _rv, _ty, InferenceEps, relu: _s.Relu);
        }

        public override void Backward() =>
            BatchNorm.Backward(_tx, _tg, _mean, _invStd, _tdy, _tdx!, _tdg!, _tdb!, reluOutput: _s.Relu ? _ty : null);

        /// <summary>
        /// Training: the saved mean and 1/std against the float64 moments, the running statistics moved by the default
        /// momentum (the variance unbiased, as PyTorch's). Inference: the running statistics untouched.
        /// </summary>
        public override string? OtherOutputsMismatch()
        {
            if (!_s.Training)
                return Closeness.Mismatch($"batchnorm runningMean {Case} (inference must not move it)", _runningMean, _rm.ToArray(), 0, 0)
                    ?? Closeness.Mismatch($"batchnorm runningVar {Case} (inference must not move it)", _runningVar, _rv.ToArray(), 0, 0);
            var (mean, var) = _s.Moments(_x);
            double momentum = BatchNorm.DefaultMomentum, unbiased = (double)_s.M / (_s.M - 1);
            bool offset = _s.Offset is not null;
            return Closeness.Mismatch($"batchnorm saveMean {Case}", mean, _mean.ToArray(), offset ? 1e-7 : 1e-6, offset ? 0 : 1e-6)
                ?? Closeness.Mismatch($"batchnorm saveInvStd {Case}", var.Select(v => 1 / Math.Sqrt(v + BatchNorm.DefaultEps)).ToArray(),
                    _invStd.ToArray(), offset ? 1e-4 : 2e-5, 0)
                ?? Closeness.Mismatch($"batchnorm runningMean {Case}", _runningMean.Select((r, c) => (1 - momentum) * r + momentum * mean[c]).ToArray(),
                    _rm.ToArray(), 1e-6, 1e-6)
                ?? Closeness.Mismatch($"batchnorm runningVar {Case}", _runningVar.Select((r, c) => (1 - momentum) * r + momentum * var[c] * unbiased).ToArray(),
                    _rv.ToArray(), 1e-5, 0);
        }

        public override bool HasReferenceBackward => true;

        /// <summary>Against the closed form: dx (1e-4, 1e-5); dgamma and dbeta are float32 sums of M values each, 1e-4 absolute up to 1000 of them, 1e-3 beyond.</summary>
        public override string? ReferenceBackwardMismatch(float[]?[] g)
        {
            var (dx, dgamma, dbeta) = _s.ReferenceBackward(_x, _dy, _gamma, _beta);
            double sumAtol = _s.M <= 1000 ? 1e-4 : 1e-3;
            string what = $"batchnorm {{0}} {Case} vs the closed form";
            return Closeness.Mismatch(string.Format(what, "dbeta"), dbeta, g[2]!, 1e-4, sumAtol)
                ?? Closeness.Mismatch(string.Format(what, "dgamma"), dgamma, g[1]!, 1e-4, sumAtol)
                ?? Closeness.Mismatch(string.Format(what, "dx"), dx, g[0]!, 1e-4, 1e-5);
        }

        // one reference forward: a few passes over the values
        public override bool CentralDifferences => CentralDifferencesWithin(4.0 * _s.Count);
    }
}
