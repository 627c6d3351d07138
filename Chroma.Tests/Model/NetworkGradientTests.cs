using Chroma.Kernels;
using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>
/// The whole network's backward (every layer, the fusion split, the shared low-level pass, the
/// joint loss) against central finite differences of the training-mode loss, on the CPU path.
/// Width 0.0625 (75 k parameters), input 64x64, N = 8, 3 classes, the network's own initialization.
/// </summary>
/// <remarks>
/// <para>
/// The loss is evaluated from the network's float32 outputs with float64 reductions (the MseLoss
/// and SoftmaxCrossEntropy references), so its round-off is that of the float32 forward alone:
/// about 1e-8 absolute (1e-7 of the loss), deterministic but jittery in the parameters. Each
/// training-mode forward also updates the batch-norm running statistics, which training-mode
/// outputs never read, so every evaluation sees the same function.
/// </para>
/// <para>
/// Why the steps are small and the tolerances grow with depth: at initialization the loss of a
/// deep batch-norm + ReLU stack is rough. It has a kink at every ReLU, and about 13 BN-ReLU layers
/// amplify perturbations of the lower layers (the known gradient growth of batch-normalized nets at
/// initialization), so for the lowest layers the slope averaged over any step h differs from the
/// point derivative by a few percent (measured: about 6% for low.conv1 whatever h in 1e-4..1e-2 of
/// the weights' scale), while near the output the loss is smooth and differences agree to 1e-5.
/// A step of 1e-2 of |theta| gives 30% errors along the gradient direction for this reason; the
/// steps below are the smallest that keep the round-off (1e-8 / h) well under the tolerance. The
/// exact gradient is checked tightly by GoldenParityTests against PyTorch; this test checks that
/// the backward is the derivative of the forward Chroma actually runs.
/// </para>
/// </remarks>
public sealed class NetworkGradientTests(ITestOutputHelper output)
    : NetworkGradientCheck(output, new ColorizationNetwork(Config, CpuDevice.Instance, seed: 5));

/// <summary>
/// The checks of <see cref="NetworkGradientTests"/> (see there) for any network built like
/// <see cref="ColorizationNetwork"/>: each derived test class gives its network.
/// </summary>
public abstract class NetworkGradientCheck : IDisposable
{
    protected const int N = 8, Classes = 3, Size = 64;
    const float Alpha = 1f / 300;
    static readonly int[] Labels = [2, 0, 1, 2, 1, 1, 0, 2];

    /// <summary>Width 0.0625, 3 classes, 1x1 fusion, 64x64 input.</summary>
    protected static ColorizerConfig Config => new(0.0625, Classes, 1, Size);

    readonly ColorizationNetwork _network;
    readonly Tensor _input, _target;

    /// <summary>
    /// Multiplies every tolerance below: 1 for the paper's network, more for a deeper variant (each BN-ReLU
    /// layer above a tensor makes the loss rougher in it; see the remarks of <see cref="NetworkGradientTests"/>).
    /// </summary>
    protected virtual double ToleranceFactor => 1;
    readonly double[] _targetValues;
    readonly float[] _theta;
    readonly float[] _gradient;
    readonly ITestOutputHelper _output;

    protected NetworkGradientCheck(ITestOutputHelper output, ColorizationNetwork network)
    {
        _output = output;
        _network = network;
        var device = CpuDevice.Instance;
        _input = TestData.Tensor(device, TestData.Uniform(1, N * Size * Size, 0, 1), N, 1, Size, Size);
        _targetValues = TestData.RoundToFloat(TestData.Uniform(2, N * 2 * (Size / 2) * (Size / 2), 0.2, 0.8));
        _target = TestData.Tensor(device, _targetValues, N, 2, Size / 2, Size / 2);
        _theta = _network.Parameters.Values.ToArray();

        using var loss = new JointLoss(Alpha);
        _network.Parameters.ZeroGradients();
        var (ab, logits) = _network.Forward(_input, null, training: true);
        loss.Backward(_network, ab, logits, _target, Labels);
        _gradient = _network.Parameters.Gradients.ToArray();
    }

    public void Dispose()
    {
        _network.Dispose();
        _input.Dispose();
        _target.Dispose();
    }

