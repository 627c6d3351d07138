using System.Diagnostics;

namespace Chroma.Kernels.Harness;

/// <summary>
/// An op declared once for the harness: its small check cases (odd shapes, edge cases), its benchmark
/// cases (from <see cref="OpShapeList"/>, the file the PyTorch peer reads too), and how to prepare a run
/// of one case on a device (<see cref="Prepare"/>: inputs, forward, backward, float64 reference,
/// tolerances). <see cref="OpHarness"/> gives every declaration three modes on every device path:
/// check, grad and time. <see cref="Ops.All"/> lists the declarations.
/// </summary>
public abstract class OpDeclaration
{
    /// <summary>The name `chroma bench --op` and op_shapes.json use ("conv2d").</summary>
    public abstract string Name { get; }

    /// <summary>One line: what runs, with shapes.</summary>
    public abstract string Summary { get; }

    /// <summary>Small odd shapes for check and grad (the float64 reference and central differences are slow).</summary>
    public abstract IReadOnlyList<OpCase> CheckCases { get; }

    /// <summary>The benchmark cases, from op_shapes.json.</summary>
    public IReadOnlyList<OpCase> BenchCases => OpShapeList.Default.For(Name);

    /// <summary>A check case, else a benchmark case, by name.</summary>
    public OpCase Case(string name) =>
        CheckCases.Concat(BenchCases).FirstOrDefault(c => c.Name == name)
        ?? throw new KeyNotFoundException($"{Name} has no case '{name}'; cases: {string.Join(", ", CheckCases.Concat(BenchCases).Select(c => c.Name))}.");

    /// <summary>
    /// Inputs for case <paramref name="c"/> on <paramref name="device"/>: seeded uniform values rounded to
    /// float32 (so the float64 reference sees exactly what the op sees), outputs filled with a sentinel
    /// that forward must overwrite, gradients started at non-zero values that backward must add to.
    /// </summary>
    public abstract OpRun Prepare(Device device, OpCase c, int seed = 1);

    /// <summary>The case's sizes in a few words, for tables ("key=value ..." unless the op says better).</summary>
    public virtual string Describe(OpCase c) => string.Join(" ", c.Sizes.Select(kv => $"{kv.Key}={kv.Value}"));

    /// <summary>Multiply-adds of one forward (0 where a rate means little), for the bench table's GFLOP/s.</summary>
    public virtual double ForwardMultiplyAdds(OpCase c) => 0;
}

/// <summary>
/// One case of one op, prepared on a device: the tensors, the same inputs in float64, and what
/// forward, backward and the reference do with them. Disposing frees the tensors.
/// </summary>
public abstract class OpRun(Device device, OpCase c, int seed) : IDisposable
{
    readonly List<Tensor> _owned = [];
    readonly List<(Tensor? Tensor, float Start)> _gradients = [];

    public Device Device { get; } = device;
    public OpCase Case { get; } = c;
    protected int Seed { get; } = seed;

    /// <summary>What failure messages call the op ("conv").</summary>
    public abstract string Label { get; }

    /// <summary>The inputs the reference takes and gradients are checked for, in float64, in reference order.</summary>
    public abstract double[][] Inputs { get; }

    /// <summary>Float64 forward of <paramref name="inputs"/> (shaped as <see cref="Inputs"/>).</summary>
    public abstract double[] Reference(double[][] inputs);

    /// <summary>Runs the op's forward on the device, writing <see cref="Output"/>.</summary>
    public abstract void Forward();

    public abstract Tensor Output { get; }

    /// <summary>The upstream gradient backward receives, in float64 (the same values as the device's dy).</summary>
    public abstract double[] Dy { get; }

    /// <summary>Runs the op's backward (after <see cref="Forward"/>), accumulating into the gradient tensors.</summary>
    public abstract void Backward();

    public virtual Tolerance ForwardTolerance => new(1e-5, 1e-5);

    /// <summary>
    /// What check mode compares with <see cref="Reference"/>: <see cref="Output"/>'s values, or for some ops
    /// something derived from them (ADADELTA: the parameter update, so that the rounding of the parameters
    /// themselves does not set the tolerance).
    /// </summary>
    public virtual double[] ReadOutput() => Array.ConvertAll(Output.ToArray(), v => (double)v);

    /// <summary>
    /// The other outputs forward writes (saved statistics, probabilities, optimizer state, untouched
    /// padding) against their float64 values, after <see cref="Output"/>; null when they match or there are none.
    /// </summary>
    public virtual string? OtherOutputsMismatch() => null;

    /// <summary>
    /// False for a forward-only run (an optimizer step, batch norm's inference form, a convolution's fused
    /// ReLU epilogue): it has no grad mode, and time mode times its forward alone.
    /// </summary>
    public virtual bool HasBackward => true;

    /// <summary>Backward against central differences of the reference (GradCheck's default).</summary>
    public virtual Tolerance GradTolerance => new(1e-3, 1e-4);

    /// <summary>
    /// An op with a float64 backward reference compares the gradients with it first (tighter than the
    /// central differences); null when they match or there is none.
    /// </summary>
    public virtual string? ReferenceBackwardMismatch(float[]?[] gradients) => null;

