using Chroma.Kernels;
using Chroma.Model;

namespace Chroma.Training;

/// <summary>
/// One optimizer step of the paper's training on a batch, on the network's device:
/// <code>
/// upload images [B,1,S,S], target a*b* [B,2,S/2,S/2], labels [B]    (the step's only copies)
/// forward (training mode) -> joint loss added to device-side sums -> backward -> ADADELTA
/// </code>
/// Nothing is read back: the loss stays on the device until <see cref="ReadLoss"/> (when it is
/// logged). Every buffer is allocated by the first step; later steps allocate nothing on the device
/// (the GPU's execution log checks this in the tests).
/// </summary>
public sealed class TrainingStep : IDisposable
{
    readonly ColorizationNetwork _network;
    readonly Tensor _input, _target, _labels;
    readonly bool _classification;
    readonly float _rho, _eps;

    /// <param name="classification">Use the classification term (the batches carry labels).</param>
    public TrainingStep(ColorizationNetwork network, int batchSize, bool classification, float alpha = 1f / 300,
        float rho = Adadelta.DefaultRho, float eps = Adadelta.DefaultEps)
    {
        _network = network;
        var device = network.Device;
        int s = network.Config.InputSize;
        _input = device.Zeros(batchSize, 1, s, s);
        _target = device.Zeros(batchSize, 2, s / 2, s / 2);
        _labels = device.Zeros(batchSize);
        _classification = classification;
        (_rho, _eps) = (rho, eps);
        SquareAverage = device.Zeros(network.Parameters.Values.Length);
        AccumulatedDelta = device.Zeros(network.Parameters.Values.Length);
        Loss = new JointLoss(alpha);
    }

    /// <summary>ADADELTA's step multiplier (1: the plain method); may be changed between steps.</summary>
    public float LearningRate { get; set; } = 1f;

    public int BatchSize => _input.Dim(0);

    /// <summary>ADADELTA's running average of squared gradients (checkpointed).</summary>
    public Tensor SquareAverage { get; }

    /// <summary>ADADELTA's running average of squared updates (checkpointed).</summary>
    public Tensor AccumulatedDelta { get; }

    public JointLoss Loss { get; }

    /// <summary>
    /// Runs one step. <paramref name="inputs"/>: B x S x S normalized L*; <paramref name="targets"/>:
    /// B x 2 x S/2 x S/2 normalized a*b*; <paramref name="labels"/>: B class indices (ignored, and may be
    /// null, when the step does not classify).
    /// </summary>
    public void Run(ReadOnlySpan<float> inputs, ReadOnlySpan<float> targets, ReadOnlySpan<int> labels)
    {
        var device = _network.Device;
        device.NameNextTransfer("batch images");
        _input.CopyFrom(inputs);
        device.NameNextTransfer("batch targets");
        _target.CopyFrom(targets);
        if (_classification)
        {
            device.NameNextTransfer("batch labels");
            SoftmaxCrossEntropy.CopyLabels(labels, _network.Config.Classes, _labels);
        }
        _network.Parameters.ZeroGradients();
        var (ab, logits) = _network.Forward(_input, null, training: true);
        Loss.Backward(_network, ab, logits, _target, _classification ? _labels : null);
        Adadelta.Step(_network.Parameters.Values, _network.Parameters.Gradients, SquareAverage, AccumulatedDelta, _rho, _eps, LearningRate);
        _network.Parameters.MarkChanged();
    }

    /// <summary>Mean loss terms of the steps since the last read (one 8-byte readback).</summary>
    public JointLoss.Terms ReadLoss() => Loss.ReadMean();

    public void Dispose()
    {
        _input.Dispose(); _target.Dispose(); _labels.Dispose();
        SquareAverage.Dispose(); AccumulatedDelta.Dispose();
        Loss.Dispose();
    }
}
