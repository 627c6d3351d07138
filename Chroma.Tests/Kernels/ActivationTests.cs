using Chroma.Kernels;
using Xunit;

namespace Chroma.Tests.Kernels;

public class ActivationTests
{
    const int N = 2, C = 3, H = 7, W = 9; // odd shapes catch indexing errors
    static readonly int[] Shape4 = [N, C, H, W];
    static int Count => N * C * H * W;

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Relu_forward_matches_reference(string path)
    {
        var dev = TestDevices.Get(path);
        var x = TestData.RoundToFloat(TestData.Uniform(1, Count));
        using var tx = TestData.Tensor(dev, x, Shape4);
        using var ty = dev.Zeros(Shape4);
        Relu.Forward(tx, ty);
        Compare.Close("relu", Relu.Reference.Forward(x), ty.ToArray(), 0, 0);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Relu_backward_matches_finite_differences(string path)
    {
        var dev = TestDevices.Get(path);
        // keep |x| away from 0, where ReLU has no derivative
        var x = TestData.RoundToFloat(TestData.Uniform(2, Count).Select(v => v + Math.Sign(v) * 0.01).ToArray());
        var dy = TestData.RoundToFloat(TestData.Uniform(3, Count));
        using var tx = TestData.Tensor(dev, x, Shape4);
        using var ty = dev.Zeros(Shape4);
        using var tdy = TestData.Tensor(dev, dy, Shape4);
        using var tdx = TestData.Tensor(dev, Enumerable.Repeat(0.5, Count).ToArray(), Shape4); // backward accumulates
        Relu.Forward(tx, ty);
        Relu.Backward(ty, tdy, tdx);
        var grad = tdx.ToArray().Select(v => v - 0.5f).ToArray();
        GradCheck.Check("relu", i => Relu.Reference.Forward(i[0]), [x], dy, [grad]);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Sigmoid_forward_matches_reference(string path)
    {
        var dev = TestDevices.Get(path);
        var x = TestData.RoundToFloat(TestData.Uniform(4, Count, -8, 8));
        using var tx = TestData.Tensor(dev, x, Shape4);
        using var ty = dev.Zeros(Shape4);
        Sigmoid.Forward(tx, ty);
        Compare.Close("sigmoid", Sigmoid.Reference.Forward(x), ty.ToArray(), 1e-6, 1e-7);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Sigmoid_backward_matches_finite_differences(string path)
    {
        var dev = TestDevices.Get(path);
        var x = TestData.RoundToFloat(TestData.Uniform(5, Count, -4, 4));
        var dy = TestData.RoundToFloat(TestData.Uniform(6, Count));
        using var tx = TestData.Tensor(dev, x, Shape4);
        using var ty = dev.Zeros(Shape4);
        using var tdy = TestData.Tensor(dev, dy, Shape4);
        using var tdx = dev.Zeros(Shape4);
        Sigmoid.Forward(tx, ty);
        Sigmoid.Backward(ty, tdy, tdx);
        GradCheck.Check("sigmoid", i => Sigmoid.Reference.Forward(i[0]), [x], dy, [tdx.ToArray()]);
    }
}
