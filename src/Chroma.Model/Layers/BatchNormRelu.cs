using Chroma.Kernels;

namespace Chroma.Model.Layers;

/// <summary>
/// Batch normalization followed by ReLU, the tail of every hidden layer. Parameters are named
/// like PyTorch's BatchNorm: <c>{name}.weight</c>, <c>.bias</c>, <c>.running_mean</c>, <c>.running_var</c>.
/// The ReLU is fused into the batch-norm op: forward writes relu(bn(x)) in the pass that normalizes,
/// and backward masks dy by the output's sign inside the batch-norm backward.
/// </summary>
public sealed class BatchNormRelu : Layer
{
    readonly ParameterStore.Entry _gamma, _beta, _runningMean, _runningVar;
    Tensor? _x, _y, _mean, _invStd;

    public BatchNormRelu(ParameterStore store, string name, int channels)
    {
        Name = name;
        _gamma = store.Parameter($"{name}.weight", ParameterStore.Init.Ones, channels);
        _beta = store.Parameter($"{name}.bias", ParameterStore.Init.Zeros, channels);
        _runningMean = store.StateTensor($"{name}.running_mean", ParameterStore.Init.Zeros, channels);
        _runningVar = store.StateTensor($"{name}.running_var", ParameterStore.Init.Ones, channels);
    }

    public string Name { get; }

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
        }
        else
        {
            _x = null;
            BatchNorm.ForwardInference(x, _gamma.Value, _beta.Value, _runningMean.Value, _runningVar.Value, y, relu: true);
        }
        return y;
    }

    /// <summary>dy: gradient of the output; dx += gradient of the input (training mode only).</summary>
    public void Backward(Tensor dy, Tensor dx)
    {
        if (_x is null) throw new InvalidOperationException($"{Name}: backward needs a training-mode forward first.");
        BatchNorm.Backward(_x, _gamma.Value, _mean!, _invStd!, dy, dx, _gamma.Grad!, _beta.Grad!, reluOutput: _y);
    }
}
