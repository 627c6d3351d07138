using Chroma.Kernels;
using Chroma.Model;

namespace Chroma.Training;

/// <summary>
/// The paper's training objective: mean squared error of the predicted normalized chrominance
/// plus alpha times the softmax cross-entropy of the scene classes (alpha = 1/300 in the paper).
/// <code>
/// L = mean over N x 2 x H/2 x W/2 of (ab - target)^2  +  alpha * mean over N of CE(logits, label)
/// </code>
/// Without labels the classification term is off. The terms stay on the loss's device: each batch adds
/// its colour and class terms to sums [2] there, and <see cref="ReadMean"/> reads them back (one 8-byte
/// copy) only when someone logs them, so a training step has no host round trip. Owns its gradient
/// buffers (reused across steps).
/// </summary>
public sealed class JointLoss(float alpha = 1f / 300) : IDisposable
{
    Tensor? _dAb, _dLogits, _probabilities, _sums, _colorSum, _classSum, _labels;
    int _batches;

    public float Alpha { get; } = alpha;

    /// <summary>The loss terms of one batch, or their means over several.</summary>
    public readonly record struct Terms(float Total, float Color, float Class);

    /// <summary>Batches added since the last <see cref="ReadMean"/>.</summary>
    public int PendingBatches => _batches;

    /// <summary>
    /// Adds the loss of the network's last forward output to the device-side sums, without gradients
    /// and without reading anything back. <paramref name="labels"/>: [N] class indices on the device
    /// (<see cref="SoftmaxCrossEntropy.CopyLabels"/>), or null for no classification term.
    /// </summary>
    public void Add(Tensor ab, Tensor logits, Tensor targetAb, Tensor? labels)
    {
        EnsureSums(ab.Device);
        MseLoss.Forward(ab, targetAb, _colorSum!, accumulate: true);
        if (labels is not null)
            SoftmaxCrossEntropy.Forward(logits, labels, Ensure(ref _probabilities, logits), _classSum!, accumulate: true);
        _batches++;
    }

    /// <summary>Loss, then backward through <paramref name="network"/> (which must have just run a training forward); nothing is read back.</summary>
    public void Backward(ColorizationNetwork network, Tensor ab, Tensor logits, Tensor targetAb, Tensor? labels)
    {
        Add(ab, logits, targetAb, labels);
        var dAb = Ensure(ref _dAb, ab);
        dAb.Clear();
        MseLoss.Backward(ab, targetAb, dAb);
        Tensor? dLogits = null;
        if (labels is not null)
        {
            dLogits = Ensure(ref _dLogits, logits);
            dLogits.Clear();
            SoftmaxCrossEntropy.Backward(_probabilities!, labels, dLogits, Alpha);
        }
        network.Backward(dAb, dLogits);
    }

    /// <summary>
    /// The mean terms over the batches added since the last call (the one declared readback, "loss
    /// readback"), then starts new sums. Zeros when nothing was added.
    /// </summary>
    public Terms ReadMean()
    {
        if (_batches == 0 || _sums is null) return default;
        Span<float> values = stackalloc float[2];
        _sums.Device.NameNextTransfer("loss readback");
        _sums.CopyTo(values);
        _sums.Clear();
        float color = values[0] / _batches, cls = values[1] / _batches;
        _batches = 0;
        return new Terms(color + Alpha * cls, color, cls);
    }

    /// <summary>Loss of one batch, read back at once (validation, parity checks).</summary>
    public Terms Evaluate(Tensor ab, Tensor logits, Tensor targetAb, int[]? labels)
    {
        if (_batches != 0) throw new InvalidOperationException($"JointLoss.Evaluate: {_batches} training batches not read yet; call ReadMean first.");
        Add(ab, logits, targetAb, labels is null ? null : DeviceLabels(ab.Device, labels, logits.Dim(1)));
        return ReadMean();
    }

    /// <summary>As <see cref="Backward(ColorizationNetwork, Tensor, Tensor, Tensor, Tensor?)"/> with host labels, read back at once.</summary>
    public Terms Backward(ColorizationNetwork network, Tensor ab, Tensor logits, Tensor targetAb, int[]? labels)
    {
        if (_batches != 0) throw new InvalidOperationException($"JointLoss.Backward: {_batches} training batches not read yet; call ReadMean first.");
        Backward(network, ab, logits, targetAb, labels is null ? null : DeviceLabels(ab.Device, labels, logits.Dim(1)));
        return ReadMean();
    }

    Tensor DeviceLabels(Device device, int[] labels, int classes)
    {
        if (_labels is null || _labels.Device != device || _labels.Length != labels.Length)
        {
            _labels?.Dispose();
            _labels = device.Zeros(labels.Length);
        }
        SoftmaxCrossEntropy.CopyLabels(labels, classes, _labels);
        return _labels;
    }

    /// <summary>The sums [2] on <paramref name="device"/> and their two views, made once (a step makes no tensor objects for them).</summary>
    void EnsureSums(Device device)
    {
        if (_sums is not null && _sums.Device == device) return;
        if (_batches != 0) throw new InvalidOperationException("JointLoss: batches from another device are not read yet.");
        _sums?.Dispose();
        _sums = device.Zeros(2);
        _colorSum = _sums.Slice(0, 1);
        _classSum = _sums.Slice(1, 1);
    }

    static Tensor Ensure(ref Tensor? t, Tensor like)
    {
        if (t is not null && t.Device == like.Device && t.Shape.SequenceEqual(like.Shape)) return t;
        t?.Dispose();
        t = like.Device.Zeros(like.Shape.ToArray());
        return t;
    }

    public void Dispose()
    {
        _dAb?.Dispose(); _dLogits?.Dispose(); _probabilities?.Dispose(); _sums?.Dispose(); _labels?.Dispose();
    }
}
