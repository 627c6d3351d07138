using Chroma.Kernels.Harness;

namespace Chroma.Tests;

/// <summary>
/// Gradient check shared by every op test: the op's backward (float32, on the path under test) is
/// compared with central finite differences of the op's float64 reference forward (the op harness's
/// <see cref="Closeness.CentralDifferences"/>, which its grad mode uses too).
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
        => HarnessAssert.Passes(Closeness.GradientMismatch(what, reference, inputs, dy, analytic, rtol, atol, h));

    /// <summary>Central differences of sum(dy * f(inputs)) with respect to inputs[which].</summary>
    public static double[] Numeric(Func<double[][], double[]> reference, double[][] inputs, double[] dy, int which, double h = 1e-5) =>
        Closeness.CentralDifferences(reference, inputs, dy, which, h);
}
