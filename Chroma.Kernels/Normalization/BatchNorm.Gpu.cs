using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Chroma.Kernels;

// GPU path. The per-channel sums (statistics in the forward, sum dy and sum dy * xhat in the
// backward) are split reductions (see Reductions): pass 1 has splits x C groups, each summing a chunk
// of one channel's m = N*S values into partials [C, splits, 2]; pass 2, one thread per channel, adds
// the partials in split order and finishes the channel (mean, invStd, running statistics; or dgamma,
// dbeta and the sums the dx pass needs). Then an element-wise kernel writes y (or dx).
// One group per channel, as before, gave 16-512 groups walking up to 800 000 values each (the first
// layers at width 0.25, batch 16, 224x224): a fraction of a 132-SM GPU. Not yet timed on a GPU.
public static partial class BatchNorm
{
    /// <summary>Sizes and constants of one batch-norm launch, passed to kernels as one struct.</summary>
    /// <param name="M">Values per channel, N*S.</param>
    /// <param name="UnbiasFactor">m / (m - 1), turns the biased batch variance into the unbiased one.</param>
    /// <param name="Relu">1: the ReLU is fused (forward writes max(0, y); backward masks dy by y &gt; 0), 0: plain batch norm.</param>
    /// <param name="Chunk">Values of one channel that one group of pass 1 sums.</param>
    /// <param name="Splits">Groups per channel in pass 1.</param>
    public readonly record struct BatchNormArgs(int C, int S, int M, float Momentum, float UnbiasFactor, float Eps, int Relu, int Chunk = 0, int Splits = 1);

    /// <summary>The launches of a training forward (or a backward): split sums, per-channel finish, element-wise pass.</summary>
    public readonly record struct GpuPlan(Reductions.Split Split, LaunchPlan Partial, LaunchPlan Final, LaunchPlan Elementwise)
    {
        public IEnumerable<LaunchPlan> Launches => [Partial, Final, Elementwise];
    }

    /// <summary>
    /// Plans the training forward (<paramref name="backward"/> false) or the backward of x [N, C, S] on
    /// <paramref name="target"/>: a plain function of the shapes.
    /// </summary>
    public static GpuPlan PlanGpu(GpuTarget target, int n, int c, int s, bool backward)
    {
        long m = (long)n * s, values = m * c;
        var split = Reductions.PlanChannels(target, c, m);
        string partial = backward ? nameof(BackwardPartialKernel) : nameof(StatisticsPartialKernel);
        string final = backward ? nameof(BackwardFinalKernel) : nameof(StatisticsFinalKernel);
        string elementwise = backward ? nameof(BackwardDxKernel) : nameof(NormalizeKernel);
        return new GpuPlan(split,
            new LaunchPlan(Name(partial), split.Grid, split.Group, values),
            new LaunchPlan(Name(final), new Index3D(c, 1, 1), default, (long)c * split.Splits),
            new LaunchPlan(Name(elementwise), new Index3D((int)values, 1, 1), default, values));
    }

    static string Name(string kernel) => nameof(BatchNorm) + "." + kernel;

    static void ForwardTrainingGpu(GpuDevice gpu, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, Tensor saveMean, Tensor saveInvStd, int n, int c, int s, float momentum, float eps, bool relu)
    {
        if (c == 0) return;
        int m = n * s;
        var plan = PlanGpu(gpu.Target, n, c, s, backward: false);
        var args = new BatchNormArgs(c, s, m, momentum, (float)((double)m / (m - 1)), eps, relu ? 1 : 0, plan.Split.Chunk, plan.Split.Splits);
        var partials = Partials(gpu, args);
        gpu.Launching(plan.Partial);
        gpu.GroupedKernel<BatchNormArgs, ArrayView<float>, ArrayView<float>>(StatisticsPartialKernel)(
            new KernelConfig(plan.Partial.Grid, plan.Partial.Group), args, x.View, partials);
        gpu.Launching(plan.Final);
        gpu.Kernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(StatisticsFinalKernel)(
            c, args, x.View, partials, runningMean.View, runningVar.View, saveMean.View, saveInvStd.View);
        gpu.Launching(plan.Elementwise);
        gpu.Kernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(NormalizeKernel)(
            x.Length, args, x.View, gamma.View, beta.View, saveMean.View, saveInvStd.View, y.View);
    }

