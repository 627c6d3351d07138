using Chroma.Kernels;

namespace Chroma.Model.Layers;

/// <summary>
/// A fully connected layer with its activation (batch norm + ReLU, or none for logits). Weights
/// <c>{name}.weight</c> [out, in] and <c>{name}.bias</c> [out], PyTorch's nn.Linear layout.
/// In inference mode the batch norm is folded into the weights (cached until the parameter store changes).
/// </summary>
public sealed class Dense : UnaryModule
{
    readonly ParameterStore.Entry _weight, _bias;
    readonly BatchNormRelu? _bn;
    Tensor? _x, _z, _dz, _dx;

    public Dense(ParameterStore store, string name, string? bnName, int inFeatures, int outFeatures, Activation activation) : base(name)
    {
        if (activation == Activation.SigmoidOut) throw new ArgumentException($"{name}: sigmoid is not used after a dense layer.");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        _weight = store.Parameter($"{name}.weight", ParameterStore.Init.HeNormal, outFeatures, inFeatures);
        _bias = store.Parameter($"{name}.bias", ParameterStore.Init.Zeros, outFeatures);
        if (activation == Activation.BnRelu) _bn = new BatchNormRelu(store, bnName ?? throw new ArgumentException($"{name}: batch norm needs a name."), outFeatures);
        Parameters = _bn is null ? [_weight, _bias] : [_weight, _bias, .. _bn.Entries];
    }

    /// <summary>Weight, bias, and the batch norm's four tensors when there is one.</summary>
    public override IReadOnlyList<ParameterStore.Entry> Parameters { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }

    /// <summary>x [N, in] -> [N, out].</summary>
    public override Tensor Forward(Tensor x, bool training)
    {
        if (x.Rank != 2 || x.Dim(1) != InFeatures)
            throw new ArgumentException($"{Name}: expected input [N, {InFeatures}], got {x.ShapeString}.");
        _x = x;
        var z = Ensure(ref _z, x.Device, x.Dim(0), OutFeatures);
        if (!training && _bn?.FoldInto(_weight, _bias) is { } folded)
        {
            // Inference: the batch norm lives in the folded weights; only the ReLU remains.
            Linear.Forward(x, folded.Weight, folded.Bias, z);
            Relu.Forward(z, z);
            return z;
        }
        Linear.Forward(x, _weight.Value, _bias.Value, z);
        return _bn is null ? z : _bn.Forward(z, training);
    }

    /// <summary>Accumulates parameter gradients, and dx += input gradient unless null.</summary>
    public override void Backward(Tensor dy, Tensor? dx)
    {
        var dz = dy;
        if (_bn is not null)
        {
            dz = EnsureZeroed(ref _dz, dy.Device, dy.Shape.ToArray());
            _bn.Backward(dy, dz);
        }
        Linear.Backward(_x!, _weight.Value, dz, dx, _weight.Grad!, _bias.Grad);
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