    /// <summary>Whether <see cref="ReferenceBackwardMismatch"/> compares with a float64 backward reference.</summary>
    public virtual bool HasReferenceBackward => false;

    /// <summary>
    /// Whether grad mode also takes central differences (two reference forwards per input element); false for
    /// a case too large for them (<see cref="CentralDifferencesWithin"/>), which the backward reference alone checks.
    /// </summary>
    public virtual bool CentralDifferences => true;

    /// <summary>Most operations the central differences of one case may take (a few seconds of float64 on one core).</summary>
    public const double CentralDifferencesBudget = 1e9;

    /// <summary>
    /// Whether central differences over every element of <see cref="Inputs"/> fit <see cref="CentralDifferencesBudget"/>
    /// for a reference forward of <paramref name="referenceOperations"/> operations.
    /// </summary>
    protected bool CentralDifferencesWithin(double referenceOperations) =>
        2 * Inputs.Sum(i => (double)i.Length) * referenceOperations <= CentralDifferencesBudget;

    /// <summary>Gradients backward added, one per <see cref="Inputs"/> entry (their start values taken off); null where not computed.</summary>
    public virtual float[]?[] Gradients() =>
        _gradients.Select(g => g.Tensor?.ToArray().Select(v => v - g.Start).ToArray()).ToArray();

    /// <summary>Seeded uniform values in [lo, hi), rounded to float32.</summary>
    protected static double[] Values(int seed, int count, double lo = -1, double hi = 1)
    {
        var rng = new Random(seed);
        var v = new double[count];
        for (int i = 0; i < count; i++) v[i] = (float)(lo + (hi - lo) * rng.NextDouble());
        return v;
    }

    protected Tensor Upload(double[] values, params int[] shape) => Own(Device.FromArray(Array.ConvertAll(values, v => (float)v), shape));

    protected Tensor Filled(double value, params int[] shape) =>
        Own(Device.FromArray(Enumerable.Repeat((float)value, Tensor.ShapeLength(shape)).ToArray(), shape));

    /// <summary>A gradient tensor starting at <paramref name="start"/> (backward accumulates), registered in <see cref="Inputs"/> order; null: not computed.</summary>
    protected Tensor? Gradient(bool computed, float start, params int[] shape)
    {
        var t = computed ? Filled(start, shape) : null;
        _gradients.Add((t, start));
        return t;
    }

    protected Tensor Own(Tensor t) { _owned.Add(t); return t; }

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Median and best of timed runs, in seconds.</summary>
public sealed record OpTiming(IReadOnlyList<double> Seconds)
{
    public double Median => Sorted[Sorted.Length / 2];
    public double Best => Sorted[0];
    double[] Sorted => Seconds.Order().ToArray();

    public OpTiming Merge(OpTiming other) => new(Seconds.Concat(other.Seconds).ToArray());
}

/// <summary>The harness's three modes, for any declared op on any device.</summary>
public static class OpHarness
{
    /// <summary>Check: forward against the float64 reference; null when within the op's tolerance, else the worst element.</summary>
    public static string? Check(OpRun run)
    {
        run.Forward();
        var t = run.ForwardTolerance;
        return Closeness.Mismatch($"{run.Label} forward {run.Case}", run.Reference(run.Inputs), run.ReadOutput(), t.Rtol, t.Atol)
            ?? run.OtherOutputsMismatch();
    }

    /// <summary>
    /// Grad: forward, backward, then each gradient against the op's float64 backward reference (if it has
    /// one) and against central differences in float64 of the reference forward (<see cref="Closeness.CentralDifferences"/>;
    /// skipped for a case too large for them, <see cref="OpRun.CentralDifferences"/>).
    /// </summary>
    public static string? Grad(OpRun run)
    {
        if (!run.HasBackward) throw new InvalidOperationException($"{run.Label} {run.Case} is forward-only: it has no grad mode.");
        if (!run.CentralDifferences && !run.HasReferenceBackward)
            throw new InvalidOperationException($"{run.Label} {run.Case} is too large for central differences and has no backward reference.");
        run.Forward();
        run.Backward();
        var gradients = run.Gradients();
        if (run.ReferenceBackwardMismatch(gradients) is { } m) return m;
        if (!run.CentralDifferences) return null;
        var t = run.GradTolerance;
        return Closeness.GradientMismatch($"{run.Label} backward {run.Case}", run.Reference, run.Inputs, run.Dy, gradients, t.Rtol, t.Atol);
    }

    /// <summary>
    /// Time: one warm-up, then <paramref name="repeats"/> runs of forward (and backward when
    /// <paramref name="backward"/>), each ending with a device synchronization, as `chroma bench` times.
    /// </summary>
    public static OpTiming Time(OpRun run, int repeats, bool backward)
    {
        if (backward && !run.HasBackward) throw new InvalidOperationException($"{run.Label} {run.Case} is forward-only: time its forward alone.");
        void Once()
        {
            run.Forward();
            if (backward) run.Backward();
            run.Device.Synchronize();
        }
        Once();
        var seconds = new double[Math.Max(1, repeats)];
        for (int i = 0; i < seconds.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            Once();
            seconds[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        return new OpTiming(seconds);
    }
}