    static void ForwardInferenceGpu(GpuDevice gpu, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, int c, int s, float eps, bool relu)
    {
        if (x.Length == 0) return;
        var args = new BatchNormArgs(c, s, 0, 0f, 0f, eps, relu ? 1 : 0);
        gpu.Kernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(InferenceKernel)(
            x.Length, args, x.View, gamma.View, beta.View, runningMean.View, runningVar.View, y.View);
    }

    static void BackwardGpu(GpuDevice gpu, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy, Tensor dx,
        Tensor dgamma, Tensor dbeta, Tensor? reluOutput, int n, int c, int s)
    {
        if (c == 0) return;
        int m = n * s;
        var plan = PlanGpu(gpu.Target, n, c, s, backward: true);
        var args = new BatchNormArgs(c, s, m, 0f, 0f, 0f, reluOutput is null ? 0 : 1, plan.Split.Chunk, plan.Split.Splits);
        var partials = Partials(gpu, args);
        // The dx pass needs sum dy and sum dy * xhat after dgamma and dbeta have been accumulated into.
        var sums = gpu.Workspace("batchnorm.sums", 2 * c).View;
        // Without the ReLU the mask view is never read; dy stands in for it.
        var y = (reluOutput ?? dy).View;
        gpu.Launching(plan.Partial);
        gpu.GroupedKernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardPartialKernel)(
            new KernelConfig(plan.Partial.Grid, plan.Partial.Group), args, x.View, dy.View, y, saveMean.View, partials);
        gpu.Launching(plan.Final);
        gpu.Kernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardFinalKernel)(
            c, args, partials, saveInvStd.View, dgamma.View, dbeta.View, sums);
        gpu.Launching(plan.Elementwise);
        gpu.Kernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardDxKernel)(
            x.Length, args, x.View, dy.View, y, gamma.View, saveMean.View, saveInvStd.View, sums, dx.View);
    }

    /// <summary>Pass 1's output [C, splits, 2], in the device's workspace (launches run in order, so layers can share it).</summary>
    static ArrayView<float> Partials(GpuDevice gpu, in BatchNormArgs a) => gpu.Workspace("batchnorm.partials", 2 * a.C * a.Splits).View;

    /// <summary>Index in x [N,C,S] of the i-th of channel c's m values.</summary>
    static int ChannelElement(BatchNormArgs a, int c, int i)
    {
        int n = i / a.S;
        return (n * a.C + c) * a.S + (i - n * a.S);
    }

    // Pass 1 of the statistics, group (z, c): sums of d = x - shift and d^2 over values
    // [z*chunk, (z+1)*chunk) of channel c, the shift being the channel's first value (so that sum d / m
    // is of the order of the standard deviation and the variance does not cancel); every group uses the
    // same shift, so the partials add up.
    static void StatisticsPartialKernel(BatchNormArgs a, ArrayView<float> x, ArrayView<float> partials)
    {
        var shared = SharedMemory.Allocate<float>(Reductions.MaxGroup);
        int z = Grid.IdxX, c = Grid.IdxY, t = Group.IdxX;
        float shift = x[ChannelElement(a, c, 0)];
        int begin = z * a.Chunk, end = XMath.Min(a.M, begin + a.Chunk);
        float sum = 0, squares = 0;
        for (int i = begin + t; i < end; i += Group.DimX)
        {
            float d = x[ChannelElement(a, c, i)] - shift;
            sum += d;
            squares += d * d;
        }
        sum = Reductions.GroupSum(shared, sum);
        squares = Reductions.GroupSum(shared, squares);
        if (t == 0)
        {
            int at = 2 * (c * a.Splits + z);
            partials[at] = sum;
            partials[at + 1] = squares;
        }
    }

    // Pass 2, one thread per channel: adds the partials in split order, saves mean and invStd and
    // updates the running statistics.
    static void StatisticsFinalKernel(Index1D c, BatchNormArgs a, ArrayView<float> x, ArrayView<float> partials,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> saveMean, ArrayView<float> saveInvStd)
    {
        float sum = 0, squares = 0;
        for (int z = 0; z < a.Splits; z++)
        {
            int at = 2 * (c * a.Splits + z);
            sum += partials[at];
            squares += partials[at + 1];
        }
        float meanD = sum / a.M;
        float var = XMath.Max(squares / a.M - meanD * meanD, 0f);
        float mean = x[ChannelElement(a, c, 0)] + meanD;
        saveMean[c] = mean;
        saveInvStd[c] = 1f / XMath.Sqrt(var + a.Eps);
        runningMean[c] = (1f - a.Momentum) * runningMean[c] + a.Momentum * mean;
        runningVar[c] = (1f - a.Momentum) * runningVar[c] + a.Momentum * var * a.UnbiasFactor;
    }

    // One thread per element of x [N,C,S].
    static void NormalizeKernel(Index1D i, BatchNormArgs a, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> y)
    {
        int c = i / a.S % a.C;
        float v = gamma[c] * (x[i] - mean[c]) * invStd[c] + beta[c];
        y[i] = a.Relu != 0 ? XMath.Max(v, 0f) : v;
    }

    static void InferenceKernel(Index1D i, BatchNormArgs a, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> y)
    {
        int c = i / a.S % a.C;
        float v = gamma[c] * (x[i] - runningMean[c]) / XMath.Sqrt(runningVar[c] + a.Eps) + beta[c];
        y[i] = a.Relu != 0 ? XMath.Max(v, 0f) : v;
    }

    /// <summary>dy, or with the ReLU fused dy where the forward output y &gt; 0, else 0.</summary>
    static float MaskedDy(BatchNormArgs a, ArrayView<float> dy, ArrayView<float> y, int k) =>
        a.Relu != 0 && !(y[k] > 0f) ? 0f : dy[k];

    // Pass 1 of the backward sums, group (z, c): sum dy and sum dy * (x - mean) over its chunk of
    // channel c (dy masked when the ReLU is fused).
    static void BackwardPartialKernel(BatchNormArgs a, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> y, ArrayView<float> mean,
        ArrayView<float> partials)
    {
        var shared = SharedMemory.Allocate<float>(Reductions.MaxGroup);
        int z = Grid.IdxX, c = Grid.IdxY, t = Group.IdxX;
        float mc = mean[c];
        int begin = z * a.Chunk, end = XMath.Min(a.M, begin + a.Chunk);
        float sumDy = 0, sumDyDev = 0;
        for (int i = begin + t; i < end; i += Group.DimX)
        {
            int k = ChannelElement(a, c, i);
            float d = MaskedDy(a, dy, y, k);
            sumDy += d;
            sumDyDev += d * (x[k] - mc);
        }
        sumDy = Reductions.GroupSum(shared, sumDy);
        sumDyDev = Reductions.GroupSum(shared, sumDyDev);
        if (t == 0)
        {
            int at = 2 * (c * a.Splits + z);
            partials[at] = sumDy;
            partials[at + 1] = sumDyDev;
        }
    }

    // Pass 2, one thread per channel: the sums in split order; dbeta += sum dy, dgamma += sum dy * xhat,
    // and both kept in sums [2, C] for the dx pass.
    static void BackwardFinalKernel(Index1D c, BatchNormArgs a, ArrayView<float> partials, ArrayView<float> invStd,
        ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> sums)
    {
        float sumDy = 0, sumDyDev = 0;
        for (int z = 0; z < a.Splits; z++)
        {
            int at = 2 * (c * a.Splits + z);
            sumDy += partials[at];
            sumDyDev += partials[at + 1];
        }
        float sumDyXhat = sumDyDev * invStd[c];
        dbeta[c] += sumDy;
        dgamma[c] += sumDyXhat;
        sums[c] = sumDy;
        sums[a.C + c] = sumDyXhat;
    }

    // One thread per element: dx += gamma invStd / m * (m dy - sum dy - xhat sum(dy xhat)).
    static void BackwardDxKernel(Index1D i, BatchNormArgs a, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> y, ArrayView<float> gamma,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> sums, ArrayView<float> dx)
    {
        int c = i / a.S % a.C;
        float inv = invStd[c];
        float xhat = (x[i] - mean[c]) * inv;
        dx[i] += gamma[c] * inv / a.M * (a.M * MaskedDy(a, dy, y, i) - sums[c] - xhat * sums[a.C + c]);
    }
}
