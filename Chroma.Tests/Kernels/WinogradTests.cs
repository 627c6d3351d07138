using Chroma.Kernels;
using Chroma.Kernels.Harness;
using Xunit;
using Algorithm = Chroma.Kernels.Conv2d.CpuAlgorithm;
using Kernel = Chroma.Kernels.Gemm.CpuKernel;

namespace Chroma.Tests.Kernels;

/// <summary>
/// The CPU path's Winograd F(4x4, 3x3) convolution (forward, input and weight gradients), forced through the op harness's
/// conv2d cases "winograd." (Chroma.Kernels/Harness/Conv2dOp.cs: maps not a multiple of the 4x4 tile, partial last tile
/// panel, output channels not a multiple of the micro-tile's 6 rows, more than one 256-channel k block, several chunks of
/// tiles, every padding it takes) on every vector width the machine accelerates; plus what the harness does not express:
/// bitwise determinism across chunkings, the float32 error of the tile size, the algorithm choice.
/// </summary>
public class WinogradTests
{
    /// <summary>A Winograd-shaped convolution (3x3, stride 1) for the tests that are not value checks.</summary>
    public sealed record Case(int N, int Cin, int Cout, int H, int W, int Pad)
    {
        public int Ho => H + 2 * Pad - 2;
        public int Wo => W + 2 * Pad - 2;
        public int[] XShape => [N, Cin, H, W];
        public int[] WShape => [Cout, Cin, 3, 3];
        public int[] YShape => [N, Cout, Ho, Wo];
        public double[] Reference(double[] x, double[] w, double[]? b) => Conv2d.Reference.Forward(x, N, Cin, H, W, w, b, Cout, 3, 1, Pad);
    }

    static IEnumerable<OpCase> WinogradCases =>
        Conv2dOp.Instance.CheckCases.Where(c => Conv2dOp.CpuAlgorithmOf(c) == Algorithm.Winograd4x4);

    public static TheoryData<string, string> CasesAndKernels()
    {
        var d = new TheoryData<string, string>();
        foreach (var c in WinogradCases)
            foreach (var k in CpuKernelSize.Accelerated())
                d.Add(c.Name, k.ToString());
        return d;
    }

    static OpCase On(string name, string kernel) => CpuKernelSize.With(Conv2dOp.Instance.Case(name), Enum.Parse<Kernel>(kernel));

    /// <summary>
    /// Check mode: sums of Cin*9 products of values in [-1, 1]; the transforms' float32 error is a few ulps of the largest
    /// partial sums (see Float32_error_of_the_tile_size), so the tolerance is 1e-4 relative, 2e-5 sqrt(Cin) absolute.
    /// </summary>
    [Theory, MemberData(nameof(CasesAndKernels))]
    public void Forward_matches_float64_reference(string name, string kernel)
    {
        using var run = Conv2dOp.Instance.Prepare(TestDevices.Get("cpu"), On(name, kernel), seed: 1);
        HarnessAssert.Passes(OpHarness.Check(run));
    }

    /// <summary>
    /// Grad mode (dx by Winograd on the rotated filters, dW in the Winograd domain, db): against the float64 backward
    /// reference, then central differences where every input's two forwards stay affordable (not two_k_blocks, wide_rows).
    /// </summary>
    [Theory, MemberData(nameof(CasesAndKernels))]
    public void Input_and_weight_gradients_match_reference_and_finite_differences(string name, string kernel)
    {
        using var run = Conv2dOp.Instance.Prepare(TestDevices.Get("cpu"), On(name, kernel), seed: 2);
        HarnessAssert.Passes(OpHarness.Grad(run));
    }

    /// <summary>Batches of 2 of the two largest cases with the widest kernel: too many inputs for central differences, so the float64 backward reference alone.</summary>
    [Theory, InlineData("winograd.two_k_blocks"), InlineData("winograd.wide_rows")]
    public void Large_input_and_weight_gradients_match_the_float64_reference(string name)
    {
        using var run = Conv2dOp.Instance.Prepare(TestDevices.Get("cpu"), Conv2dOp.Instance.Case(name).With("N", 2), seed: 3);
        Assert.False(run.CentralDifferences);
        HarnessAssert.Passes(OpHarness.Grad(run));
    }

    public static TheoryData<string, string> ReluPaths() => new()
    {
        { "cpu", nameof(Algorithm.Winograd4x4) }, { "cpu", nameof(Algorithm.Im2colGemm) }, { "cpu", nameof(Algorithm.DirectGemm) }, { "gpu", "" },
    };

