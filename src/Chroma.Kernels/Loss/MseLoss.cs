using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// Mean squared error over all elements (the colorization loss: predicted vs target chrominance,
/// N x 2 x H/2 x W/2). Prediction and target may have any shape with the same element count.
/// <code>
/// forward:  L = mean((p - t)^2) = sum((p - t)^2) / count
/// backward: dp += scale * 2 (p - t) / count
/// </code>
/// </summary>
public static class MseLoss
{
    /// <summary>Elements per Parallel.For work item on the CPU path.</summary>
    const int ChunkSize = 1 << 16;

    /// <summary>Largest reduction group (CUDA's limit); sizes the kernel's shared memory.</summary>
    const int MaxReductionGroup = 1024;

    /// <summary>Returns L. Reduces on the device; the GPU path copies back only one partial sum per group.</summary>
    public static float Forward(Tensor prediction, Tensor target)
    {
        const string op = "MseLoss.Forward";
        CheckArguments(op, prediction, target);
        double sum = prediction.Device is GpuDevice gpu
            ? SumSquaredErrorGpu(gpu, prediction, target)
            : SumSquaredErrorCpu(prediction, target);
        return (float)(sum / prediction.Length);
    }

    /// <summary>dPrediction += scale * 2 (p - t) / count.</summary>
    public static void Backward(Tensor prediction, Tensor target, Tensor dPrediction, float scale = 1f)
    {
        const string op = "MseLoss.Backward";
        CheckArguments(op, prediction, target);
        Check.SameDevice(op, prediction, dPrediction);
        if (dPrediction.Length != prediction.Length)
            throw new ArgumentException($"{op}: dPrediction {dPrediction.ShapeString} must have as many elements as prediction {prediction.ShapeString}.");
        float coefficient = (float)(2.0 * scale / prediction.Length);
        if (prediction.Device is GpuDevice gpu)
            gpu.Kernel<float, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardKernel)(
                prediction.Length, coefficient, prediction.View, target.View, dPrediction.View);
        else
            BackwardCpu(prediction, target, dPrediction, coefficient);
    }

    static void CheckArguments(string op, Tensor prediction, Tensor target)
    {
        Check.SameDevice(op, prediction, target);
        if (target.Length != prediction.Length)
            throw new ArgumentException($"{op}: target {target.ShapeString} must have as many elements as prediction {prediction.ShapeString}.");
        if (prediction.Length == 0)
            throw new ArgumentException($"{op}: prediction {prediction.ShapeString} is empty; the mean is undefined.");
    }

    // ---- CPU path ----

    static double SumSquaredErrorCpu(Tensor prediction, Tensor target)
    {
        int n = prediction.Length;
        if (n <= 2 * ChunkSize) return SumSquaredError(prediction.Span, target.Span);
        float[] pa = prediction.HostArray, ta = target.HostArray;
        int po = prediction.Offset, to = target.Offset;
        // one partial per chunk, added in chunk order: the result does not depend on scheduling
        var partials = new double[(n + ChunkSize - 1) / ChunkSize];
        Parallel.For(0, partials.Length, chunk =>
        {
            int start = chunk * ChunkSize, len = Math.Min(ChunkSize, n - start);
            partials[chunk] = SumSquaredError(pa.AsSpan(po + start, len), ta.AsSpan(to + start, len));
        });
        double sum = 0;
        foreach (double s in partials) sum += s;
        return sum;
    }

    /// <summary>sum((p - t)^2), differences and squares in float64 (exact differences of floats, no drift over millions of terms).</summary>
    static double SumSquaredError(ReadOnlySpan<float> p, ReadOnlySpan<float> t)
    {
        int n = p.Length, i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            ref float rp = ref MemoryMarshal.GetReference(p);
            ref float rt = ref MemoryMarshal.GetReference(t);
            Vector256<double> accLower = Vector256<double>.Zero, accUpper = Vector256<double>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var (pLower, pUpper) = Vector256.Widen(Vector256.LoadUnsafe(ref rp, (nuint)i));
                var (tLower, tUpper) = Vector256.Widen(Vector256.LoadUnsafe(ref rt, (nuint)i));
                var dLower = pLower - tLower;
                var dUpper = pUpper - tUpper;
                accLower += dLower * dLower;
                accUpper += dUpper * dUpper;
            }
            sum = Vector256.Sum(accLower + accUpper);
        }
        for (; i < n; i++)
        {
            double d = (double)p[i] - t[i];
            sum += d * d;
        }
        return sum;
    }

    static void BackwardCpu(Tensor prediction, Tensor target, Tensor dPrediction, float coefficient)
    {
        int n = prediction.Length;
        if (n <= 2 * ChunkSize)
        {
            AccumulateGradient(prediction.Span, target.Span, dPrediction.Span, coefficient);
            return;
        }
        float[] pa = prediction.HostArray, ta = target.HostArray, da = dPrediction.HostArray;
        int po = prediction.Offset, to = target.Offset, dof = dPrediction.Offset;
        Parallel.For(0, (n + ChunkSize - 1) / ChunkSize, chunk =>
        {
            int start = chunk * ChunkSize, len = Math.Min(ChunkSize, n - start);
            AccumulateGradient(pa.AsSpan(po + start, len), ta.AsSpan(to + start, len), da.AsSpan(dof + start, len), coefficient);
        });
    }

    /// <summary>dp += coefficient * (p - t).</summary>
    static void AccumulateGradient(ReadOnlySpan<float> p, ReadOnlySpan<float> t, Span<float> dp, float coefficient)
    {
        int n = p.Length, i = 0;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            ref float rp = ref MemoryMarshal.GetReference(p);
            ref float rt = ref MemoryMarshal.GetReference(t);
            ref float rd = ref MemoryMarshal.GetReference(dp);
            var c = Vector256.Create(coefficient);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                nuint at = (nuint)i;
                var d = Vector256.LoadUnsafe(ref rp, at) - Vector256.LoadUnsafe(ref rt, at);
                (Vector256.LoadUnsafe(ref rd, at) + c * d).StoreUnsafe(ref rd, at);
            }
        }
        for (; i < n; i++) dp[i] += coefficient * (p[i] - t[i]);
    }

    // ---- GPU path ----

    /// <summary>
    /// Grouped reduction: at most groupSize groups of groupSize threads (1024 x 1024 on CUDA, 16 x 16 on
    /// the simulator); each thread sums a grid-stride slice, each group reduces in shared memory and
    /// writes one partial; the host adds the partials in float64.
    /// </summary>
    static double SumSquaredErrorGpu(GpuDevice gpu, Tensor prediction, Tensor target)
    {
        int n = prediction.Length;
        int groupSize = ReductionGroupSize(gpu);
        int groups = Math.Min((n + groupSize - 1) / groupSize, groupSize);
        gpu.Bind();
        using var partialsBuffer = gpu.Accelerator.Allocate1D<float>(groups);
        gpu.GroupedKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(SumSquaredErrorKernel)(
            new KernelConfig(groups, groupSize), prediction.View, target.View, partialsBuffer.View);
        var partials = new float[groups];
        partialsBuffer.View.CopyToCPU(partials); // waits for the kernel
        double sum = 0;
        foreach (float s in partials) sum += s;
        return sum;
    }

    /// <summary>Largest power of two within the accelerator's group limit and the shared-memory array.</summary>
    static int ReductionGroupSize(GpuDevice gpu)
    {
        int limit = Math.Min(gpu.Target.MaxGroupSize, MaxReductionGroup);
        int size = 1;
        while (size * 2 <= limit) size *= 2;
        return size;
    }

    // Grid: groups x groupSize (a power of two <= MaxReductionGroup). partials: one float per group.
    static void SumSquaredErrorKernel(ArrayView<float> prediction, ArrayView<float> target, ArrayView<float> partials)
    {
        var shared = SharedMemory.Allocate<float>(MaxReductionGroup);
        int lane = Group.IdxX, groupSize = Group.DimX;
        long n = prediction.Length, stride = (long)Grid.DimX * groupSize;
        float s = 0f;
        for (long i = (long)Grid.IdxX * groupSize + lane; i < n; i += stride) // coalesced: neighbours read neighbours
        {
            float d = prediction[i] - target[i];
            s += d * d;
        }
        shared[lane] = s;
        Group.Barrier();
        for (int half = groupSize / 2; half > 0; half /= 2)
        {
            if (lane < half) shared[lane] += shared[lane + half];
            Group.Barrier();
        }
        if (lane == 0) partials[Grid.IdxX] = shared[0];
    }

    static void BackwardKernel(Index1D i, float coefficient, ArrayView<float> prediction, ArrayView<float> target, ArrayView<float> dPrediction) =>
        dPrediction[i] += coefficient * (prediction[i] - target[i]);

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        public static double Forward(double[] p, double[] t)
        {
            if (p.Length != t.Length) throw new ArgumentException($"MseLoss.Reference.Forward: {p.Length} predictions, {t.Length} targets.");
            double sum = 0;
            for (int i = 0; i < p.Length; i++) sum += (p[i] - t[i]) * (p[i] - t[i]);
            return sum / p.Length;
        }
    }
}
