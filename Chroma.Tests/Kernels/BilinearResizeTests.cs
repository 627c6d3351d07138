using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests.Kernels;

public class BilinearResizeTests
{
    const int N = 2, C = 3;

    /// <summary>
    /// Every path with every case declared in the op harness (Chroma.Kernels/Harness/SpatialOps.cs): N 2, C 3, growing
    /// both axes, shrinking both by non-integer factors, the identity (an exact copy: tolerance 0), mixed, large factors.
    /// </summary>
    public static TheoryData<string, string> PathsAndCases() => HarnessAssert.PathsAndCases(BilinearResizeOp.Instance);

    /// <summary>Check mode: y starts at 7 (forward overwrites it), then against the float64 reference.</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Forward_matches_reference(string path, string name)
    {
        HarnessAssert.Check(BilinearResizeOp.Instance, path, name, seed: 41);
    }

    /// <summary>Grad mode: dx starts at 0.5 (backward accumulates), then against central differences of the reference.</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Backward_matches_finite_differences(string path, string name)
    {
        HarnessAssert.Grad(BilinearResizeOp.Instance, path, name, seed: 43);
    }

    // The GPU backward gathers, for each input, from a candidate range of outputs computed in float;
    // it must hold every output whose window contains that input, for photo-sized axes too.
    [Fact]
    public void Backward_candidate_outputs_cover_every_window()
    {
        int[] sizes = [1, 2, 3, 5, 7, 13, 28, 56, 224, 225, 256, 1000, 3000, 4032];
        foreach (int inSize in sizes)
            foreach (int outSize in sizes)
            {
                var axis = BilinearResize.ResizeAxis.Create(inSize, outSize);
                for (int o = 0; o < outSize; o++)
                {
                    float center = axis.Center(o);
                    for (int i = axis.Start(center); i < axis.End(center); i++)
                        if (axis.FirstOutputOf(i) > o || axis.EndOutputOf(i) <= o)
                            Assert.Fail($"{inSize} -> {outSize}: output {o} reads input {i}, outside its candidates [{axis.FirstOutputOf(i)}, {axis.EndOutputOf(i)}).");
                }
            }
    }

    // Golden values from PyTorch 1.13 in float64, on one plane holding x[k] = ((37 k) mod 23) / 8 - 1:
    //   F.interpolate(x.reshape(1, 1, h, w), size=(ho, wo), mode='bilinear', align_corners=False, antialias=True)
    static readonly double[] Torch5x7To3x4 =
    [
        0.10119047619047625, 0.31642857142857145, 0.31642857142857134, 0.4166666666666667,
        0.2910052910052911, 0.25555555555555554, 0.7027777777777778, 0.3935185185185187,
        0.22874149659863935, 0.14357142857142866, 0.39, 0.4268707482993197,
    ];

    static readonly double[] Torch4x4To9x6 =
    [
        -1.0, -0.125, 0.5625000000000002, -0.18749999999999967, 0.5, 1.375,
        -0.7916666666666667, -0.15625, 0.371527777777778, -0.05902777777777761, 0.46875, 1.1041666666666667,
        -0.23611111111111105, -0.23958333333333334, -0.13773148148148154, 0.28356481481481466, 0.38541666666666663, 0.3819444444444443,
        0.3194444444444442, -0.2430555555555558, -0.5405092592592595, 0.5196759259259257, 0.30208333333333337, -0.1805555555555558,
        0.875, 0.3125, -0.19791666666666666, 0.010416666666666574, 0.21875, 0.375,
        1.4305555555555554, 0.8680555555555552, 0.14467592592592587, -0.498842592592592, 0.1354166666666667, 0.9305555555555552,
        0.8680555555555556, 0.8645833333333334, 0.6736111111111113, -0.07638888888888863, 0.05208333333333334, 0.36805555555555564,
        0.14583333333333381, 0.78125, 1.2291666666666665, 0.47916666666666663, -0.031249999999999944, -0.3541666666666662,
        -0.125, 0.75, 1.4375000000000002, 0.6875000000000003, -0.0625, -0.625,
    ];

    public static TheoryData<string, string> GoldenCases()
    {
        var d = new TheoryData<string, string>();
        foreach (var path in TestDevices.Paths) { d.Add(path, "5x7->3x4"); d.Add(path, "4x4->9x6"); }
        return d;
    }

    [Theory, MemberData(nameof(GoldenCases))]
    public void Matches_pytorch_antialiased_bilinear(string path, string resize)
    {
        var (h, w, ho, wo, expected) = resize == "5x7->3x4" ? (5, 7, 3, 4, Torch5x7To3x4) : (4, 4, 9, 6, Torch4x4To9x6);
        var x = Enumerable.Range(0, h * w).Select(k => (37 * k % 23) / 8.0 - 1.0).ToArray(); // exact in float32
        Compare.Close($"reference {resize}", expected, BilinearResize.Reference.Forward(x, 1, 1, h, w, ho, wo), 1e-12, 1e-12);
        var dev = TestDevices.Get(path);
        using var tx = TestData.Tensor(dev, x, 1, 1, h, w);
        using var ty = dev.Zeros(1, 1, ho, wo);
        BilinearResize.Forward(tx, ty);
        Compare.Close($"{path} {resize}", expected, ty.ToArray(), 1e-6, 1e-6);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Bad_shapes_are_rejected(string path)
    {
        var dev = TestDevices.Get(path);
        using var x = dev.Zeros(N, C, 5, 7);
        using var yOtherBatch = dev.Zeros(N + 1, C, 9, 9);
        using var yOtherChannels = dev.Zeros(N, C + 1, 9, 9);
        using var yEmpty = dev.Zeros(N, C, 0, 9);
        using var rank3 = dev.Zeros(C, 9, 9);
        using var dy = dev.Zeros(N, C, 9, 9);
        Assert.Contains("N and C", Assert.Throws<ArgumentException>(() => BilinearResize.Forward(x, yOtherBatch)).Message);
        Assert.Throws<ArgumentException>(() => BilinearResize.Forward(x, yOtherChannels));
        Assert.Contains("positive", Assert.Throws<ArgumentException>(() => BilinearResize.Forward(x, yEmpty)).Message);
        Assert.Contains("rank 4", Assert.Throws<ArgumentException>(() => BilinearResize.Forward(x, rank3)).Message);
        Assert.Throws<ArgumentException>(() => BilinearResize.Backward(dy, yOtherChannels));
        Assert.Throws<ArgumentException>(() => BilinearResize.Backward(rank3, x));
    }
}
