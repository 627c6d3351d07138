using Chroma.Kernels;
using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>
/// Inference folds every batch norm into the convolution or fully connected layer before it
/// (<see cref="BatchNorm.Fold"/>), cached per layer until <see cref="ParameterStore.Version"/> moves.
/// These tests compare folded inference with the unfolded computation (the layers running
/// <see cref="BatchNorm.ForwardInference"/> themselves) and check that the cache follows the weights.
/// </summary>
public sealed class BatchNormFoldingTests : IDisposable
{
    const int N = 2, Size = 64, Classes = 7;
    readonly Device _dev = CpuDevice.Instance;
    readonly ColorizationNetwork _network;
    readonly Tensor _local, _global;

    public BatchNormFoldingTests()
    {
        _network = new ColorizationNetwork(new ColorizerConfig(0.125, Classes, 3, Size), _dev, seed: 3);
        // Non-trivial batch-norm parameters and running statistics (a fresh network has gamma 1,
        // beta 0, mean 0, var 1, which would make the fold nearly an identity).
        int seed = 100;
        foreach (var e in _network.Parameters.Entries)
        {
            (double lo, double hi)? range =
                e.Name.EndsWith(".running_mean", StringComparison.Ordinal) ? (-0.5, 0.5) :
                e.Name.EndsWith(".running_var", StringComparison.Ordinal) ? (0.3, 3) :
                e.Name.Contains(".bn", StringComparison.Ordinal) && e.Name.EndsWith(".weight", StringComparison.Ordinal) ? (0.5, 1.5) :
                e.Name.Contains(".bn", StringComparison.Ordinal) && e.Name.EndsWith(".bias", StringComparison.Ordinal) ? (-0.5, 0.5) :
                e.Name.EndsWith(".bias", StringComparison.Ordinal) ? (-0.2, 0.2) : null;
            if (range is var (lo, hi)) e.Value.CopyFrom(TestData.ToFloat(TestData.Uniform(seed++, e.Length, lo, hi)));
        }
        _network.Parameters.MarkChanged();
        _local = TestData.Tensor(_dev, TestData.Uniform(1, N * 48 * 64, 0, 1), N, 1, 48, 64);
        _global = TestData.Tensor(_dev, TestData.Uniform(2, N * Size * Size, 0, 1), N, 1, Size, Size);
    }

    public void Dispose()
    {
        _network.Parameters.FoldBatchNorm = true;
        _network.Dispose(); _local.Dispose(); _global.Dispose();
    }

    (float[] Ab, float[] Logits) Infer(bool fold)
    {
        _network.Parameters.FoldBatchNorm = fold;
        try
        {
            var (ab, logits) = _network.Forward(_local, _global, training: false);
            return (ab.ToArray(), logits.ToArray());
        }
        finally { _network.Parameters.FoldBatchNorm = true; }
    }

    void AssertFoldedMatchesUnfolded(string when)
    {
        var folded = Infer(fold: true);
        var unfolded = Infer(fold: false);
        Compare.Close($"ab {when}", TestData.ToDouble(unfolded.Ab), folded.Ab, 1e-5, 1e-6);
        Compare.Close($"logits {when}", TestData.ToDouble(unfolded.Logits), folded.Logits, 1e-5, 1e-5);
    }

    static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    [Fact]
    public void Folded_inference_matches_unfolded_batch_norm()
    {
        AssertFoldedMatchesUnfolded("with random weights and statistics");
        // The logits go through three folded FC layers: make sure they are not trivially small.
        Assert.True(Infer(fold: true).Logits.Max(Math.Abs) > 1e-2);
    }

    [Fact]
    public void Changed_weights_reach_the_folded_inference_after_MarkChanged()
    {
        var before = Infer(fold: true);
        var gamma = _network.Parameters["mid.bn1.weight"].Value;
        gamma.CopyFrom(gamma.ToArray().Select(v => v * 1.5f).ToArray());
        var runningVar = _network.Parameters["global.fcbn2.running_var"].Value;
        runningVar.CopyFrom(runningVar.ToArray().Select(v => v * 4f).ToArray());
        var weight = _network.Parameters["color.conv1.weight"].Value;
        weight.CopyFrom(weight.ToArray().Select(v => -v).ToArray());

        // Without MarkChanged the layers keep their folded weights: the documented contract.
        Assert.Equal(before.Ab, Infer(fold: true).Ab);

        _network.Parameters.MarkChanged();
        var after = Infer(fold: true);
        Assert.True(MaxDifference(before.Ab, after.Ab) > 1e-3, "ab did not change");
        Assert.True(MaxDifference(before.Logits, after.Logits) > 1e-3, "logits did not change");
        AssertFoldedMatchesUnfolded("after changing gamma, a running variance and conv weights");
    }

    [Fact]
    public void Inference_after_a_training_step_uses_the_new_weights_and_statistics()
    {
        var before = Infer(fold: true);
        using var x = TestData.Tensor(_dev, TestData.Uniform(3, N * Size * Size, 0, 1), N, 1, Size, Size);
        using var target = TestData.Tensor(_dev, TestData.Uniform(4, N * 2 * (Size / 2) * (Size / 2), 0.2, 0.8), N, 2, Size / 2, Size / 2);
        using var squareAverage = _dev.Zeros(_network.Parameters.Values.Length);
        using var accumulatedDelta = _dev.Zeros(_network.Parameters.Values.Length);
        using var loss = new JointLoss();

        // A training-mode forward alone moves the running statistics; the store notices by itself.
        _network.Forward(x, null, training: true);
        var afterForward = Infer(fold: true);
        Assert.True(MaxDifference(before.Ab, afterForward.Ab) > 1e-5, "running statistics did not reach inference");
        AssertFoldedMatchesUnfolded("after a training forward");

        // A full step, as the trainer takes it.
        _network.Parameters.ZeroGradients();
        var (ab, logits) = _network.Forward(x, null, training: true);
        loss.Backward(_network, ab, logits, target, [0, 1]);
        Adadelta.Step(_network.Parameters.Values, _network.Parameters.Gradients, squareAverage, accumulatedDelta);
        _network.Parameters.MarkChanged();
        var afterStep = Infer(fold: true);
        Assert.True(MaxDifference(afterForward.Logits, afterStep.Logits) > 1e-5, "the step did not reach inference");
        AssertFoldedMatchesUnfolded("after a training step");
    }

    [Fact]
    public void Backward_after_a_folded_inference_is_rejected()
    {
        using var x = TestData.Tensor(_dev, TestData.Uniform(5, N * Size * Size, 0, 1), N, 1, Size, Size);
        _network.Forward(x, null, training: true);
        Infer(fold: true);
        using var target = _dev.Zeros(N, 2, Size / 2, Size / 2);
        using var loss = new JointLoss();
        var (ab, logits) = _network.Forward(x, null, training: false);
        var e = Assert.Throws<InvalidOperationException>(() => loss.Backward(_network, ab, logits, target, [0, 1]));
        Assert.Contains("backward needs a training-mode forward", e.Message);
    }
}
