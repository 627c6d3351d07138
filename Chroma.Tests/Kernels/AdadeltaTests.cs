using Chroma.Kernels;
using Xunit;

namespace Chroma.Tests.Kernels;

public class AdadeltaTests
{
    const int Length = 1037; // odd: the CPU path's 8-wide SIMD body leaves a 5-element scalar tail

    /// <summary>Hyper-parameters and set-up of one comparison run.</summary>
    sealed record Run(int Length, int Steps, int Seed, float Rho = Adadelta.DefaultRho, float Eps = Adadelta.DefaultEps,
        float LearningRate = 1f, float WeightDecay = 0f, bool WarmState = false, int Offset = 0);

    /// <summary>
    /// Runs <c>Steps</c> steps of the op (on views <c>Offset</c> elements into larger buffers, as the
    /// model's parameter buffer is used) and of the float64 reference, on the same float32-rounded
    /// parameters and gradients, and compares the state, the total parameter change and the padding.
    /// </summary>
    static void CompareWithReference(Device dev, Run r)
    {
        int n = r.Length;
        var p = TestData.RoundToFloat(TestData.Uniform(r.Seed, n));
        var v = r.WarmState ? TestData.RoundToFloat(TestData.Uniform(r.Seed + 1, n, 0, 1e-2)) : new double[n];
        var u = r.WarmState ? TestData.RoundToFloat(TestData.Uniform(r.Seed + 2, n, 0, 1e-4)) : new double[n];
        var p0 = (double[])p.Clone();

        const float Padding = 7f; // must survive: the op may only touch its view
        Tensor Padded(Tensor buffer, double[] values)
        {
            var host = Enumerable.Repeat(Padding, r.Offset).Concat(TestData.ToFloat(values)).ToArray();
            buffer.CopyFrom(host);
            return buffer.Slice(r.Offset, n);
        }
        using var bp = dev.Zeros(r.Offset + n);
        using var bg = dev.Zeros(r.Offset + n);
        using var bv = dev.Zeros(r.Offset + n);
        using var bu = dev.Zeros(r.Offset + n);
        using var tp = Padded(bp, p);
        using var tg = Padded(bg, new double[n]);
        using var tv = Padded(bv, v);
        using var tu = Padded(bu, u);

        var rng = new Random(r.Seed + 3);
        for (int step = 0; step < r.Steps; step++)
        {
            // gradients spread over four decades, both signs
            var g = TestData.RoundToFloat(Enumerable.Range(0, n).Select(_ => (2 * rng.NextDouble() - 1) * Math.Pow(10, -3 + 4 * rng.NextDouble())).ToArray());
            var gFloat = TestData.ToFloat(g);
            tg.CopyFrom(gFloat);
            Adadelta.Step(tp, tg, tv, tu, r.Rho, r.Eps, r.LearningRate, r.WeightDecay);
            Adadelta.Reference.Step(p, g, v, u, r.Rho, r.Eps, r.LearningRate, r.WeightDecay);
            Assert.Equal(gFloat, tg.ToArray()); // weight decay must not leak into the gradient buffer
        }

        // float32 keeps ~1e-7 relative per operation; over a few steps that stays below 1e-5
        Compare.Close("square average", v, tv.ToArray(), 1e-5, 1e-13);
        Compare.Close("accumulated delta", u, tu.ToArray(), 2e-5, 1e-13);
        // the update (about 1e-3 per step here) is compared on its own, so that the rounding of p
        // itself (up to 6e-8 per step for |p| < 1) is the only absolute error
        var update = tp.ToArray().Select((x, i) => x - p0[i]).ToArray();
        var expectedUpdate = p.Select((x, i) => x - p0[i]).ToArray();
        Compare.Close("parameter update", expectedUpdate, update, 1e-4, 3e-7 * r.Steps);
        foreach (var buffer in new[] { bp, bg, bv, bu })
            Assert.All(buffer.ToArray().Take(r.Offset), x => Assert.Equal(Padding, x));
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Steps_with_torch_defaults_match_reference(string path) =>
        CompareWithReference(TestDevices.Get(path), new Run(Length, Steps: 5, Seed: 41));

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Steps_with_other_hyperparameters_on_views_match_reference(string path) =>
        CompareWithReference(TestDevices.Get(path), new Run(Length, Steps: 4, Seed: 42,
            Rho: 0.95f, Eps: 1e-4f, LearningRate: 0.5f, WeightDecay: 0.01f, WarmState: true, Offset: 5));

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Step_on_a_large_buffer_matches_reference(string path) =>
        // three full 65536-element chunks of the CPU path plus a partial one, on views at an odd offset
        CompareWithReference(TestDevices.Get(path), new Run(3 * 65536 + 37, Steps: 2, Seed: 43, WeightDecay: 1e-3f, Offset: 3));

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Step_rejects_mismatched_lengths_and_bad_hyperparameters(string path)
    {
        var dev = TestDevices.Get(path);
        using var p = dev.Zeros(Length);
        using var g = dev.Zeros(Length);
        using var v = dev.Zeros(Length);
        using var u = dev.Zeros(Length);
        using var shortState = dev.Zeros(Length - 1);
        var e = Assert.Throws<ArgumentException>(() => Adadelta.Step(p, g, shortState, u));
        Assert.Contains($"squareAverage [{Length - 1}]", e.Message);
        e = Assert.Throws<ArgumentException>(() => Adadelta.Step(p, g, v, shortState));
        Assert.Contains("accumulatedDelta", e.Message);
        e = Assert.Throws<ArgumentException>(() => Adadelta.Step(p, shortState, v, u));
        Assert.Contains("gradients", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Adadelta.Step(p, g, v, u, rho: 1.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Adadelta.Step(p, g, v, u, weightDecay: -1f));
    }
}
