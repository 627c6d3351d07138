using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

public static partial class BatchNorm
{
    /// <summary>Sizes and constants of one batch-norm launch, passed to kernels as one struct.</summary>
    /// <param name="M">Values per channel, N*S.</param>
    /// <param name="UnbiasFactor">m / (m - 1), turns the biased batch variance into the unbiased one.</param>
    /// <param name="Relu">1: the ReLU is fused (forward writes max(0, y); backward masks dy by y &gt; 0), 0: plain batch norm.</param>
    public readonly record struct BatchNormArgs(int C, int S, int M, float Momentum, float UnbiasFactor, float Eps, int Relu);

    /// <summary>
    /// Per-device scratch for the backward sums [2, C]: the dx kernel needs them after dgamma and dbeta
    /// have been accumulated into. Kept per device so that backward does not allocate (and, on CUDA,
    /// synchronize on the free) at every call; the device is used from one thread at a time.
    /// </summary>
    static readonly ConditionalWeakTable<GpuDevice, Tensor> s_scratch = new();

    static void ForwardTrainingGpu(GpuDevice gpu, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, Tensor saveMean, Tensor saveInvStd, int n, int c, int s, float momentum, float eps, bool relu)
    {
        if (c == 0) return;
        int m = n * s;
        var args = new BatchNormArgs(c, s, m, momentum, (float)((double)m / (m - 1)), eps, relu ? 1 : 0);
        gpu.GroupedKernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(StatisticsKernel)(
            ChannelGroups(gpu, c, m, 1), args, x.View, runningMean.View, runningVar.View, saveMean.View, saveInvStd.View);
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
        var args = new BatchNormArgs(c, s, m, 0f, 0f, 0f, reluOutput is null ? 0 : 1);
        var sums = Scratch(gpu, 2 * c);
        // Without the ReLU the mask view is never read; dy stands in for it.
        var y = (reluOutput ?? dy).View;
        gpu.GroupedKernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardSumsKernel)(
            ChannelGroups(gpu, c, m, 2), args, x.View, dy.View, y, saveMean.View, saveInvStd.View, dgamma.View, dbeta.View, sums);
        gpu.Kernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardDxKernel)(
            x.Length, args, x.View, dy.View, y, gamma.View, saveMean.View, saveInvStd.View, sums, dx.View);
    }

    static ArrayView<float> Scratch(GpuDevice gpu, int length)
    {
        if (!s_scratch.TryGetValue(gpu, out var t) || t.Length < length)
        {
            t?.Dispose();
            t = gpu.Zeros(Math.Max(length, 1024));
            s_scratch.AddOrUpdate(gpu, t);
        }
        return t.View.SubView(0, length);
    }

    /// <summary>
    /// One group per channel; the group size is the largest power of two not above the device limit
    /// (1024 on CUDA, 16 on the test simulator) nor far above m. Dynamic shared memory holds
    /// <paramref name="sharedPerThread"/> floats per thread.
    /// </summary>
    static KernelConfig ChannelGroups(GpuDevice gpu, int c, int m, int sharedPerThread)
    {
        int limit = Math.Min(gpu.Target.MaxGroupSize, 1024), size = 1;
        while (size * 2 <= limit && size < m) size *= 2;
        return new KernelConfig(new Index1D(c), new Index1D(size), SharedMemoryConfig.RequestDynamic<float>(size * sharedPerThread));
    }

    /// <summary>Index in x [N,C,S] of the i-th of channel c's m values.</summary>
    static int ChannelElement(BatchNormArgs a, int c, int i)
    {
        int n = i / a.S;
        return (n * a.C + c) * a.S + (i - n * a.S);
    }

    /// <summary>
    /// Sum of <paramref name="value"/> over the group by a tree in shared memory (group size a power of
    /// two); every thread gets the total. Ends with a barrier, so <paramref name="shared"/> can be reused.
    /// </summary>
    static float GroupSum(ArrayView<float> shared, float value)
    {
        int t = Group.IdxX;
        shared[t] = value;
        Group.Barrier();
        for (int stride = Group.DimX / 2; stride > 0; stride /= 2)
        {
            if (t < stride) shared[t] += shared[t + stride];
            Group.Barrier();
        }
        float total = shared[0];
        Group.Barrier();
        return total;
    }

    // Group per channel, one pass over x: sums of d = x - shift and d^2, the shift being the channel's
    // first value (so sum d / m is of the order of the standard deviation and the variance does not
    // cancel); thread 0 saves mean and invStd and updates the running statistics.
    static void StatisticsKernel(BatchNormArgs a, ArrayView<float> x, ArrayView<float> runningMean, ArrayView<float> runningVar,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int c = Grid.IdxX, t = Group.IdxX, g = Group.DimX;
        float shift = x[ChannelElement(a, c, 0)];
        float sum = 0, squares = 0;
        for (int i = t; i < a.M; i += g)
        {
            float d = x[ChannelElement(a, c, i)] - shift;
            sum += d;
            squares += d * d;
        }
        float meanD = GroupSum(shared, sum) / a.M;
        float var = ILGPU.Algorithms.XMath.Max(GroupSum(shared, squares) / a.M - meanD * meanD, 0f);
        float mean = shift + meanD;
        if (t == 0)
        {
            saveMean[c] = mean;
            saveInvStd[c] = 1f / ILGPU.Algorithms.XMath.Sqrt(var + a.Eps);
            runningMean[c] = (1f - a.Momentum) * runningMean[c] + a.Momentum * mean;
            runningVar[c] = (1f - a.Momentum) * runningVar[c] + a.Momentum * var * a.UnbiasFactor;
        }
    }

    // One thread per element of x [N,C,S].
    static void NormalizeKernel(Index1D i, BatchNormArgs a, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> y)
    {
        int c = i / a.S % a.C;
        float v = gamma[c] * (x[i] - mean[c]) * invStd[c] + beta[c];
        y[i] = a.Relu != 0 ? ILGPU.Algorithms.XMath.Max(v, 0f) : v;
    }

    static void InferenceKernel(Index1D i, BatchNormArgs a, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> y)
    {
        int c = i / a.S % a.C;
        float v = gamma[c] * (x[i] - runningMean[c]) / ILGPU.Algorithms.XMath.Sqrt(runningVar[c] + a.Eps) + beta[c];
        y[i] = a.Relu != 0 ? ILGPU.Algorithms.XMath.Max(v, 0f) : v;
    }

    /// <summary>dy, or with the ReLU fused dy where the forward output y &gt; 0, else 0.</summary>
    static float MaskedDy(BatchNormArgs a, ArrayView<float> dy, ArrayView<float> y, int k) =>
        a.Relu != 0 && !(y[k] > 0f) ? 0f : dy[k];

    // Group per channel: sum dy and sum dy * xhat (dy masked when the ReLU is fused); accumulates
    // dbeta, dgamma and keeps both sums in sums [2, C] for the dx kernel.
    static void BackwardSumsKernel(BatchNormArgs a, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> y, ArrayView<float> mean,
        ArrayView<float> invStd, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> sums)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int c = Grid.IdxX, t = Group.IdxX, g = Group.DimX;
        float mc = mean[c];
        float sumDy = 0, sumDyDev = 0;
        for (int i = t; i < a.M; i += g)
        {
            int k = ChannelElement(a, c, i);
            float d = MaskedDy(a, dy, y, k);
            sumDy += d;
            sumDyDev += d * (x[k] - mc);
        }
        sumDy = GroupSum(shared, sumDy);
        float sumDyXhat = GroupSum(shared, sumDyDev) * invStd[c];
        if (t == 0)
        {
            dbeta[c] += sumDy;
            dgamma[c] += sumDyXhat;
            sums[c] = sumDy;
            sums[a.C + c] = sumDyXhat;
        }
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