    /// <summary>The fused ReLU epilogue (folded batch norm + ReLU at inference) on every path and CPU algorithm: the harness's forward-only "relu.odd_p1".</summary>
    [Theory, MemberData(nameof(ReluPaths))]
    public void Fused_relu_matches_reference(string path, string algorithm)
    {
        var c = Conv2dOp.Instance.Case("relu.odd_p1");
        if (algorithm != "") c = Conv2dOp.WithCpuAlgorithm(c, Enum.Parse<Algorithm>(algorithm));
        using var run = Conv2dOp.Instance.Prepare(TestDevices.Get(path), c, seed: 9);
        Assert.False(run.HasBackward);
        HarnessAssert.Passes(OpHarness.Check(run));
    }

    [Fact]
    public void Chunks_of_tiles_give_bitwise_the_same_result()
    {
        // Each tile's sums run in the same order whatever the chunking and schedule: shrinking the chunk
        // budgets (to one tile panel per chunk, several chunks, a short last one), phase-parallel or
        // thread-chunked, changes no bit.
        var c = new Case(3, 6, 8, 23, 21, 1);
        var dev = TestDevices.Get("cpu");
        var (x, w, b) = Inputs(c, seed: 4);
        using var tx = TestData.Tensor(dev, x, c.XShape);
        using var tw = TestData.Tensor(dev, w, c.WShape);
        using var tb = TestData.Tensor(dev, b, c.Cout);
        float[] Run()
        {
            using var ty = dev.Zeros(c.YShape);
            Conv2d.Forward(tx, tw, tb, ty, 1, c.Pad, Algorithm.Winograd4x4);
            return ty.ToArray();
        }
        var whole = Run();
        long saved = Conv2d.WinogradChunkBudget, savedThread = Conv2d.WinogradThreadChunkBudget;
        try
        {
            Conv2d.ForceThreadChunked = false;
            Conv2d.WinogradChunkBudget = 1;
            Assert.Equal(whole, Run());
            Conv2d.ForceThreadChunked = true;
            Conv2d.WinogradThreadChunkBudget = 1;
            Assert.Equal(whole, Run());
        }
        finally { Conv2d.WinogradChunkBudget = saved; Conv2d.WinogradThreadChunkBudget = savedThread; Conv2d.ForceThreadChunked = null; }
        Compare.Close("chunked winograd", c.Reference(x, w, b), whole, 1e-4, 1e-4);
    }

    /// <summary>
    /// The float32 error of F(4x4, 3x3) against float64 on a layer of the network's kind (He-initialised
    /// 3x3 filters, 128 -> 128 channels, inputs in [0, 1) as after a ReLU), beside im2col + GEMM's own.
    /// Measured (this test's shapes and seeds, 2-core Xeon, AVX-512): largest error relative to the
    /// largest output 4.2e-6 for Winograd F(4x4, 3x3) and 4.0e-7 for im2col + GEMM, so about 10x the
    /// direct method's error; well inside the network's 1e-4 budget. F(2x2, 3x3) was not needed.
    /// </summary>
    [Fact]
    public void Float32_error_of_the_tile_size()
    {
        var c = new Case(1, 128, 128, 20, 20, 1);
        var dev = TestDevices.Get("cpu");
        var x = TestData.RoundToFloat(TestData.Uniform(7, c.N * c.Cin * c.H * c.W, 0, 1));
        double std = Math.Sqrt(2.0 / (c.Cin * 9));
        var w = TestData.RoundToFloat(TestData.Uniform(8, c.Cout * c.Cin * 9).Select(v => v * std * Math.Sqrt(3)).ToArray());
        var reference = c.Reference(x, w, null);
        double scale = reference.Max(Math.Abs);
        double Error(Algorithm a)
        {
            using var tx = TestData.Tensor(dev, x, c.XShape);
            using var tw = TestData.Tensor(dev, w, c.WShape);
            using var ty = dev.Zeros(c.YShape);
            Conv2d.Forward(tx, tw, null, ty, 1, c.Pad, a);
            var y = ty.ToArray();
            return y.Select((v, i) => Math.Abs(v - reference[i])).Max() / scale;
        }
        double winograd = Error(Algorithm.Winograd4x4), direct = Error(Algorithm.Im2colGemm);
        Assert.True(winograd < 1e-5, $"Winograd F(4x4, 3x3) error {winograd:E2} of the largest output (im2col: {direct:E2})");
        Assert.True(direct < 2e-6, $"im2col + GEMM error {direct:E2}");
    }

