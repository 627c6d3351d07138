using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests.Kernels;

public class UpsampleNearestTests
{
    const int N = 2, C = 3;

    /// <summary>
    /// Every path with every case declared in the op harness (Chroma.Kernels/Harness/SpatialOps.cs): N 2, C 3, odd sizes;
    /// W = 19 also runs the 8-wide SIMD loops and their tails.
    /// </summary>
    public static TheoryData<string, string> PathsAndCases() => HarnessAssert.PathsAndCases(UpsampleNearestOp.Instance);

    /// <summary>Check mode: y starts at 7, then against the float64 reference with tolerance 0 (copies are exact).</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Forward_matches_reference(string path, string name)
    {
        HarnessAssert.Check(UpsampleNearestOp.Instance, path, name, seed: 21);
    }

    /// <summary>Grad mode: dx starts at 0.5 (backward accumulates), then against central differences of the reference.</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Backward_matches_finite_differences(string path, string name)
    {
        HarnessAssert.Grad(UpsampleNearestOp.Instance, path, name, seed: 22);
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
