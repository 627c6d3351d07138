using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests.Kernels;

public class FusionTests
{
    const int N = 2, Cl = 3, Cg = 4, H = 5, W = 7; // odd sizes catch indexing errors
    const int Ct = Cl + Cg;

    /// <summary>
    /// Every path with every case declared in the op harness (Chroma.Kernels/Harness/SpatialOps.cs): N 2, Cl 3, Cg 4,
    /// 5x7, backward with both gradients, the global one only, the local one only.
    /// </summary>
    public static TheoryData<string, string> PathsAndCases() => HarnessAssert.PathsAndCases(FusionOp.Instance);

    /// <summary>Check mode: y starts at 7, then against the float64 reference with tolerance 0 (copies are exact).</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Forward_matches_reference(string path, string name)
    {
        HarnessAssert.Check(FusionOp.Instance, path, name, seed: 31);
    }

    /// <summary>Grad mode: the gradients asked for start at 0.5 (backward accumulates), then against central differences.</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Backward_matches_finite_differences(string path, string name)
    {
        HarnessAssert.Grad(FusionOp.Instance, path, name, seed: 33);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Backward_without_gradients_does_nothing(string path)
    {
        var dev = TestDevices.Get(path);
        var values = TestData.RoundToFloat(TestData.Uniform(33, N * Ct * H * W));
        using var dy = TestData.Tensor(dev, values, N, Ct, H, W);
        Fusion.Backward(dy, null, null);
        Compare.Close("dy untouched", values, dy.ToArray(), 0, 0);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Bad_shapes_are_rejected(string path)
    {
        var dev = TestDevices.Get(path);
        using var local = dev.Zeros(N, Cl, H, W);
        using var global = dev.Zeros(N, Cg);
        using var globalOtherBatch = dev.Zeros(N + 1, Cg);
        using var y = dev.Zeros(N, Ct, H, W);
        using var yTooFewChannels = dev.Zeros(N, Ct - 1, H, W);
        using var yOtherSize = dev.Zeros(N, Ct, H, W + 1);
        using var dGlobalTooWide = dev.Zeros(N, Cg + 1);
        using var dLocalTooWide = dev.Zeros(N, Ct + 1, H, W);
        using var dGlobalWiderThanDy = dev.Zeros(N, Ct + 1);
        using var dLocalOtherSize = dev.Zeros(N, Cl, H + 1, W);
        Assert.Contains("batch", Assert.Throws<ArgumentException>(() => Fusion.Forward(local, globalOtherBatch, y)).Message);
        Assert.Contains("[2, 7, 5, 7]", Assert.Throws<ArgumentException>(() => Fusion.Forward(local, global, yTooFewChannels)).Message);
        Assert.Throws<ArgumentException>(() => Fusion.Forward(local, global, yOtherSize));
        Assert.Throws<ArgumentException>(() => Fusion.Forward(local, local, y));
        Assert.Contains("channels", Assert.Throws<ArgumentException>(() => Fusion.Backward(y, local, dGlobalTooWide)).Message);
        Assert.Throws<ArgumentException>(() => Fusion.Backward(y, dLocalTooWide, null));
        Assert.Throws<ArgumentException>(() => Fusion.Backward(y, null, dGlobalWiderThanDy));
        Assert.Throws<ArgumentException>(() => Fusion.Backward(y, dLocalOtherSize, null));
        Assert.Throws<ArgumentException>(() => Fusion.Backward(y, null, globalOtherBatch));
    }
}
