using Chroma.Kernels;
using Xunit;

namespace Chroma.Tests.Kernels;

public class FusionTests
{
    const int N = 2, Cl = 3, Cg = 4, H = 5, W = 7; // odd sizes catch indexing errors
    const int Ct = Cl + Cg;
    static readonly double[] Local = TestData.RoundToFloat(TestData.Uniform(31, N * Cl * H * W));
    static readonly double[] Global = TestData.RoundToFloat(TestData.Uniform(32, N * Cg));
    static readonly double[] Dy = TestData.RoundToFloat(TestData.Uniform(33, N * Ct * H * W));

    static double[] Reference(double[][] i) => Fusion.Reference.Forward(i[0], N, Cl, H, W, i[1], Cg);

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Forward_matches_reference(string path)
    {
        var dev = TestDevices.Get(path);
        using var local = TestData.Tensor(dev, Local, N, Cl, H, W);
        using var global = TestData.Tensor(dev, Global, N, Cg);
        using var y = TestData.Tensor(dev, TestData.Uniform(34, N * Ct * H * W), N, Ct, H, W); // forward overwrites
        Fusion.Forward(local, global, y);
        Compare.Close("fusion", Reference([Local, Global]), y.ToArray(), 0, 0); // copies are exact
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Backward_matches_finite_differences(string path)
    {
        var dev = TestDevices.Get(path);
        var (dLocal, dGlobal) = RunBackward(dev, withLocal: true, withGlobal: true);
        GradCheck.Check("fusion", Reference, [Local, Global], Dy, [dLocal, dGlobal]);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Backward_without_local_gradient_computes_global_only(string path)
    {
        var dev = TestDevices.Get(path);
        var (_, dGlobal) = RunBackward(dev, withLocal: false, withGlobal: true);
        GradCheck.Check("fusion (global only)", Reference, [Local, Global], Dy, [null, dGlobal]);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Backward_without_global_gradient_computes_local_only(string path)
    {
        var dev = TestDevices.Get(path);
        var (dLocal, _) = RunBackward(dev, withLocal: true, withGlobal: false);
        GradCheck.Check("fusion (local only)", Reference, [Local, Global], Dy, [dLocal, null]);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Backward_without_gradients_does_nothing(string path)
    {
        var dev = TestDevices.Get(path);
        using var dy = TestData.Tensor(dev, Dy, N, Ct, H, W);
        Fusion.Backward(dy, null, null);
        Compare.Close("dy untouched", Dy, dy.ToArray(), 0, 0);
    }

    /// <summary>Runs Backward into gradients that start at 0.5 (it accumulates) and returns what it added.</summary>
    static (float[]? DLocal, float[]? DGlobal) RunBackward(Device dev, bool withLocal, bool withGlobal)
    {
        using var dy = TestData.Tensor(dev, Dy, N, Ct, H, W);
        using var dLocal = withLocal ? TestData.Tensor(dev, Enumerable.Repeat(0.5, Local.Length).ToArray(), N, Cl, H, W) : null;
        using var dGlobal = withGlobal ? TestData.Tensor(dev, Enumerable.Repeat(0.5, Global.Length).ToArray(), N, Cg) : null;
        Fusion.Backward(dy, dLocal, dGlobal);
        return (dLocal?.ToArray().Select(v => v - 0.5f).ToArray(), dGlobal?.ToArray().Select(v => v - 0.5f).ToArray());
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
