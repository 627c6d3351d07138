namespace Chroma.Kernels.Harness;

/// <summary>
/// The comparisons the harness's check and grad modes make, free of any test framework so the command
/// line and the benchmarks can run them too; <c>Chroma.Tests</c>' <c>Compare</c> and <c>GradCheck</c>
/// turn a mismatch into a failed assertion.
/// </summary>
public static class Closeness
{
    /// <summary>
    /// Null when every element satisfies |a - e| &lt;= atol + rtol |e| (and none is NaN), else one line
    /// naming the worst element.
    /// </summary>
    public static string? Mismatch(string what, ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double rtol, double atol)
    {
        if (expected.Length != actual.Length) return $"{what}: expected {expected.Length} values, got {actual.Length}";
        int worst = -1; double worstExcess = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs(actual[i] - expected[i]);
            double excess = diff - (atol + rtol * Math.Abs(expected[i]));
            if (double.IsNaN(actual[i]) || excess > worstExcess) { worst = i; worstExcess = double.IsNaN(actual[i]) ? double.PositiveInfinity : excess; }
        }
        return worst < 0 ? null
            : $"{what}: element {worst} is {actual[worst]:G9}, expected {expected[worst]:G9} " +
              $"(|diff| {Math.Abs(actual[worst] - expected[worst]):G3} > atol {atol} + rtol {rtol} * |expected|)";
    }

    public static string? Mismatch(string what, ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double rtol, double atol)
    {
        var a = new double[actual.Length];
        for (int i = 0; i < a.Length; i++) a[i] = actual[i];
        return Mismatch(what, expected, a, rtol, atol);
    }

    /// <summary>
    /// Central differences in float64 of L = sum(dy * f(inputs)) with respect to inputs[which]: what a
    /// backward pass receiving dy must produce. Truncation error is O(h^2) and round-off tiny, so a
    /// tolerance only has to absorb the op's float32 error.
    /// </summary>
    public static double[] CentralDifferences(Func<double[][], double[]> reference, double[][] inputs, double[] dy, int which, double h = 1e-5)
    {
        var x = inputs.Select(v => (double[])v.Clone()).ToArray();
        var target = x[which];
        var result = new double[target.Length];
        for (int i = 0; i < target.Length; i++)
        {
            double saved = target[i];
            target[i] = saved + h; double plus = Dot(dy, reference(x));
            target[i] = saved - h; double minus = Dot(dy, reference(x));
            target[i] = saved;
            result[i] = (plus - minus) / (2 * h);
        }
        return result;
    }

    /// <summary>
    /// Null when each non-null analytic gradient matches the central differences of the reference, else
    /// the first mismatch ("WHAT: gradient of input I: element ...").
    /// </summary>
    public static string? GradientMismatch(string what, Func<double[][], double[]> reference, double[][] inputs, double[] dy,
        float[]?[] analytic, double rtol = 1e-3, double atol = 1e-4, double h = 1e-5)
    {
        for (int which = 0; which < inputs.Length; which++)
        {
            if (analytic[which] is not { } grad) continue;
            var numeric = CentralDifferences(reference, inputs, dy, which, h);
            if (Mismatch($"{what}: gradient of input {which}", numeric, grad, rtol, atol) is { } m) return m;
        }
        return null;
    }

    static double Dot(double[] a, double[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"dy has {a.Length} values, the reference output {b.Length}.");
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
