using Chroma.Kernels;

namespace Chroma.Model.Layers;

/// <summary>
/// A convolution (square kernel, zero padding: by default the padding that keeps the size at stride 1,
/// dilation (k / 2) for the network's odd kernels; optionally dilated and grouped, as PyTorch's nn.Conv2d)
/// with its activation: batch norm + ReLU, sigmoid, or none. Weights <c>{name}.weight</c> [out, in/groups, k, k] and
/// <c>{name}.bias</c> [out]; the batch norm is named separately (e.g. low.conv1 / low.bn1).
/// In inference mode the batch norm is folded into the convolution's weights (cached until the
/// parameter store changes) and the ReLU into the convolution's output, so conv + bn + relu is one convolution.
/// </summary>
public sealed class Conv : UnaryModule
{
    readonly ParameterStore.Entry _weight, _bias;
    readonly BatchNormRelu? _bn;
    readonly Activation _activation;
    Tensor? _x, _z, _y, _dz, _dx;

    /// <param name="padding">Zero padding on every side; null (default): "same", dilation * (kernel / 2), which keeps H x W at stride 1 for odd kernels.</param>
    /// <param name="dilation">Spacing of the kernel's taps (default 1).</param>
    /// <param name="groups">Channel groups (default 1); must divide <paramref name="inChannels"/> and <paramref name="outChannels"/>.</param>
    public Conv(ParameterStore store, string name, string? bnName, int inChannels, int outChannels, int kernel, int stride, Activation activation,
        int? padding = null, int dilation = 1, int groups = 1) : base(name)
    {
        if (activation == Activation.BnRelu && bnName is null) throw new ArgumentException($"{name}: batch norm needs a name.");
        if (padding < 0) throw new ArgumentException($"{name}: padding must be at least 0, got {padding}.", nameof(padding));
        if (dilation < 1) throw new ArgumentException($"{name}: dilation must be at least 1, got {dilation}.", nameof(dilation));
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"{name}: {groups} groups must divide the {inChannels} input and {outChannels} output channels.", nameof(groups));
        InChannels = inChannels; OutChannels = outChannels; Kernel = kernel; Stride = stride;
        Dilation = dilation; Groups = groups; Padding = padding ?? dilation * (kernel / 2);
        _activation = activation;
        _weight = store.Parameter($"{name}.weight", ParameterStore.Init.HeNormal, outChannels, inChannels / groups, kernel, kernel);
        _bias = store.Parameter($"{name}.bias", ParameterStore.Init.Zeros, outChannels);
        if (activation == Activation.BnRelu) _bn = new BatchNormRelu(store, bnName!, outChannels);
        Parameters = _bn is null ? [_weight, _bias] : [_weight, _bias, .. _bn.Entries];
    }

    /// <summary>Weight, bias, and the batch norm's four tensors when there is one.</summary>
    public override IReadOnlyList<ParameterStore.Entry> Parameters { get; }
    public int InChannels { get; }
    public int OutChannels { get; }
    public int Kernel { get; }
    public int Stride { get; }
    /// <summary>Zero padding on every side ("same" unless the constructor was given one).</summary>
    public int Padding { get; }
    public int Dilation { get; }
    public int Groups { get; }

    /// <summary>x [N, in, H, W] -> [N, out, H', W'] with H' = (H + 2 padding - dilation (k - 1) - 1) / stride + 1.</summary>
    public override Tensor Forward(Tensor x, bool training)
    {
        if (x.Rank != 4 || x.Dim(1) != InChannels)
            throw new ArgumentException($"{Name}: expected input [N, {InChannels}, H, W], got {x.ShapeString}.");
        _x = x;
        int ho = Conv2d.OutputSize(x.Dim(2), Kernel, Stride, Padding, Dilation), wo = Conv2d.OutputSize(x.Dim(3), Kernel, Stride, Padding, Dilation);
        var z = Ensure(ref _z, x.Device, x.Dim(0), OutChannels, ho, wo);
        if (!training && _bn?.FoldInto(_weight, _bias) is { } folded)
        {
            // Inference: the batch norm lives in the folded weights and the ReLU in the convolution's output pass.
            Conv2d.Forward(x, folded.Weight, folded.Bias, z, Stride, Padding, Dilation, Groups, relu: true);
            return z;
        }
        Conv2d.Forward(x, _weight.Value, _bias.Value, z, Stride, Padding, Dilation, Groups);
        switch (_activation)
        {
            case Activation.BnRelu: return _bn!.Forward(z, training);
            case Activation.SigmoidOut:
                var y = Ensure(ref _y, x.Device, z.Shape.ToArray());
                Sigmoid.Forward(z, y);
                return y;
            default: return z;
        }
    }

    /// <summary>dy: gradient of the output. Accumulates parameter gradients, and dx += input gradient unless null.</summary>
    public override void Backward(Tensor dy, Tensor? dx)
    {
        var dz = dy;
        if (_activation != Activation.None)
        {
            dz = EnsureZeroed(ref _dz, dy.Device, dy.Shape.ToArray());
            if (_activation == Activation.BnRelu) _bn!.Backward(dy, dz);
            else Sigmoid.Backward(_y!, dy, dz);
        }
        Conv2d.Backward(_x!, _weight.Value, dz, dx, _weight.Grad!, _bias.Grad, Stride, Padding, Dilation, Groups);
    }

    /// <summary>Backward into a buffer this layer owns: returns the input gradient (valid until the next call).</summary>
    public Tensor Backward(Tensor dy)
    {
        var dx = EnsureZeroed(ref _dx, dy.Device, _x!.Shape.ToArray());
        Backward(dy, dx);
        return dx;
    }

    public override void Dispose() { _bn?.Dispose(); base.Dispose(); }
}
