namespace Chroma.Kernels.Harness;

/// <summary>
/// <see cref="Adadelta"/>'s step in the harness, forward-only (an optimizer step has no gradient to check: no grad mode):
/// forward is <c>steps</c> steps in place on parameters p with gradients g (each step its own, spread over four decades,
/// both signs), square average v and accumulated delta u, all [Length], against the float64 steps. Check compares the
/// parameter update p - p0 (so that p's own rounding, up to 6e-8 a step, does not set the tolerance), then v, u, the
/// gradients (weight decay must not leak into them) and the buffers' heads. Sizes: Length, steps (1), offset (0: the four
/// tensors are views that many elements into larger buffers, as the model's parameter buffer is used; the head holds 7
/// and must survive), warm (0; 1: v and u start at U[0, 1e-2) and U[0, 1e-4) instead of zero), and the hyper-parameters
/// rho% (90), lr% (100) in hundredths, eps_log10 (-6) and weight_decay_log10 (absent: no weight decay) as powers of 10.
/// </summary>
public sealed class AdadeltaOp : OpDeclaration
{
    public static readonly AdadeltaOp Instance = new();

    public override string Name => "adadelta";
    public override string Summary => "ADADELTA step (forward-only): v = rho v + (1 - rho) g^2, delta = sqrt(u + eps) / sqrt(v + eps) g, u = rho u + (1 - rho) delta^2, p -= lr delta";

    public static OpCase Case(string name, int length, int steps, int rhoPercent = 90, int epsLog10 = -6, int learningRatePercent = 100,
        int? weightDecayLog10 = null, bool warm = false, int offset = 0) =>
        OpCase.Of(name, [("Length", length), ("steps", steps), ("rho%", rhoPercent), ("eps_log10", epsLog10), ("lr%", learningRatePercent),
            .. weightDecayLog10 is { } wd ? [("weight_decay_log10", wd)] : Array.Empty<(string, int)>(), ("warm", warm ? 1 : 0), ("offset", offset)]);

    static readonly OpCase[] s_checkCases =
    [
        // odd: the CPU path's 8-wide SIMD body leaves a 5-element scalar tail
        Case("n1037_torch_defaults", 1037, steps: 5),
        Case("n1037_other_hyperparameters_on_views", 1037, steps: 4, rhoPercent: 95, epsLog10: -4, learningRatePercent: 50,
            weightDecayLog10: -2, warm: true, offset: 5),
        // three full 65536-element chunks of the CPU path plus a partial one, on views at an odd offset
        Case("n196645_on_views", 3 * 65536 + 37, steps: 2, weightDecayLog10: -3, offset: 3),
    ];

    public override IReadOnlyList<OpCase> CheckCases => s_checkCases;

    public override string Describe(OpCase c) => $"{c["Length"]} parameters, {c.Get("steps", 1)} step(s)";

    public override OpRun Prepare(Device device, OpCase c, int seed = 1) => new Run(device, c, seed);

    sealed class Run : OpRun
    {
        /// <summary>What the buffers' heads hold: the op may only touch its views.</summary>
        const float Padding = 7f;

        readonly int _n, _steps, _offset;
        readonly float _rho, _eps, _lr, _weightDecay;
        readonly double[] _p0, _v0, _u0, _g;
        readonly Tensor[] _buffers;
        readonly Tensor _tp, _tg, _tv, _tu;

