namespace Chroma.Tests;

/// <summary>
/// Gradient check shared by every op test: the op's backward (float32, on the path under test) is
/// compared with central finite differences of the op's float64 reference forward.
/// </summary>
/// <remarks>
/// The scalar checked is L = sum(dy * f(inputs)) for a fixed random dy, so dL/dinput is exactly what
/// a backward pass receiving dy must produce. Differences use step h in float64, where truncation
/// error is O(h^2) and round-off tiny, so the tolerance only has to absorb the op's float32 error.
/// </remarks>
public static class GradCheck
{
    /// <param name="what">Name used in failure messages.</param>
    /// <param name="reference">Float64 forward: inputs -> output values.</param>
    /// <param name="inputs">Input values (already rounded to float32, see <see cref="TestData.RoundToFloat"/>).</param>
    /// <param name="dy">Upstream gradient, one value per output element.</param>
    /// <param name="analytic">The op's gradients, one per input; null entries are not checked.</param>
    public static void Check(string what, Func<double[][], double[]> reference, double[][] inputs, double[] dy,
        float[]?[] analytic, double rtol = 1e-3, double atol = 1e-4, double h = 1e-5)
    {
        for (int which = 0; which < inputs.Length; which++)
        {
            if (analytic[which] is not { } grad) continue;
            var numeric = Numeric(reference, inputs, dy, which, h);
            Compare.Close($"{what}: gradient of input {which}", numeric, grad, rtol, atol);
        }
    }

    /// <summary>Central differences of sum(dy * f(inputs)) with respect to inputs[which].</summary>
    public static double[] Numeric(Func<double[][], double[]> reference, double[][] inputs, double[] dy, int which, double h = 1e-5)
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

    static double Dot(double[] a, double[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"dy has {a.Length} values, the reference output {b.Length}.");
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
