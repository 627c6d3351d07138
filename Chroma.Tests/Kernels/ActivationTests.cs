using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests.Kernels;

/// <summary>
/// ReLU and sigmoid through the op harness (Chroma.Kernels/Harness/ElementwiseOps.cs): odd shapes [2, 3, 7, 9];
/// ReLU exact (tolerance 0) with |x| kept at least 0.01 from its kink, sigmoid on [-8, 8] and [-4, 4].
/// </summary>
public class ActivationTests
{
    public static TheoryData<string, string, string> OpsPathsAndCases() => HarnessAssert.OpsPathsAndCases(ReluOp.Instance, SigmoidOp.Instance);

    /// <summary>Check mode: y starts at 7 (forward must overwrite it), then against the float64 reference.</summary>
    [Theory, MemberData(nameof(OpsPathsAndCases))]
    public void Forward_matches_reference(string op, string path, string name)
    {
        HarnessAssert.Check(Ops.Find(op)!, path, name, seed: 4);
    }

    /// <summary>Grad mode: dx starts at 0.5 (backward accumulates), then against central differences of the reference.</summary>
    [Theory, MemberData(nameof(OpsPathsAndCases))]
    public void Backward_matches_finite_differences(string op, string path, string name)
    {
        HarnessAssert.Grad(Ops.Find(op)!, path, name, seed: 5);
    }

    /// <summary>Forward may write in place (y = x), as the network's output layer does.</summary>
    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Sigmoid_forward_in_place_matches_reference(string path)
    {
        var dev = TestDevices.Get(path);
        var x = TestData.RoundToFloat(TestData.Uniform(4, 2 * 3 * 7 * 9, -8, 8));
        using var tx = TestData.Tensor(dev, x, 2, 3, 7, 9);
        Sigmoid.Forward(tx, tx);
        Compare.Close("sigmoid in place", Sigmoid.Reference.Forward(x), tx.ToArray(), 1e-6, 1e-7);
    }
}
