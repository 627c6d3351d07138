using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests.Kernels;

public class LinearTests
{
    const int N = 3, In = 17, Out = 11; // odd sizes catch indexing errors

    /// <summary>Every path with every case declared in the op harness (Chroma.Kernels/Harness/LinearOp.cs: N 3, In 17, Out 11, with and without bias).</summary>
    public static TheoryData<string, string> PathsAndCases() => HarnessAssert.PathsAndCases(LinearOp.Instance);

    /// <summary>The harness's check mode: y starts non-zero (forward must overwrite it, not accumulate), then against the float64 reference.</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Forward_matches_reference(string path, string name)
    {
        HarnessAssert.Check(LinearOp.Instance, path, name, seed: 40);
    }

    /// <summary>The harness's grad mode: every gradient starts at 0.5 (backward accumulates), then against central differences.</summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Backward_matches_finite_differences(string path, string name)
    {
        HarnessAssert.Grad(LinearOp.Instance, path, name, seed: 43);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Backward_without_dx_or_db_computes_dw_only(string path)
    {
        var dev = TestDevices.Get(path);
        var x = TestData.RoundToFloat(TestData.Uniform(47, N * In));
        var w = TestData.RoundToFloat(TestData.Uniform(48, Out * In));
        var dy = TestData.RoundToFloat(TestData.Uniform(49, N * Out));
        using var tx = TestData.Tensor(dev, x, N, In);
        using var tw = TestData.Tensor(dev, w, Out, In);
        using var tdy = TestData.Tensor(dev, dy, N, Out);
        using var tdw = dev.Zeros(Out, In);
        Linear.Backward(tx, tw, tdy, null, tdw, null);
        GradCheck.Check("linear dW", i => Linear.Reference.Forward(i[0], N, In, i[1], null, Out), [x, w], dy, [null, tdw.ToArray()]);
        // The inputs are untouched.
        Compare.Close("x", x, tx.ToArray(), 0, 0);
        Compare.Close("W", w, tw.ToArray(), 0, 0);
    }

    /// <summary>The global network's flatten: a conv output [N,C,H,W] enters the FC layer as a reshaped view [N, C*H*W].</summary>
    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Flattened_conv_output_feeds_linear_in_chw_order(string path)
    {
        var dev = TestDevices.Get(path);
        const int n = 2, c = 5, h = 3, wd = 3, features = c * h * wd, outputs = 7;
        var x = TestData.RoundToFloat(TestData.Uniform(50, n * features));
        var w = TestData.RoundToFloat(TestData.Uniform(51, outputs * features));
        var b = TestData.RoundToFloat(TestData.Uniform(52, outputs));
        var dy = TestData.RoundToFloat(TestData.Uniform(53, n * outputs));
        using var conv = TestData.Tensor(dev, x, n, c, h, wd);
        using var dconv = dev.Zeros(n, c, h, wd);
        using var tw = TestData.Tensor(dev, w, outputs, features);
        using var tb = TestData.Tensor(dev, b, outputs);
        using var ty = dev.Zeros(n, outputs);
        using var tdy = TestData.Tensor(dev, dy, n, outputs);
        using var tdw = dev.Zeros(outputs, features);
        using var flat = conv.Reshape(n, features);
        using var dflat = dconv.Reshape(n, features);

        var e = Assert.Throws<ArgumentException>(() => Linear.Forward(conv, tw, tb, ty));
        Assert.Contains($"Reshape({n}, {features})", e.Message);

        Linear.Forward(flat, tw, tb, ty);
        // In C,H,W order the flat index of x[i, ch, r, q] is i*features + (ch*h + r)*wd + q, the reference's layout.
        Compare.Close("linear(flatten)", Linear.Reference.Forward(x, n, features, w, b, outputs), ty.ToArray(), 1e-5, 1e-5);

        // The input gradient lands in the 4-D gradient tensor through the view.
        Linear.Backward(flat, tw, tdy, dflat, tdw, null);
        GradCheck.Check("linear(flatten)", i => Linear.Reference.Forward(i[0], n, features, i[1], b, outputs),
            [x, w], dy, [dconv.ToArray(), tdw.ToArray()]);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Bad_shapes_are_rejected(string path)
    {
        var dev = TestDevices.Get(path);
        using var x = dev.Zeros(N, In);
        using var w = dev.Zeros(Out, In);
        using var wWrong = dev.Zeros(Out, In + 1);
        using var b = dev.Zeros(Out);
        using var bWrong = dev.Zeros(Out + 1);
        using var y = dev.Zeros(N, Out);
        using var yWrong = dev.Zeros(N + 1, Out);
        using var dx = dev.Zeros(N, In);
        using var dxWrong = dev.Zeros(N, In + 2);
        using var dw = dev.Zeros(Out, In);

        var e = Assert.Throws<ArgumentException>(() => Linear.Forward(x, wWrong, b, y));
        Assert.Contains("must be [Out, In] with In = 17", e.Message);
        e = Assert.Throws<ArgumentException>(() => Linear.Forward(x, w, bWrong, y));
        Assert.Contains("b must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => Linear.Forward(x, w, b, yWrong));
        Assert.Contains("y must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => Linear.Backward(x, w, yWrong, dx, dw, b));
        Assert.Contains("dy must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => Linear.Backward(x, w, y, dxWrong, dw, b));
        Assert.Contains("dx must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => Linear.Backward(x, w, y, dx, wWrong, b));
        Assert.Contains("dW must have shape", e.Message);
        e = Assert.Throws<ArgumentException>(() => Linear.Backward(x, w, y, dx, dw, bWrong));
        Assert.Contains("db must have shape", e.Message);
    }
}
