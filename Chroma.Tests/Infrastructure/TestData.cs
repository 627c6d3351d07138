namespace Chroma.Tests;

/// <summary>Seeded random inputs (never all zeros) and conversions between float32 and float64.</summary>
public static class TestData
{
    /// <summary>Uniform values in [lo, hi), from a fixed seed.</summary>
    public static double[] Uniform(int seed, int n, double lo = -1, double hi = 1)
    {
        var rng = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng.NextDouble();
        return v;
    }

    public static float[] ToFloat(double[] v) => Array.ConvertAll(v, x => (float)x);
    public static double[] ToDouble(float[] v) => Array.ConvertAll(v, x => (double)x);

    /// <summary>Rounds to float32 and back, so the float64 reference sees exactly the values the op sees.</summary>
    public static double[] RoundToFloat(double[] v) => Array.ConvertAll(v, x => (double)(float)x);

    /// <summary>A tensor on <paramref name="device"/> holding <paramref name="values"/> (rounded to float32).</summary>
    public static Tensor Tensor(Device device, double[] values, params int[] shape) => device.FromArray(ToFloat(values), shape);
}
