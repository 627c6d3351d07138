namespace Chroma.Kernels;

/// <summary>
/// Batch normalization per channel, with PyTorch BatchNorm2d / BatchNorm1d semantics: statistics are
/// taken over (N, H, W) for x [N,C,H,W] and over N for x [N,C]. Both are handled as x [N,C,S] with
/// S = H*W (S = 1 for 2-D input); each channel has m = N*S values.
/// <code>
/// training:   mean = sum x / m,  var = sum (x - mean)^2 / m          (biased, per channel)
///             invStd = 1 / sqrt(var + eps),  xhat = (x - mean) * invStd
///             y = gamma * xhat + beta
///             running = (1 - momentum) * running + momentum * batchStat   (runningVar takes var * m/(m-1))
/// inference:  y = gamma * (x - runningMean) / sqrt(runningVar + eps) + beta
/// backward:   (training mode; mean and invStd depend on x, hence the two sum terms in dx)
///             dbeta  += sum dy
///             dgamma += sum dy * xhat
///             dx     += gamma * invStd / m * (m * dy - sum dy - xhat * sum(dy * xhat))
/// fused ReLU: (relu: true / reluOutput) y = max(0, bn(x)); backward replaces dy by dy * [y > 0]
///             before the formulas above, so relu + bn is one op with no intermediate gradient.
/// folding:    inference-mode bn(layer(x)) with layer = W x + b equals W' x + b' with
///             s = gamma / sqrt(runningVar + eps), W'[o] = W[o] * s[o], b'[o] = (b[o] - runningMean[o]) * s[o] + beta[o].
/// </code>
/// Shapes: x, y, dy, dx [N,C,H,W] or [N,C]; gamma, beta, running stats, saved stats and their
/// gradients [C].
/// </summary>
/// <remarks>
/// CPU: channels in parallel. Training statistics take one pass: per channel, sums of the values
/// shifted by the channel's first value (float SIMD lanes within a segment, double across segments),
/// so a large mean does not cancel the variance away; a second pass writes y. Backward: one pass for
/// the two sums, one to write dx.
/// GPU: split reductions (groups of each channel sum chunks of its values; one thread per channel adds
/// the partials in order), then an element-wise kernel writes y (or dx) with full parallelism.
/// </remarks>
public static partial class BatchNorm
{
    public const float DefaultEps = 1e-5f, DefaultMomentum = 0.1f;