    [Fact]
    public void Algorithm_choice_follows_the_shape()
    {
        static Conv2d.ConvArgs Args(int n, int c, int hw, int k, int stride)
        {
            int o = Conv2d.OutputSize(hw, k, stride, k / 2);
            return new Conv2d.ConvArgs(n, c, hw, hw, c, k, stride, k / 2, o, o, 0, n, 0, o);
        }
        Assert.Equal(Algorithm.Winograd4x4, Conv2d.ChooseCpuAlgorithm(Args(1, 64, 64, 3, 1)));     // the network's 3x3 layers
        Assert.Equal(Algorithm.DirectGemm, Conv2d.ChooseCpuAlgorithm(Args(1, 64, 64, 3, 2)));      // downsampling
        Assert.Equal(Algorithm.DirectGemm, Conv2d.ChooseCpuAlgorithm(Args(1, 64, 64, 1, 1)));      // 1x1 fusion
        Assert.Equal(Algorithm.Im2colGemm, Conv2d.ChooseCpuAlgorithm(Args(1, 512, 7, 3, 1)));      // 4 tiles: the filter transform would dominate
        Assert.Equal(Algorithm.Im2colGemm, Conv2d.ChooseCpuAlgorithm(Args(1, 512, 14, 3, 1)));     // inference's global layers
        Assert.Equal(Algorithm.Im2colGemm, Conv2d.ChooseCpuAlgorithm(Args(4, 512, 7, 3, 1)));
        Assert.Equal(Algorithm.Im2colGemm, Conv2d.ChooseCpuAlgorithm(Args(1, 512, 28, 3, 2)));     // global.conv1 at batch 1
        Assert.Equal(Algorithm.Winograd4x4, Conv2d.ChooseCpuAlgorithm(Args(4, 512, 14, 3, 1)));    // training at batch 4
        Assert.Equal(Algorithm.Winograd4x4, Conv2d.ChooseCpuAlgorithm(Args(16, 128, 7, 3, 1)));    // training at batch 16
        // Dilated or grouped 3x3 layers are not Winograd's (its 6x6 patches are dense and span every channel).
        Assert.Equal(Algorithm.DirectGemm, Conv2d.ChooseCpuAlgorithm(Args(1, 64, 64, 3, 1) with { Dilation = 2, Pad = 2 }));
        Assert.Equal(Algorithm.DirectGemm, Conv2d.ChooseCpuAlgorithm(Args(1, 64, 64, 3, 1) with { Groups = 2 }));
        Assert.Equal(Algorithm.Im2colGemm, Conv2d.ChooseCpuAlgorithm(Args(4, 512, 14, 3, 1) with { Groups = 512 }));
        Assert.Throws<ArgumentException>(() =>
        {
            using var x = TestDevices.Get("cpu").Zeros(1, 2, 8, 8);
            using var w = TestDevices.Get("cpu").Zeros(3, 2, 3, 3);
            using var y = TestDevices.Get("cpu").Zeros(1, 3, 4, 4);
            Conv2d.Forward(x, w, null, y, 2, 1, Algorithm.Winograd4x4);
        });
        var e = Assert.Throws<ArgumentException>(() =>
        {
            using var x = TestDevices.Get("cpu").Zeros(1, 2, 8, 8);
            using var w = TestDevices.Get("cpu").Zeros(3, 2, 3, 3);
            using var y = TestDevices.Get("cpu").Zeros(1, 3, 8, 8);
            Conv2d.Forward(x, w, null, y, 1, 2, Algorithm.Winograd4x4, dilation: 2);
        });
        Assert.Contains("dilation 1 and one group", e.Message);
        // The harness's cpu_algorithm reaches Conv2d: Winograd forced on a stride-2 case is refused there.
        using var run = Conv2dOp.Instance.Prepare(TestDevices.Get("cpu"),
            Conv2dOp.WithCpuAlgorithm(Conv2dOp.Instance.Case("k3s2p1"), Algorithm.Winograd4x4));
        Assert.Contains("Winograd needs a 3x3 kernel, stride 1", Assert.Throws<ArgumentException>(() => OpHarness.Check(run)).Message);
    }

    static (double[] X, double[] W, double[] B) Inputs(Case c, int seed) => (
        TestData.RoundToFloat(TestData.Uniform(seed, c.N * c.Cin * c.H * c.W)),
        TestData.RoundToFloat(TestData.Uniform(seed + 1, c.Cout * c.Cin * 9)),
        TestData.RoundToFloat(TestData.Uniform(seed + 2, c.Cout)));
}
