using Chroma.Kernels;
using Xunit;

namespace Chroma.Tests.Kernels;

public class UpsampleNearestTests
{
    const int N = 2, C = 3;

    // (H, W): odd sizes catch indexing errors; W = 19 also runs the 8-wide SIMD loops and their tails.
    public static TheoryData<string, int, int> Cases()
    {
        var d = new TheoryData<string, int, int>();
        foreach (var path in TestDevices.Paths)
        {
            d.Add(path, 5, 7);
            d.Add(path, 3, 19);
        }
        return d;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Forward_matches_reference(string path, int h, int w)
    {
        var dev = TestDevices.Get(path);
        var x = TestData.RoundToFloat(TestData.Uniform(21, N * C * h * w));
        using var tx = TestData.Tensor(dev, x, N, C, h, w);
        using var ty = dev.Zeros(N, C, 2 * h, 2 * w);
        UpsampleNearest.Forward(tx, ty);
        Compare.Close("upsample", UpsampleNearest.Reference.Forward(x, N, C, h, w), ty.ToArray(), 0, 0); // copies are exact
    }

    [Theory, MemberData(nameof(Cases))]
    public void Backward_matches_finite_differences(string path, int h, int w)
    {
        var dev = TestDevices.Get(path);
        var x = TestData.RoundToFloat(TestData.Uniform(22, N * C * h * w));
        var dy = TestData.RoundToFloat(TestData.Uniform(23, N * C * 4 * h * w));
        using var tdy = TestData.Tensor(dev, dy, N, C, 2 * h, 2 * w);
        using var tdx = TestData.Tensor(dev, Enumerable.Repeat(0.5, x.Length).ToArray(), N, C, h, w); // backward accumulates
        UpsampleNearest.Backward(tdy, tdx);
        var grad = tdx.ToArray().Select(v => v - 0.5f).ToArray();
        GradCheck.Check("upsample", i => UpsampleNearest.Reference.Forward(i[0], N, C, h, w), [x], dy, [grad]);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Bad_shapes_are_rejected(string path)
    {
        var dev = TestDevices.Get(path);
        using var x = dev.Zeros(N, C, 5, 7);
        using var yWrongSize = dev.Zeros(N, C, 10, 13);
        using var yWrongChannels = dev.Zeros(N, C + 1, 10, 14);
        using var rank3 = dev.Zeros(C, 5, 7);
        using var dxWrong = dev.Zeros(N, C, 4, 7);
        using var dy = dev.Zeros(N, C, 10, 14);
        Assert.Contains("[2, 3, 10, 14]", Assert.Throws<ArgumentException>(() => UpsampleNearest.Forward(x, yWrongSize)).Message);
        Assert.Throws<ArgumentException>(() => UpsampleNearest.Forward(x, yWrongChannels));
        Assert.Contains("rank 4", Assert.Throws<ArgumentException>(() => UpsampleNearest.Forward(rank3, dy)).Message);
        Assert.Throws<ArgumentException>(() => UpsampleNearest.Backward(dy, dxWrong));
    }
}
