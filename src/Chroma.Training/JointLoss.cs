using Chroma.Kernels;
using Chroma.Model;

namespace Chroma.Training;

/// <summary>
/// The paper's training objective: mean squared error of the predicted normalized chrominance
/// plus alpha times the softmax cross-entropy of the scene classes (alpha = 1/300 in the paper).
/// <code>
/// L = mean over N x 2 x H/2 x W/2 of (ab - target)^2  +  alpha * mean over N of CE(logits, label)
/// </code>
/// Without labels the classification term is off. Owns its gradient buffers (reused across steps).
/// </summary>
public sealed class JointLoss(float alpha = 1f / 300) : IDisposable
{
    Tensor? _dAb, _dLogits, _probabilities;

    public float Alpha { get; } = alpha;

    /// <summary>The loss terms of one batch.</summary>
    public readonly record struct Terms(float Total, float Color, float Class);

    /// <summary>Loss of the network's last forward output, without gradients.</summary>
    public Terms Evaluate(Tensor ab, Tensor logits, Tensor targetAb, int[]? labels)
    {
        float color = MseLoss.Forward(ab, targetAb);
        float cls = 0;
        if (labels is not null)
        {
            var probs = Ensure(ref _probabilities, logits);
            cls = SoftmaxCrossEntropy.Forward(logits, labels, probs);
        }
        return new Terms(color + Alpha * cls, color, cls);
    }

    /// <summary>Loss, then backward through <paramref name="network"/> (which must have just run a training forward).</summary>
    public Terms Backward(ColorizationNetwork network, Tensor ab, Tensor logits, Tensor targetAb, int[]? labels)
    {
        var terms = Evaluate(ab, logits, targetAb, labels);
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
        return terms;
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
        _dAb?.Dispose(); _dLogits?.Dispose(); _probabilities?.Dispose();
    }
}
