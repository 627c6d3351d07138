using Xunit;

namespace Chroma.Tests;

/// <summary>Element-wise comparison with a mixed tolerance |a - e| &lt;= atol + rtol * |e|, reporting the worst element.</summary>
public static class Compare
{
    public static void Close(string what, ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double rtol, double atol)
    {
        var a = new double[actual.Length];
        for (int i = 0; i < a.Length; i++) a[i] = actual[i];
        Close(what, expected, a, rtol, atol);
    }

    public static void Close(string what, ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double rtol, double atol)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} values, got {actual.Length}");
        int worst = -1; double worstExcess = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs(actual[i] - expected[i]);
            double excess = diff - (atol + rtol * Math.Abs(expected[i]));
            if (double.IsNaN(actual[i]) || excess > worstExcess) { worst = i; worstExcess = double.IsNaN(actual[i]) ? double.PositiveInfinity : excess; }
        }
        if (worst >= 0)
            Assert.Fail($"{what}: element {worst} is {actual[worst]:G9}, expected {expected[worst]:G9} " +
                        $"(|diff| {Math.Abs(actual[worst] - expected[worst]):G3} > atol {atol} + rtol {rtol} * |expected|)");
    }
}
