using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests.Kernels;

/// <summary>
/// The op harness itself (Chroma.Kernels/Harness): the declarations, the shape list both sides read, the three
/// modes (every op runs its check and grad modes in its own tests: Conv2dTests, BatchNormTests, GemmTests ...).
/// </summary>
public class HarnessTests
{
    [Fact]
    public void Every_op_is_declared_once_with_check_cases_and_benchmark_cases()
    {
        Assert.Equal(["conv2d", "linear", "batchnorm", "sigmoid", "relu", "gemm", "mse_loss", "cross_entropy",
            "bilinear_resize", "upsample_nearest", "fusion", "adadelta"], Ops.All.Select(o => o.Name));
        foreach (var op in Ops.All)
        {
            Assert.NotEmpty(op.CheckCases);
            Assert.Equal(op.CheckCases.Count, op.CheckCases.Select(c => c.Name).Distinct().Count());
            Assert.Same(op, Ops.Find(op.Name.ToUpperInvariant()));
        }
        Assert.Null(Ops.Find("nope"));
        // Every op in the list is declared, and every declared op but relu (timed inside conv and batch norm) has benchmark cases.
        Assert.All(OpShapeList.Default.OpNames, name => Assert.NotNull(Ops.Find(name)));
        Assert.All(Ops.All.Where(o => o.Name != "relu"), o => Assert.NotEmpty(o.BenchCases));
    }

    /// <summary>The conv2d list is the paper network's 18 convolutions for a 224x224 batch of 4, at widths 0.25 and 1.</summary>
    [Fact]
    public void The_conv2d_list_holds_the_paper_network_at_both_widths()
    {
        var cases = Conv2dOp.Instance.BenchCases;
        Assert.Equal(36, cases.Count);
        Assert.Equal(18, cases.Count(c => c.Name.StartsWith("w0.25.", StringComparison.Ordinal)));
        var low1 = Conv2dOp.Instance.Case("w1.low1");
        Assert.Equal((4, 1, 224, 64, 2, 0), (low1["N"], low1["Cin"], low1["H"], low1["Cout"], low1["stride"], low1["dx"]));
        var mid1 = Conv2dOp.Instance.Case("w0.25.mid1");
        Assert.Equal((128, 128, 28, 28), (mid1["Cin"], mid1["Cout"], mid1["H"], Conv2dOp.Shape.Of(mid1).Ho));
        Assert.Equal(1, Conv2dOp.Instance.Case("w1.fusion")["k"]);
        // Each bench case gives valid shapes (OutputSize throws otherwise).
        Assert.All(cases, c => Assert.True(Conv2dOp.Shape.Of(c).YCount > 0));
    }

    [Fact]
    public void A_malformed_shape_list_names_the_op_the_case_and_the_key()
    {
        var list = OpShapeList.Parse("""{"comment": "x", "conv2d": [{"name": "a", "N": 1}], "linear": []}""");
        Assert.Equal(1, list.For("conv2d")[0]["N"]);
        Assert.Empty(list.For("sigmoid"));
        var e = Assert.Throws<InvalidDataException>(() => OpShapeList.Parse("""{"conv2d": [{"name": "a", "N": 1.5}]}"""));
        Assert.Contains("conv2d case 'a': \"N\" must be a whole number", e.Message);
        e = Assert.Throws<InvalidDataException>(() => OpShapeList.Parse("""{"conv2d": [{"N": 1}]}"""));
        Assert.Contains("conv2d case 0 has no \"name\"", e.Message);
        Assert.Contains("has no size 'Cin'", Assert.Throws<KeyNotFoundException>(() => Conv2dOp.Shape.Of(list.For("conv2d")[0])).Message);
    }

    [Fact]
    public void A_changed_case_says_so_in_its_name()
    {
        var c = Conv2dOp.Instance.Case("k3s1p1");
        var three = c.With("N", 3);
        Assert.Equal(3, three["N"]);
        Assert.Equal(2, c["N"]);
        Assert.Equal("k3s1p1 N=3", three.Name);
        Assert.Equal(c, Conv2dOp.Case("k3s1p1", 2, 3, 4, 7, 9, 3, 1, 1, bias: true, inputGradient: true));
        Assert.StartsWith("k3s1p1 (N=2, Cin=3, H=7, W=9, Cout=4, k=3", c.ToString());
    }

