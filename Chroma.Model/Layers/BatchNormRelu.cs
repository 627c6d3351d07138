using Chroma.Kernels;

namespace Chroma.Model.Layers;

/// <summary>
/// Batch normalization followed by ReLU, the tail of every hidden layer. Parameters are named
/// like PyTorch's BatchNorm: <c>{name}.weight</c>, <c>.bias</c>, <c>.running_mean</c>, <c>.running_var</c>.
/// The ReLU is fused into the batch-norm op: forward writes relu(bn(x)) in the pass that normalizes,
/// and backward masks dy by the output's sign inside the batch-norm backward.
/// </summary>
/// <remarks>
/// In inference mode the layer before it (<see cref="Conv"/>, <see cref="Dense"/>) folds the batch norm
/// into its own weights with <see cref="FoldInto"/>, leaving only the ReLU; <see cref="Forward"/> in
/// inference mode is the unfolded computation.
/// </remarks>
public sealed class BatchNormRelu : Layer
{
    readonly ParameterStore _store;
    readonly ParameterStore.Entry _gamma, _beta, _runningMean, _runningVar;
    Tensor? _x, _y, _mean, _invStd, _foldedWeight, _foldedBias;
    long _foldedVersion = -1;

    public BatchNormRelu(ParameterStore store, string name, int channels)
    {
        Name = name;
        _store = store;
        _gamma = store.Parameter($"{name}.weight", ParameterStore.Init.Ones, channels);
        _beta = store.Parameter($"{name}.bias", ParameterStore.Init.Zeros, channels);
        _runningMean = store.StateTensor($"{name}.running_mean", ParameterStore.Init.Zeros, channels);
        _runningVar = store.StateTensor($"{name}.running_var", ParameterStore.Init.Ones, channels);
        Entries = [_gamma, _beta, _runningMean, _runningVar];
    }

    public string Name { get; }

    /// <summary>weight, bias, running_mean, running_var.</summary>
    public IReadOnlyList<ParameterStore.Entry> Entries { get; }

    /// <summary>x [N,C,H,W] or [N,C] -> relu(bn(x)), same shape.</summary>
    public Tensor Forward(Tensor x, bool training)
    {
        var y = Ensure(ref _y, x.Device, x.Shape.ToArray());
        if (training)
        {
            int c = x.Dim(1);
            _x = x;
            var mean = Ensure(ref _mean, x.Device, c);
            var invStd = Ensure(ref _invStd, x.Device, c);
            BatchNorm.ForwardTraining(x, _gamma.Value, _beta.Value, _runningMean.Value, _runningVar.Value, y, mean, invStd, relu: true);
            _store.MarkChanged();   // the running statistics moved
        }
        else
        {
            _x = null;
            BatchNorm.ForwardInference(x, _gamma.Value, _beta.Value, _runningMean.Value, _runningVar.Value, y, relu: true);
        }
        return y;
    }

    /// <summary>
    /// Inference mode folded into the preceding layer: returns (W', b') such that that layer with them
    /// computes bn(layer(x)) (see <see cref="BatchNorm.Fold"/>); the caller applies the ReLU. Cached in
    /// buffers this layer owns, recomputed when the store's <see cref="ParameterStore.Version"/> moves.
    /// Null when the store has folding turned off (tests compare both computations).
    /// </summary>
    internal (Tensor Weight, Tensor Bias)? FoldInto(ParameterStore.Entry weight, ParameterStore.Entry bias)
    {
        if (!_store.FoldBatchNorm) return null;
        _x = null;   // no backward after an inference forward
        long version = _store.Version;
        if (_foldedWeight is null || _foldedBias is null || version != _foldedVersion)
        {
            var w = Ensure(ref _foldedWeight, weight.Value.Device, weight.Shape);
            var b = Ensure(ref _foldedBias, bias.Value.Device, bias.Shape);
            BatchNorm.Fold(weight.Value, bias.Value, _gamma.Value, _beta.Value, _runningMean.Value, _runningVar.Value, w, b);
            _foldedVersion = version;
        }
        return (_foldedWeight!, _foldedBias!);
    }

    /// <summary>dy: gradient of the output; dx += gradient of the input (training mode only).</summary>
    public void Backward(Tensor dy, Tensor dx)
    {
        if (_x is null) throw new InvalidOperationException($"{Name}: backward needs a training-mode forward first.");
        BatchNorm.Backward(_x, _gamma.Value, _mean!, _invStd!, dy, dx, _gamma.Grad!, _beta.Grad!, reluOutput: _y);
    }
}
