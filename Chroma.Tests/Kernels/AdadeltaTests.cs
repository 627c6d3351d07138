using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests.Kernels;

public class AdadeltaTests
{
    const int Length = 1037; // odd: the CPU path's 8-wide SIMD body leaves a 5-element scalar tail

    /// <summary>
    /// Every path with every case declared in the op harness (Chroma.Kernels/Harness/AdadeltaOp.cs): torch's defaults over
    /// 5 steps; other hyper-parameters, weight decay and a warm state on views into larger buffers over 4; three and a bit
    /// of the CPU path's 65536-element chunks on views at an odd offset over 2.
    /// </summary>
    public static TheoryData<string, string> PathsAndCases() => HarnessAssert.PathsAndCases(AdadeltaOp.Instance);

    /// <summary>
    /// Check mode (the op's only one): the steps against the float64 steps on the same float32-rounded parameters and
    /// gradients: the parameter update, the state, the gradients untouched by weight decay, the buffers' heads untouched.
    /// </summary>
    [Theory, MemberData(nameof(PathsAndCases))]
    public void Steps_match_reference(string path, string name)
    {
        using var run = AdadeltaOp.Instance.Prepare(TestDevices.Get(path), AdadeltaOp.Instance.Case(name), seed: 41);
        Assert.False(run.HasBackward);
        HarnessAssert.Passes(OpHarness.Check(run));
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Step_rejects_mismatched_lengths_and_bad_hyperparameters(string path)
    {
        var dev = TestDevices.Get(path);
        using var p = dev.Zeros(Length);
        using var g = dev.Zeros(Length);
        using var v = dev.Zeros(Length);
        using var u = dev.Zeros(Length);
        using var shortState = dev.Zeros(Length - 1);
        var e = Assert.Throws<ArgumentException>(() => Adadelta.Step(p, g, shortState, u));
        Assert.Contains($"squareAverage [{Length - 1}]", e.Message);
        e = Assert.Throws<ArgumentException>(() => Adadelta.Step(p, g, v, shortState));
        Assert.Contains("accumulatedDelta", e.Message);
        e = Assert.Throws<ArgumentException>(() => Adadelta.Step(p, shortState, v, u));
        Assert.Contains("gradients", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Adadelta.Step(p, g, v, u, rho: 1.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Adadelta.Step(p, g, v, u, weightDecay: -1f));
    }
}
