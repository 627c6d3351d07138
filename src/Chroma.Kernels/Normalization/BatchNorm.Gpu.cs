using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

public static partial class BatchNorm
{
    /// <summary>Sizes and constants of one batch-norm launch, passed to kernels as one struct.</summary>
    /// <param name="M">Values per channel, N*S.</param>
    /// <param name="UnbiasFactor">m / (m - 1), turns the biased batch variance into the unbiased one.</param>
    public readonly record struct BatchNormArgs(int C, int S, int M, float Momentum, float UnbiasFactor, float Eps);

    /// <summary>
    /// Per-device scratch for the backward sums [2, C]: the dx kernel needs them after dgamma and dbeta
    /// have been accumulated into. Kept per device so that backward does not allocate (and, on CUDA,
    /// synchronize on the free) at every call; the device is used from one thread at a time.
    /// </summary>
    static readonly ConditionalWeakTable<GpuDevice, Tensor> s_scratch = new();

    static void ForwardTrainingGpu(GpuDevice gpu, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, Tensor saveMean, Tensor saveInvStd, int n, int c, int s, float momentum, float eps)
    {
        if (c == 0) return;
        int m = n * s;
        var args = new BatchNormArgs(c, s, m, momentum, (float)((double)m / (m - 1)), eps);
        gpu.GroupedKernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(StatisticsKernel)(
            ChannelGroups(gpu, c, m, 1), args, x.View, runningMean.View, runningVar.View, saveMean.View, saveInvStd.View);
        gpu.Kernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(NormalizeKernel)(
            x.Length, args, x.View, gamma.View, beta.View, saveMean.View, saveInvStd.View, y.View);
    }

    static void ForwardInferenceGpu(GpuDevice gpu, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, int c, int s, float eps)
    {
        if (x.Length == 0) return;
        var args = new BatchNormArgs(c, s, 0, 0f, 0f, eps);
        gpu.Kernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(InferenceKernel)(
            x.Length, args, x.View, gamma.View, beta.View, runningMean.View, runningVar.View, y.View);
    }

    static void BackwardGpu(GpuDevice gpu, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy, Tensor dx,
        Tensor dgamma, Tensor dbeta, int n, int c, int s)
    {
        if (c == 0) return;
        int m = n * s;
        var args = new BatchNormArgs(c, s, m, 0f, 0f, 0f);
        var sums = Scratch(gpu, 2 * c);
        gpu.GroupedKernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardSumsKernel)(
            ChannelGroups(gpu, c, m, 2), args, x.View, dy.View, saveMean.View, saveInvStd.View, dgamma.View, dbeta.View, sums);
        gpu.Kernel<BatchNormArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardDxKernel)(
            x.Length, args, x.View, dy.View, gamma.View, saveMean.View, saveInvStd.View, sums, dx.View);
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
        int limit = Math.Min(gpu.MaxGroupSize, 1024), size = 1;
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

    // Group per channel: mean, then the biased variance as the mean squared deviation (second pass
    // over x, no cancellation); thread 0 saves them and updates the running statistics.
    static void StatisticsKernel(BatchNormArgs a, ArrayView<float> x, ArrayView<float> runningMean, ArrayView<float> runningVar,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int c = Grid.IdxX, t = Group.IdxX, g = Group.DimX;
        float sum = 0;
        for (int i = t; i < a.M; i += g) sum += x[ChannelElement(a, c, i)];
        float mean = GroupSum(shared, sum) / a.M;
        float squares = 0;
        for (int i = t; i < a.M; i += g)
        {
            float d = x[ChannelElement(a, c, i)] - mean;
            squares += d * d;
        }
        float var = GroupSum(shared, squares) / a.M;
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
        y[i] = gamma[c] * (x[i] - mean[c]) * invStd[c] + beta[c];
    }

    static void InferenceKernel(Index1D i, BatchNormArgs a, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> y)
    {
        int c = i / a.S % a.C;
        y[i] = gamma[c] * (x[i] - runningMean[c]) / ILGPU.Algorithms.XMath.Sqrt(runningVar[c] + a.Eps) + beta[c];
    }

    // Group per channel: sum dy and sum dy * xhat; accumulates dbeta, dgamma and keeps both sums in
    // sums [2, C] for the dx kernel.
    static void BackwardSumsKernel(BatchNormArgs a, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> mean,
        ArrayView<float> invStd, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> sums)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int c = Grid.IdxX, t = Group.IdxX, g = Group.DimX;
        float mc = mean[c];
        float sumDy = 0, sumDyDev = 0;
        for (int i = t; i < a.M; i += g)
        {
            int k = ChannelElement(a, c, i);
            float d = dy[k];
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
    static void BackwardDxKernel(Index1D i, BatchNormArgs a, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> sums, ArrayView<float> dx)
    {
        int c = i / a.S % a.C;
        float inv = invStd[c];
        float xhat = (x[i] - mean[c]) * inv;
        dx[i] += gamma[c] * inv / a.M * (a.M * dy[i] - sums[c] - xhat * sums[a.C + c]);
    }
}