        public Run(Device device, OpCase c, int seed) : base(device, c, seed)
        {
            (_n, _steps, _offset) = (c["Length"], c.Get("steps", 1), c.Get("offset", 0));
            // as float32, the values the op sees; the reference takes the same
            _rho = c.Get("rho%", 90) / 100f;
            _eps = (float)Math.Pow(10, c.Get("eps_log10", -6));
            _lr = c.Get("lr%", 100) / 100f;
            _weightDecay = c.Sizes.TryGetValue("weight_decay_log10", out int wd) ? (float)Math.Pow(10, wd) : 0f;
            bool warm = c.Flag("warm", false);
            _p0 = Values(seed, _n);
            _v0 = warm ? Values(seed + 1, _n, 0, 1e-2) : new double[_n];
            _u0 = warm ? Values(seed + 2, _n, 0, 1e-4) : new double[_n];
            // each step's gradients, spread over four decades, both signs
            var rng = new Random(seed + 3);
            _g = new double[_steps * _n];
            for (int i = 0; i < _g.Length; i++) _g[i] = (float)((2 * rng.NextDouble() - 1) * Math.Pow(10, -3 + 4 * rng.NextDouble()));
            _buffers = new Tensor[4];
            _tp = Padded(0, _p0);
            _tg = Padded(1, _g.AsSpan(0, _n).ToArray());
            _tv = Padded(2, _v0);
            _tu = Padded(3, _u0);
        }

        /// <summary>A view <see cref="_offset"/> elements into buffer i, whose head holds <see cref="Padding"/>.</summary>
        Tensor Padded(int i, double[] values)
        {
            _buffers[i] = Upload([.. Enumerable.Repeat((double)Padding, _offset), .. values], _offset + _n);
            return Own(_buffers[i].Slice(_offset, _n));
        }

        public override string Label => "adadelta";
        public override Tensor Output => _tp;
        public override double[] Dy => []; // forward-only
        public override double[][] Inputs => [_p0, _v0, _u0, _g];
        public override bool HasBackward => false;
        public override void Backward() => throw new InvalidOperationException("adadelta is forward-only.");

        public override void Forward()
        {
            for (int step = 0; step < _steps; step++)
            {
                // a check case's later steps take their own gradients; a bench case steps once on the uploaded ones
                if (step > 0) _tg.CopyFrom(Array.ConvertAll(_g[(step * _n)..((step + 1) * _n)], v => (float)v));
                Adadelta.Step(_tp, _tg, _tv, _tu, _rho, _eps, _lr, _weightDecay);
            }
        }

        /// <summary>The float64 steps from p0, v0, u0: p, v and u after them.</summary>
        (double[] P, double[] V, double[] U) ReferenceSteps(double[][] i)
        {
            var (p, v, u) = ((double[])i[0].Clone(), (double[])i[1].Clone(), (double[])i[2].Clone());
            for (int step = 0; step < _steps; step++)
                Adadelta.Reference.Step(p, i[3][(step * _n)..((step + 1) * _n)], v, u, _rho, _eps, _lr, _weightDecay);
            return (p, v, u);
        }

        /// <summary>The parameter update p - p0.</summary>
        public override double[] Reference(double[][] i) => ReferenceSteps(i).P.Select((p, k) => p - i[0][k]).ToArray();

        public override double[] ReadOutput() => _tp.ToArray().Select((p, k) => p - _p0[k]).ToArray();

        // the update (about 1e-3 a step) to 1e-4 of itself; the rounding of p, up to 6e-8 a step for |p| < 1, absolute
        public override Tolerance ForwardTolerance => new(1e-4, 3e-7 * _steps);

        /// <summary>float32 keeps ~1e-7 relative per operation; over a few steps v and u stay within 1e-5 and 2e-5.</summary>
        public override string? OtherOutputsMismatch()
        {
            var (_, v, u) = ReferenceSteps(Inputs);
            return Closeness.Mismatch($"adadelta square average {Case}", v, _tv.ToArray(), 1e-5, 1e-13)
                ?? Closeness.Mismatch($"adadelta accumulated delta {Case}", u, _tu.ToArray(), 2e-5, 1e-13)
                ?? Closeness.Mismatch($"adadelta gradients {Case} (weight decay must not change them)",
                    _g[((_steps - 1) * _n)..], _tg.ToArray(), 0, 0)
                ?? _buffers.Select((b, i) => Closeness.Mismatch($"adadelta buffer {i}'s head {Case} (outside the view)",
                    Enumerable.Repeat((double)Padding, _offset).ToArray(), b.ToArray().AsSpan(0, _offset), 0, 0)).FirstOrDefault(m => m is not null);
        }
    }
}