    /// <summary>
    /// Training mode: normalizes with the batch mean and biased variance, writes y, updates the
    /// running statistics (unbiased variance, as PyTorch) and saves mean and invStd for <see cref="Backward"/>.
    /// </summary>
    /// <param name="x">Input [N,C,H,W] or [N,C].</param>
    /// <param name="gamma">Scale [C].</param>
    /// <param name="beta">Shift [C].</param>
    /// <param name="runningMean">Running mean [C], updated in place.</param>
    /// <param name="runningVar">Running variance [C], updated in place.</param>
    /// <param name="y">Output, shape of x (overwritten).</param>
    /// <param name="saveMean">Batch mean [C] (overwritten).</param>
    /// <param name="saveInvStd">1 / sqrt(biased batch variance + eps) [C] (overwritten).</param>
    /// <param name="relu">Write y = max(0, bn(x)) (the ReLU fused into the pass that writes y).</param>
    public static void ForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, Tensor saveMean, Tensor saveInvStd, float momentum = DefaultMomentum, float eps = DefaultEps, bool relu = false)
    {
        const string op = "BatchNorm.ForwardTraining";
        Check.SameDevice(op, x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd);
        var (n, c, s) = Layout(op, x);
        RequireBatchStatistics(op, x, n, s);
        CheckChannels(op, c, ("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
            ("saveMean", saveMean), ("saveInvStd", saveInvStd));
        Check.Shape(op, "y", y, x.Shape.ToArray());
        if (!(eps > 0f)) throw new ArgumentException($"{op}: eps must be positive, got {eps}.");
        if (!(momentum >= 0f && momentum <= 1f)) throw new ArgumentException($"{op}: momentum must be in [0, 1], got {momentum}.");
        if (x.Device is GpuDevice gpu) ForwardTrainingGpu(gpu, x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd, n, c, s, momentum, eps, relu);
        else ForwardTrainingCpu(x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd, n, c, s, momentum, eps, relu);
    }

    /// <summary>Inference mode: y = gamma * (x - runningMean) / sqrt(runningVar + eps) + beta.</summary>
    /// <param name="x">Input [N,C,H,W] or [N,C].</param>
    /// <param name="y">Output, shape of x (overwritten; may be x).</param>
    /// <param name="relu">Write y = max(0, bn(x)).</param>
    public static void ForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, Tensor y,
        float eps = DefaultEps, bool relu = false)
    {
        const string op = "BatchNorm.ForwardInference";
        Check.SameDevice(op, x, gamma, beta, runningMean, runningVar, y);
        var (n, c, s) = Layout(op, x);
        CheckChannels(op, c, ("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar));
        Check.Shape(op, "y", y, x.Shape.ToArray());
        if (!(eps > 0f)) throw new ArgumentException($"{op}: eps must be positive, got {eps}.");
        if (x.Device is GpuDevice gpu) ForwardInferenceGpu(gpu, x, gamma, beta, runningMean, runningVar, y, c, s, eps, relu);
        else ForwardInferenceCpu(x, gamma, beta, runningMean, runningVar, y, n, c, s, eps, relu);
    }

    /// <summary>
    /// Training-mode backward: dx += ..., dgamma += sum dy * xhat, dbeta += sum dy (see the class
    /// summary). <paramref name="x"/> is the forward input; saveMean and saveInvStd come from
    /// <see cref="ForwardTraining"/> on that input.
    /// </summary>
    /// <param name="reluOutput">
    /// For a forward with <c>relu: true</c>, its output y = max(0, bn(x)): dy counts only where y &gt; 0,
    /// the ReLU's backward applied inside this one. Null for plain batch norm.
    /// </param>
    public static void Backward(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy, Tensor dx, Tensor dgamma, Tensor dbeta,
        Tensor? reluOutput = null)
    {
        const string op = "BatchNorm.Backward";
        Check.SameDevice(op, x, gamma, saveMean, saveInvStd, dy, dx, dgamma, dbeta);
        if (reluOutput is not null) Check.SameDevice(op, x, reluOutput);
        var (n, c, s) = Layout(op, x);
        RequireBatchStatistics(op, x, n, s);
        CheckChannels(op, c, ("gamma", gamma), ("saveMean", saveMean), ("saveInvStd", saveInvStd), ("dgamma", dgamma), ("dbeta", dbeta));
        Check.Shape(op, "dy", dy, x.Shape.ToArray());
        Check.Shape(op, "dx", dx, x.Shape.ToArray());
        if (reluOutput is not null) Check.Shape(op, "reluOutput", reluOutput, x.Shape.ToArray());
        if (x.Device is GpuDevice gpu) BackwardGpu(gpu, x, gamma, saveMean, saveInvStd, dy, dx, dgamma, dbeta, reluOutput, n, c, s);
        else BackwardCpu(x, gamma, saveMean, saveInvStd, dy, dx, dgamma, dbeta, reluOutput, n, c, s);
    }

    /// <summary>
    /// Folds inference-mode batch norm into the layer before it (a convolution or fully connected
    /// layer, output channel first): afterwards layer(x; foldedWeight, foldedBias) = bn(layer(x; weight, bias))
    /// with the running statistics. Computed in float64 on the host, stored as float32; meant to be
    /// cached by the caller while the weights do not change.
    /// </summary>
    /// <param name="weight">Layer weights [C, ...] (C output channels: [C, in, k, k] or [C, in]).</param>
    /// <param name="bias">Layer bias [C].</param>
    /// <param name="foldedWeight">W'[o] = W[o] * s[o], s = gamma / sqrt(runningVar + eps); shape of weight (overwritten).</param>
    /// <param name="foldedBias">b'[o] = (b[o] - runningMean[o]) * s[o] + beta[o] [C] (overwritten).</param>
    public static void Fold(Tensor weight, Tensor bias, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor foldedWeight, Tensor foldedBias, float eps = DefaultEps)
    {
        const string op = "BatchNorm.Fold";
        Check.SameDevice(op, weight, bias, gamma, beta, runningMean, runningVar, foldedWeight, foldedBias);
        if (weight.Rank < 2) throw new ArgumentException($"{op}: weight must be [C, ...] with at least 2 dimensions, got {weight.ShapeString}.");
        int c = weight.Dim(0);
        CheckChannels(op, c, ("bias", bias), ("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
            ("foldedBias", foldedBias));
        Check.Shape(op, "foldedWeight", foldedWeight, weight.Shape.ToArray());
        if (!(eps > 0f)) throw new ArgumentException($"{op}: eps must be positive, got {eps}.");
        var (w, b) = Reference.Fold(ToDouble(weight), ToDouble(bias), ToDouble(gamma), ToDouble(beta),
            ToDouble(runningMean), ToDouble(runningVar), eps);
        foldedWeight.CopyFrom(Array.ConvertAll(w, v => (float)v));
        foldedBias.CopyFrom(Array.ConvertAll(b, v => (float)v));
    }

    static double[] ToDouble(Tensor t) => Array.ConvertAll(t.ToArray(), v => (double)v);

    /// <summary>x as [N,C,S]: S = H*W for 4-D input, 1 for 2-D input.</summary>
    static (int N, int C, int S) Layout(string op, Tensor x)
    {
        if (x.Rank == 4) return (x.Dim(0), x.Dim(1), x.Dim(2) * x.Dim(3));
        if (x.Rank == 2) return (x.Dim(0), x.Dim(1), 1);
        throw new ArgumentException($"{op}: x must be [N, C, H, W] or [N, C], got {x.ShapeString}.");
    }

    static void RequireBatchStatistics(string op, Tensor x, int n, int s)
    {
        if ((long)n * s < 2)
            throw new ArgumentException($"{op}: training mode needs more than 1 value per channel, got input {x.ShapeString} " +
                                        $"({(long)n * s} per channel); use a batch of at least 2 or ForwardInference.");
    }

    static void CheckChannels(string op, int c, params (string Name, Tensor T)[] perChannel)
    {
        foreach (var (name, t) in perChannel) Check.Shape(op, name, t, c);
    }

    /// <summary>Plain float64 implementation, the reference for tests. x is [N,C,S] flattened.</summary>
    public static class Reference
    {
        /// <summary>Training-mode forward with batch statistics (biased variance); returns y.</summary>
        public static double[] ForwardTraining(double[] x, int n, int c, int s, double[] gamma, double[] beta, double eps)
        {
            var y = new double[x.Length];
            int m = n * s;
            for (int ch = 0; ch < c; ch++)
            {
                double mean = 0;
                for (int i = 0; i < n; i++) for (int j = 0; j < s; j++) mean += x[(i * c + ch) * s + j];
                mean /= m;
                double var = 0;
                for (int i = 0; i < n; i++) for (int j = 0; j < s; j++) { double d = x[(i * c + ch) * s + j] - mean; var += d * d; }
                var /= m;
                double invStd = 1 / Math.Sqrt(var + eps);
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < s; j++)
                    {
                        int k = (i * c + ch) * s + j;
                        y[k] = gamma[ch] * (x[k] - mean) * invStd + beta[ch];
                    }
            }
            return y;
        }

        /// <summary>
        /// Inference-mode batch norm folded into the preceding layer's weights [C, k] (flattened, k values
        /// per output channel) and bias [C]; returns (W', b').
        /// </summary>
        public static (double[] Weight, double[] Bias) Fold(double[] weight, double[] bias, double[] gamma, double[] beta,
            double[] runningMean, double[] runningVar, double eps)
        {
            int c = bias.Length, k = weight.Length / Math.Max(c, 1);
            var w = new double[weight.Length];
            var b = new double[c];
            for (int o = 0; o < c; o++)
            {
                double s = gamma[o] / Math.Sqrt(runningVar[o] + eps);
                for (int j = 0; j < k; j++) w[o * k + j] = weight[o * k + j] * s;
                b[o] = (bias[o] - runningMean[o]) * s + beta[o];
            }
            return (w, b);
        }

        /// <summary>Inference-mode forward with the given running statistics; returns y.</summary>
        public static double[] ForwardInference(double[] x, int n, int c, int s, double[] gamma, double[] beta,
            double[] runningMean, double[] runningVar, double eps)
        {
            var y = new double[x.Length];
            for (int i = 0; i < n; i++)
                for (int ch = 0; ch < c; ch++)
                    for (int j = 0; j < s; j++)
                    {
                        int k = (i * c + ch) * s + j;
                        y[k] = gamma[ch] * (x[k] - runningMean[ch]) / Math.Sqrt(runningVar[ch] + eps) + beta[ch];
                    }
            return y;
        }
    }
}
