using Chroma.Kernels;
using Chroma.Model;
using Chroma.Model.Layers;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>
/// The convolution layer's options: padding ("same" by default, as every layer of the network uses it;
/// explicit values), dilation and groups, passed through to <see cref="Conv2d"/>. The whole network with
/// default layers is checked against PyTorch by <see cref="GoldenParityTests"/>.
/// </summary>
public sealed class ConvLayerTests
{
    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(3, 1, 1)]
    [InlineData(3, 2, 1)]
    [InlineData(5, 1, 2)]
    public void Default_padding_is_same_as_before(int kernel, int stride, int expectedPadding)
    {
        using var store = new ParameterStore(CpuDevice.Instance);
        var conv = new Conv(store, "c", null, 3, 4, kernel, stride, Activation.None);
        Assert.Equal(expectedPadding, conv.Padding);   // kernel / 2: what the layer hard-wired before it took a padding
        Assert.Equal(1, conv.Dilation);
        Assert.Equal(1, conv.Groups);
        Assert.Equal([4, 3, kernel, kernel], store["c.weight"].Shape);
        store.Build(seed: 1);
        using var x = CpuDevice.Instance.Zeros(2, 3, 9, 11);
        var y = conv.Forward(x, training: true);
        Assert.Equal([2, 4, (9 - 1) / stride + 1, (11 - 1) / stride + 1], y.Shape.ToArray());
        conv.Dispose();
    }

    /// <summary>(H + 2 padding - dilation (k - 1) - 1) / stride + 1 for explicit paddings, with and without dilation.</summary>
    [Theory]
    [InlineData(3, 1, 0, 1, 7, 9)]     // padding 0: the map shrinks by k - 1
    [InlineData(3, 1, 2, 1, 11, 13)]   // padding 2: grows by 2
    [InlineData(3, 2, 0, 1, 4, 5)]
    [InlineData(3, 1, 0, 2, 5, 7)]     // dilation 2 spans 5 pixels
    [InlineData(3, 1, null, 2, 9, 11)] // default padding with dilation: dilation * (k / 2) keeps the size
    [InlineData(5, 2, 2, 1, 5, 6)]
    public void Explicit_padding_gives_the_expected_output_size(int kernel, int stride, int? padding, int dilation, int ho, int wo)
    {
        using var store = new ParameterStore(CpuDevice.Instance);
        var conv = new Conv(store, "c", null, 2, 3, kernel, stride, Activation.None, padding: padding, dilation: dilation);
        Assert.Equal(padding ?? dilation * (kernel / 2), conv.Padding);
        store.Build(seed: 1);
        using var x = CpuDevice.Instance.Zeros(1, 2, 9, 11);
        var y = conv.Forward(x, training: true);
        Assert.Equal([1, 3, ho, wo], y.Shape.ToArray());
        conv.Dispose();
    }

    /// <summary>A dilated, grouped, explicitly padded layer computes Conv2d's reference, and its backward fills the store's gradients.</summary>
    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Grouped_dilated_layer_matches_the_reference(string path)
    {
        var dev = TestDevices.Get(path);
        const int n = 2, cin = 4, cout = 6, h = 11, w = 13, k = 3, stride = 2, pad = 0, dil = 2, groups = 2;
        using var store = new ParameterStore(dev);
        var conv = new Conv(store, "c", null, cin, cout, k, stride, Activation.None, padding: pad, dilation: dil, groups: groups);
        Assert.Equal([cout, cin / groups, k, k], store["c.weight"].Shape);
        store.Build(seed: 5);
        var bias = TestData.RoundToFloat(TestData.Uniform(6, cout));
        store["c.bias"].Value.CopyFrom(TestData.ToFloat(bias));
        var weight = TestData.ToDouble(store["c.weight"].Value.ToArray());
        var xv = TestData.RoundToFloat(TestData.Uniform(7, n * cin * h * w));
        using var x = TestData.Tensor(dev, xv, n, cin, h, w);

        var y = conv.Forward(x, training: true);
        int ho = (h - dil * (k - 1) - 1) / stride + 1, wo = (w - dil * (k - 1) - 1) / stride + 1;
        Assert.Equal([n, cout, ho, wo], y.Shape.ToArray());
        Compare.Close("layer forward", Conv2d.Reference.Forward(xv, n, cin, h, w, weight, bias, cout, k, stride, pad, dil, groups), y.ToArray(), 1e-5, 1e-5);

        var dy = TestData.RoundToFloat(TestData.Uniform(8, n * cout * ho * wo));
        using var tdy = TestData.Tensor(dev, dy, n, cout, ho, wo);
        store.ZeroGradients();
        var dx = conv.Backward(tdy);
        var r = Conv2d.Reference.Backward(xv, n, cin, h, w, weight, dy, cout, k, stride, pad, dil, groups);
        Compare.Close("layer dx", r.Dx, dx.ToArray(), 1e-5, 1e-5);
        Compare.Close("layer dw", r.Dw, store["c.weight"].Grad!.ToArray(), 1e-5, 1e-4);
        Compare.Close("layer db", r.Db, store["c.bias"].Grad!.ToArray(), 1e-5, 1e-4);
        conv.Dispose();
    }

    [Fact]
    public void Bad_options_are_rejected()
    {
        using var store = new ParameterStore(CpuDevice.Instance);
        Assert.Contains("groups must divide the 4 input and 6 output channels",
            Assert.Throws<ArgumentException>(() => new Conv(store, "a", null, 4, 6, 3, 1, Activation.None, groups: 4)).Message);
        Assert.Contains("padding must be at least 0",
            Assert.Throws<ArgumentException>(() => new Conv(store, "b", null, 4, 6, 3, 1, Activation.None, padding: -1)).Message);
        Assert.Contains("dilation must be at least 1",
            Assert.Throws<ArgumentException>(() => new Conv(store, "c", null, 4, 6, 3, 1, Activation.None, dilation: 0)).Message);
    }
}