    /// <summary>The modes find real errors: a wrong reference fails check and grad with the worst element named.</summary>
    [Fact]
    public void Check_and_grad_report_a_wrong_result()
    {
        using var run = new Doubled(SigmoidOp.Instance.Prepare(CpuDevice.Instance, SigmoidOp.Instance.CheckCases[0]));
        Assert.Contains("sigmoid forward n2c3h7w9_range8", OpHarness.Check(run));
        Assert.Contains("gradient of input 0: element", OpHarness.Grad(run));
        Assert.Contains("element 3 is 1, expected 2", Closeness.Mismatch("t", [1, 1, 1, 2], new float[] { 1, 1, 1, 1 }, 0, 0.5));
        Assert.Null(Closeness.Mismatch("t", [1, 1, 1, 2], new float[] { 1, 1, 1, 1.5f }, 0, 0.5));
        Assert.Contains("expected 2 values, got 1", Closeness.Mismatch("t", [1, 2], new float[] { 1 }, 0, 0));
    }

    /// <summary>A run whose reference is twice the op's: every comparison must fail.</summary>
    sealed class Doubled(OpRun inner) : OpRun(inner.Device, inner.Case, 0)
    {
        public override string Label => inner.Label;
        public override double[][] Inputs => inner.Inputs;
        public override double[] Reference(double[][] i) => inner.Reference(i).Select(v => 2 * v).ToArray();
        public override void Forward() => inner.Forward();
        public override Tensor Output => inner.Output;
        public override double[] Dy => inner.Dy;
        public override void Backward() => inner.Backward();
        public override float[]?[] Gradients() => inner.Gradients();
    }

    /// <summary>A forward-only run has no grad mode and is timed forward alone; a case with neither check of its gradients is refused.</summary>
    [Fact]
    public void Runs_without_a_gradient_check_are_refused()
    {
        using var step = AdadeltaOp.Instance.Prepare(CpuDevice.Instance, AdadeltaOp.Instance.CheckCases[0]);
        Assert.False(step.HasBackward);
        Assert.Contains("is forward-only: it has no grad mode", Assert.Throws<InvalidOperationException>(() => OpHarness.Grad(step)).Message);
        Assert.Throws<InvalidOperationException>(() => OpHarness.Time(step, repeats: 1, backward: true));
        Assert.Single(OpHarness.Time(step, repeats: 1, backward: false).Seconds);
        using var sigmoid = SigmoidOp.Instance.Prepare(CpuDevice.Instance, SigmoidOp.Instance.CheckCases[0]);
        using var large = new WithoutCentralDifferences(sigmoid);
        Assert.Contains("too large for central differences and has no backward reference",
            Assert.Throws<InvalidOperationException>(() => OpHarness.Grad(large)).Message);
    }

    /// <summary>A run that says its case is too large for central differences, without a backward reference.</summary>
    sealed class WithoutCentralDifferences(OpRun inner) : OpRun(inner.Device, inner.Case, 0)
    {
        public override string Label => inner.Label;
        public override double[][] Inputs => inner.Inputs;
        public override double[] Reference(double[][] i) => inner.Reference(i);
        public override void Forward() => inner.Forward();
        public override Tensor Output => inner.Output;
        public override double[] Dy => inner.Dy;
        public override void Backward() => inner.Backward();
        public override bool CentralDifferences => false;
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Time_mode_gives_median_and_best_of_the_repeats(string path)
    {
        using var run = Conv2dOp.Instance.Prepare(TestDevices.Get(path), Conv2dOp.Instance.Case("k3s2p1"));
        var forward = OpHarness.Time(run, repeats: 3, backward: false);
        var both = OpHarness.Time(run, repeats: 2, backward: true);
        Assert.Equal(3, forward.Seconds.Count);
        Assert.Equal(2, both.Seconds.Count);
        Assert.InRange(forward.Best, 1e-9, forward.Median);
        Assert.Equal(5, forward.Merge(both).Seconds.Count);
        Assert.Equal(2, new OpTiming([3, 1, 2]).Median);
        Assert.Equal(1, new OpTiming([3, 1, 2]).Best);
        Assert.Equal(2 * 4 * 4 * 5 * 3 * 9, Conv2dOp.Instance.ForwardMultiplyAdds(Conv2dOp.Instance.Case("k3s2p1")));
    }
}
