using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests.Kernels;

/// <summary>
/// The losses through the op harness (Chroma.Kernels/Harness/LossOps.cs): MSE on chrominance-like maps [N, 2, H, W]
/// (odd sizes, and one above the CPU path's parallel threshold), softmax cross-entropy on [N, C] scores (small, large
/// logits, in place, a large batch of Places' 205 classes), each with the loss returned to the host and kept on the
/// device; check against the float64 loss (and softmax), grad against the closed form and central differences.
/// </summary>
public class LossTests
{
    // MSE on a chrominance-like map [N, 2, H, W] with odd sizes; classification scores [N, C]
    static readonly int[] MapShape = [2, 2, 7, 9];
    const int N = 5, C = 7;

    public static TheoryData<string, string, string> OpsPathsAndCases() => HarnessAssert.OpsPathsAndCases(MseLossOp.Instance, CrossEntropyOp.Instance);

    /// <summary>Check mode: the loss (over a sentinel) against the float64 loss; cross-entropy's probabilities against the float64 softmax.</summary>
    [Theory, MemberData(nameof(OpsPathsAndCases))]
    public void Forward_matches_reference(string op, string path, string name)
    {
        HarnessAssert.Check(Ops.Find(op)!, path, name, seed: 11);
    }

    /// <summary>
    /// Grad mode with the training step's weights (0.75, 1/3) as the upstream gradient: the gradient (accumulated onto
    /// a start of its own size) against the closed form, then central differences of the float64 loss where affordable.
    /// </summary>
    [Theory, MemberData(nameof(OpsPathsAndCases))]
    public void Backward_matches_closed_form_and_finite_differences(string op, string path, string name)
    {
        HarnessAssert.Grad(Ops.Find(op)!, path, name, seed: 15);
    }

    /// <summary>|z| near 1000: exp overflows float (and double) without the row-max shift; the case's loss is in the hundreds.</summary>
    [Fact]
    public void Large_logits_case_gives_a_loss_in_the_hundreds()
    {
        using var run = CrossEntropyOp.Instance.Prepare(CpuDevice.Instance, CrossEntropyOp.Instance.Case("n5c7_large_logits"), seed: 11);
        double loss = run.Reference(run.Inputs)[0];
        Assert.True(loss > 100, $"test data should give a loss in the hundreds, got {loss}");
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Mse_rejects_mismatched_lengths(string path)
    {
        var dev = TestDevices.Get(path);
        using var tp = dev.Zeros(MapShape);
        using var tt = dev.Zeros(2, 2, 7, 8);
        using var tdp = dev.Zeros(MapShape);
        var e = Assert.Throws<ArgumentException>(() => MseLoss.Forward(tp, tt));
        Assert.Contains("target [2, 2, 7, 8]", e.Message);
        using var small = dev.Zeros(5);
        e = Assert.Throws<ArgumentException>(() => MseLoss.Backward(tp, tp, small));
        Assert.Contains("dPrediction [5]", e.Message);
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void CrossEntropy_rejects_bad_labels_and_shapes(string path)
    {
        var dev = TestDevices.Get(path);
        using var tz = dev.Zeros(N, C);
        using var tq = dev.Zeros(N, C);
        int[] tooLarge = [0, 1, C, 2, 3], negative = [0, 1, 2, -1, 3];
        var e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Forward(tz, tooLarge, tq));
        Assert.Contains($"labels[2] = {C}", e.Message);
        e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Backward(tq, negative, tz));
        Assert.Contains("labels[3] = -1", e.Message);
        e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Forward(tz, [0, 1, 2], tq));
        Assert.Contains("3 labels for 5 rows", e.Message);
        using var wrong = dev.Zeros(N, C + 1);
        e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Forward(tz, [0, 1, 2, 3, 4], wrong));
        Assert.Contains("probabilities", e.Message);
        using var flat = dev.Zeros(N * C);
        e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Forward(flat, [0, 1, 2, 3, 4], tq));
        Assert.Contains("rank 2", e.Message);
    }
}
