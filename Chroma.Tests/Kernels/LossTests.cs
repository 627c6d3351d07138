using Chroma.Kernels;
using Xunit;

namespace Chroma.Tests.Kernels;

public class LossTests
{
    // MSE on a chrominance-like map [N, 2, H, W] with odd sizes
    static readonly int[] MapShape = [2, 2, 7, 9];
    static int MapCount => 2 * 2 * 7 * 9;
    // above the CPU path's parallel threshold (2 chunks of 65536) and many reduction groups on a GPU
    static readonly int[] LargeMapShape = [3, 2, 151, 157];
    static int LargeMapCount => 3 * 2 * 151 * 157;
    // classification scores [N, C]
    const int N = 5, C = 7;

    static int[] Labels(int seed, int n, int c)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => rng.Next(c)).ToArray();
    }

    /// <summary>softmax of each row of row-major [n, c] logits, in float64.</summary>
    static double[] Softmax(double[] z, int n, int c)
    {
        var q = new double[z.Length];
        for (int row = 0; row < n; row++)
        {
            var r = z.AsSpan(row * c, c);
            double max = r.ToArray().Max(), sum = 0;
            for (int j = 0; j < c; j++) sum += Math.Exp(r[j] - max);
            for (int j = 0; j < c; j++) q[row * c + j] = Math.Exp(r[j] - max) / sum;
        }
        return q;
    }

    // ---- MSE ----

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Mse_forward_matches_reference(string path)
    {
        var dev = TestDevices.Get(path);
        var p = TestData.RoundToFloat(TestData.Uniform(11, MapCount));
        var t = TestData.RoundToFloat(TestData.Uniform(12, MapCount));
        using var tp = TestData.Tensor(dev, p, MapShape);
        using var tt = TestData.Tensor(dev, t, MapShape);
        float loss = MseLoss.Forward(tp, tt);
        Compare.Close("mse", [MseLoss.Reference.Forward(p, t)], [loss], 1e-6, 0);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Mse_forward_matches_reference_on_a_large_map(string path)
    {
        var dev = TestDevices.Get(path);
        var p = TestData.RoundToFloat(TestData.Uniform(13, LargeMapCount));
        var t = TestData.RoundToFloat(TestData.Uniform(14, LargeMapCount, -0.5, 1.5));
        using var tp = TestData.Tensor(dev, p, LargeMapShape);
        using var tt = TestData.Tensor(dev, t, LargeMapShape);
        float loss = MseLoss.Forward(tp, tt);
        // float32 partial sums on the GPU path: a few ulps of error per reduction level
        Compare.Close("mse (large)", [MseLoss.Reference.Forward(p, t)], [loss], 1e-5, 0);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Mse_backward_matches_finite_differences(string path)
    {
        var dev = TestDevices.Get(path);
        const double scale = 0.75;
        var p = TestData.RoundToFloat(TestData.Uniform(15, MapCount));
        var t = TestData.RoundToFloat(TestData.Uniform(16, MapCount));
        using var tp = TestData.Tensor(dev, p, MapShape);
        using var tt = TestData.Tensor(dev, t, MapShape);
        using var tdp = TestData.Tensor(dev, Enumerable.Repeat(0.5, MapCount).ToArray(), MapShape); // backward accumulates
        MseLoss.Backward(tp, tt, tdp, (float)scale);
        var grad = tdp.ToArray().Select(v => v - 0.5f).ToArray();
        // L = scale * mse, so dy = [scale] for the one-value reference
        GradCheck.Check("mse", i => [MseLoss.Reference.Forward(i[0], i[1])], [p, t], [scale], [grad, null]);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Mse_backward_on_a_large_map_matches_the_formula(string path)
    {
        var dev = TestDevices.Get(path);
        var p = TestData.RoundToFloat(TestData.Uniform(17, LargeMapCount));
        var t = TestData.RoundToFloat(TestData.Uniform(18, LargeMapCount));
        var d0 = TestData.RoundToFloat(TestData.Uniform(19, LargeMapCount, -1e-5, 1e-5));
        using var tp = TestData.Tensor(dev, p, LargeMapShape);
        using var tt = TestData.Tensor(dev, t, LargeMapShape);
        using var tdp = TestData.Tensor(dev, d0, LargeMapShape);
        MseLoss.Backward(tp, tt, tdp);
        var expected = p.Select((v, i) => d0[i] + 2 * (v - t[i]) / LargeMapCount).ToArray();
        Compare.Close("mse backward (large)", expected, tdp.ToArray(), 1e-5, 1e-11);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Mse_rejects_mismatched_lengths(string path)
    {
        var dev = TestDevices.Get(path);
        using var tp = dev.Zeros(MapShape);
        using var tt = dev.Zeros(2, 2, 7, 8);
        using var tdp = dev.Zeros(MapShape);
        var e = Assert.Throws<ArgumentException>(() => MseLoss.Forward(tp, tt));
        Assert.Contains("target [2, 2, 7, 8]", e.Message);
        using var small = dev.Zeros(5);
        e = Assert.Throws<ArgumentException>(() => MseLoss.Backward(tp, tp, small));
        Assert.Contains("dPrediction [5]", e.Message);
    }

    // ---- softmax cross-entropy ----

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void CrossEntropy_forward_matches_reference(string path)
    {
        var dev = TestDevices.Get(path);
        var z = TestData.RoundToFloat(TestData.Uniform(21, N * C, -3, 3));
        var labels = Labels(22, N, C);
        using var tz = TestData.Tensor(dev, z, N, C);
        using var tq = dev.Zeros(N, C);
        float loss = SoftmaxCrossEntropy.Forward(tz, labels, tq);
        Compare.Close("cross-entropy", [SoftmaxCrossEntropy.Reference.Forward(z, N, C, labels)], [loss], 1e-6, 1e-7);
        Compare.Close("softmax", Softmax(z, N, C), tq.ToArray(), 1e-5, 1e-7);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void CrossEntropy_forward_is_stable_for_large_logits(string path)
    {
        var dev = TestDevices.Get(path);
        // |z| near 1000: exp overflows float (and double) without the row-max shift
        var z = TestData.RoundToFloat(TestData.Uniform(23, N * C, -3, 3).Select((v, i) => v + (i % 3 == 0 ? 1000 : i % 3 == 1 ? -1000 : 997)).ToArray());
        var labels = Labels(24, N, C);
        using var tz = TestData.Tensor(dev, z, N, C);
        using var tq = dev.Zeros(N, C);
        float loss = SoftmaxCrossEntropy.Forward(tz, labels, tq);
        double expected = SoftmaxCrossEntropy.Reference.Forward(z, N, C, labels);
        Assert.True(expected > 100, $"test data should give a loss in the hundreds, got {expected}");
        // the loss is a difference of values near 1000: float32 keeps ~1e-4 absolute
        Compare.Close("cross-entropy (large logits)", [expected], [loss], 1e-6, 1e-4);
        Compare.Close("softmax (large logits)", Softmax(z, N, C), tq.ToArray(), 1e-4, 1e-7);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void CrossEntropy_forward_matches_reference_on_a_large_batch(string path)
    {
        var dev = TestDevices.Get(path);
        const int n = 331, c = 205; // N*C above the CPU path's parallel threshold; C = Places' class count
        var z = TestData.RoundToFloat(TestData.Uniform(25, n * c, -6, 6));
        var labels = Labels(26, n, c);
        using var tz = TestData.Tensor(dev, z, n, c);
        using var tq = dev.Zeros(n, c);
        float loss = SoftmaxCrossEntropy.Forward(tz, labels, tq);
        Compare.Close("cross-entropy (large batch)", [SoftmaxCrossEntropy.Reference.Forward(z, n, c, labels)], [loss], 1e-6, 1e-7);
        Compare.Close("softmax (large batch)", Softmax(z, n, c), tq.ToArray(), 1e-5, 1e-9);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void CrossEntropy_forward_may_overwrite_the_logits(string path)
    {
        var dev = TestDevices.Get(path);
        var z = TestData.RoundToFloat(TestData.Uniform(27, N * C, -3, 3));
        var labels = Labels(28, N, C);
        using var tz = TestData.Tensor(dev, z, N, C);
        float loss = SoftmaxCrossEntropy.Forward(tz, labels, tz);
        Compare.Close("cross-entropy (in place)", [SoftmaxCrossEntropy.Reference.Forward(z, N, C, labels)], [loss], 1e-6, 1e-7);
        Compare.Close("softmax (in place)", Softmax(z, N, C), tz.ToArray(), 1e-5, 1e-7);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void CrossEntropy_backward_matches_finite_differences(string path)
    {
        var dev = TestDevices.Get(path);
        const double scale = 1.0 / 3; // as the classification term is weighted in training
        var z = TestData.RoundToFloat(TestData.Uniform(29, N * C, -3, 3));
        var labels = Labels(30, N, C);
        var d0 = TestData.RoundToFloat(TestData.Uniform(31, N * C));
        using var tz = TestData.Tensor(dev, z, N, C);
        using var tq = dev.Zeros(N, C);
        using var tdz = TestData.Tensor(dev, d0, N, C); // backward accumulates
        SoftmaxCrossEntropy.Forward(tz, labels, tq);
        SoftmaxCrossEntropy.Backward(tq, labels, tdz, (float)scale);
        var grad = tdz.ToArray().Select((v, i) => (float)(v - d0[i])).ToArray();
        GradCheck.Check("cross-entropy", i => [SoftmaxCrossEntropy.Reference.Forward(i[0], N, C, labels)], [z], [scale], [grad],
            rtol: 1e-3, atol: 1e-6);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void CrossEntropy_rejects_bad_labels_and_shapes(string path)
    {
        var dev = TestDevices.Get(path);
        using var tz = dev.Zeros(N, C);
        using var tq = dev.Zeros(N, C);
        int[] tooLarge = [0, 1, C, 2, 3], negative = [0, 1, 2, -1, 3];
        var e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Forward(tz, tooLarge, tq));
        Assert.Contains($"labels[2] = {C}", e.Message);
        e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Backward(tq, negative, tz));
        Assert.Contains("labels[3] = -1", e.Message);
        e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Forward(tz, [0, 1, 2], tq));
        Assert.Contains("3 labels for 5 rows", e.Message);
        using var wrong = dev.Zeros(N, C + 1);
        e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Forward(tz, [0, 1, 2, 3, 4], wrong));
        Assert.Contains("probabilities", e.Message);
        using var flat = dev.Zeros(N * C);
        e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Forward(flat, [0, 1, 2, 3, 4], tq));
        Assert.Contains("rank 2", e.Message);
    }
}