    /// <summary>
    /// Along the unit gradient direction the loss changes by |g| h, so a tiny step keeps the
    /// round-off small: h = 1e-5 |theta| (0.36; about 1e-6 of a weight per element) leaves
    /// 1e-8 / (h |g|) ~ 1e-4 of round-off; measured error 0.5%, tolerance 2%. Along a random unit
    /// direction g . v is about |g| / sqrt(75 k), 300 times smaller, so the step must be larger to
    /// stay above the round-off: h = 3e-5 |theta|; measured error 0.7%, tolerance 5%.
    /// </summary>
    [Theory]
    [InlineData("gradient", 1e-5, 0.02)]
    [InlineData("random", 3e-5, 0.05)]
    public void Directional_derivative_matches_finite_difference(string direction, double relativeStep, double tolerance)
    {
        tolerance *= ToleranceFactor;
        double thetaNorm = Norm(_theta);
        double[] v;
        if (direction == "gradient")
        {
            double gradNorm = Norm(_gradient);
            v = Array.ConvertAll(_gradient, g => g / gradNorm);
        }
        else
        {
            v = TestData.Uniform(3, _theta.Length);
            double norm = Math.Sqrt(v.Sum(x => x * x));
            for (int i = 0; i < v.Length; i++) v[i] /= norm;
        }
        double h = relativeStep * thetaNorm;
        var (numeric, analytic) = CentralDifference(v, h);
        double error = Math.Abs(numeric - analytic) / Math.Abs(analytic);
        _output.WriteLine($"{direction}: |theta| {thetaNorm:G4}, h {h:G3}: finite difference {numeric:G8}, g.v {analytic:G8}, relative error {error:E2}");
        Assert.True(error <= tolerance, $"{direction} direction, h = {h:G3}: finite difference {numeric:G8}, analytic {analytic:G8} (relative error {error:E2} > {tolerance})");
    }

    /// <summary>
    /// One weight at a time: the element with the largest gradient in the tensor and another at random,
    /// step h = 1e-3 of the tensor's scale (its rms, at least 0.1 for zero-initialized biases).
    /// Tolerance relative to the tensor's largest |gradient|, growing with the number of BN-ReLU
    /// layers above the tensor (measured worst errors in brackets): output layers 1e-3 (2e-5);
    /// fusion, mid and global.fc1 3% (0.4%); the first layer 15% (6%).
    /// </summary>
    [Theory]
    [InlineData("low.conv1.weight", 0.15)]
    [InlineData("mid.bn2.weight", 0.03)]
    [InlineData("global.fc1.weight", 0.03)]
    [InlineData("fusion.conv.weight", 0.03)]
    [InlineData("color.conv5.bias", 1e-3)]
    [InlineData("class.fc2.weight", 1e-3)]
    public void Single_weights_match_finite_differences(string name, double tolerance)
    {
        tolerance *= ToleranceFactor;
        var entry = _network.Parameters[name];
        int offset = entry.Value.Offset - _network.Parameters.Values.Offset;
        var grad = _gradient.AsSpan(offset, entry.Length);
        double scale = Math.Max(0.1, Norm(_theta.AsSpan(offset, entry.Length)) / Math.Sqrt(entry.Length));
        double h = 1e-3 * scale;
        int largest = 0;
        for (int i = 1; i < grad.Length; i++) if (Math.Abs(grad[i]) > Math.Abs(grad[largest])) largest = i;
        double maxGrad = Math.Abs(grad[largest]);
        Assert.True(maxGrad > 1e-5, $"{name}: gradient too small to check ({maxGrad:E2})");

        int other = (largest + 1 + new Random(7).Next(entry.Length - 1)) % entry.Length;
        foreach (int i in new[] { largest, other })
        {
            var v = new double[_theta.Length];
            v[offset + i] = 1;
            var (numeric, analytic) = CentralDifference(v, h);
            double error = Math.Abs(numeric - analytic) / maxGrad;
            _output.WriteLine($"{name}[{i}], h {h:G3}: finite difference {numeric:G8}, analytic {analytic:G8}, error / max |g| {error:E2}");
            Assert.True(error <= tolerance, $"{name}[{i}], h = {h:G3}: finite difference {numeric:G8}, analytic {analytic:G8} " +
                                            $"(|difference| = {error:E2} of the tensor's largest gradient {maxGrad:E3}, tolerance {tolerance})");
        }
    }

    /// <summary>The joint loss (float64 reductions of the float32 outputs) at parameters <paramref name="theta"/>.</summary>
    double Loss(float[] theta)
    {
        _network.Parameters.Values.CopyFrom(theta);
        _network.Parameters.MarkChanged();
        var (ab, logits) = _network.Forward(_input, null, training: true);
        double color = MseLoss.Reference.Forward(TestData.ToDouble(ab.ToArray()), _targetValues);
        double cls = SoftmaxCrossEntropy.Reference.Forward(TestData.ToDouble(logits.ToArray()), N, Classes, Labels);
        return color + Alpha * cls;
    }

    /// <summary>
    /// (L(theta + h v) - L(theta - h v)) / 2h, and the analytic value g . (theta+ - theta-) / 2h for
    /// the float32-rounded parameters theta+- actually evaluated (at these small steps rounding
    /// changes many elements' steps noticeably, some to zero).
    /// </summary>
    (double Numeric, double Analytic) CentralDifference(double[] v, double h)
    {
        var plus = new float[_theta.Length];
        var minus = new float[_theta.Length];
        double analytic = 0;
        for (int i = 0; i < plus.Length; i++)
        {
            plus[i] = (float)(_theta[i] + h * v[i]);
            minus[i] = (float)(_theta[i] - h * v[i]);
            analytic += _gradient[i] * ((double)plus[i] - minus[i]);
        }
        return ((Loss(plus) - Loss(minus)) / (2 * h), analytic / (2 * h));
    }

    static double Norm(ReadOnlySpan<float> v)
    {
        double s = 0;
        foreach (var x in v) s += (double)x * x;
        return Math.Sqrt(s);
    }
}
