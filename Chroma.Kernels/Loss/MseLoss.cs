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
    /// <summary>
    /// Elements per range of the CPU path's <see cref="CpuLoop.Chunks"/> (2^16: 256 KB of each operand;
    /// chosen with the op, no measurement recorded). The sum keeps one partial per range, so its result
    /// does not depend on the core count.
    /// </summary>
    const int ChunkSize = 1 << 16;

    /// <summary>Up to this many elements (two ranges) the CPU path makes one pass on the calling thread, without partials.</summary>
    const int OnePassUpTo = 2 * ChunkSize;

    /// <summary>Returns L (on the GPU path: <see cref="Forward(Tensor, Tensor, Tensor, bool)"/> and one 4-byte readback).</summary>
    public static float Forward(Tensor prediction, Tensor target)
    {
        const string op = "MseLoss.Forward";
        CheckArguments(op, prediction, target);
        if (prediction.Device is not GpuDevice gpu) return (float)(SumSquaredErrorCpu(prediction, target) / prediction.Length);
        var loss = gpu.Workspace("mse.loss", 1);
        Forward(prediction, target, loss);
        gpu.NameNextTransfer("loss readback");
        return loss.ToArray()[0];
    }

    /// <summary>
    /// Writes L into <paramref name="loss"/> (one element, on the prediction's device), or adds it there
    /// with <paramref name="accumulate"/>: the loss stays on the device until someone reads it, so a
    /// training step makes no host round trip for it.
    /// </summary>
    public static void Forward(Tensor prediction, Tensor target, Tensor loss, bool accumulate = false)
    {
        const string op = "MseLoss.Forward";
        CheckArguments(op, prediction, target);
        Check.SameDevice(op, prediction, loss);
        if (loss.Length != 1) throw new ArgumentException($"{op}: loss {loss.ShapeString} must have one element.");
        if (prediction.Device is GpuDevice gpu) { ForwardGpu(gpu, prediction, target, loss, accumulate); return; }
        float mean = (float)(SumSquaredErrorCpu(prediction, target) / prediction.Length);
        loss.Span[0] = accumulate ? loss.Span[0] + mean : mean;
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
        if (n <= OnePassUpTo) return SumSquaredError(prediction.Span, target.Span);
        float[] pa = prediction.HostArray, ta = target.HostArray;
        int po = prediction.Offset, to = target.Offset;
        // one partial per range, added in range order: the result does not depend on scheduling
        var partials = new double[CpuLoop.ChunkCount(n, ChunkSize)];
        CpuLoop.Chunks(n, 1, ChunkSize, (start, end) =>
            partials[start / ChunkSize] = SumSquaredError(pa.AsSpan(po + start, end - start), ta.AsSpan(to + start, end - start)));
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
        if (n <= OnePassUpTo)
        {
            AccumulateGradient(prediction.Span, target.Span, dPrediction.Span, coefficient);
            return;
        }
        float[] pa = prediction.HostArray, ta = target.HostArray, da = dPrediction.HostArray;
        int po = prediction.Offset, to = target.Offset, dof = dPrediction.Offset;
        CpuLoop.Chunks(n, 1, ChunkSize, (start, end) =>
            AccumulateGradient(pa.AsSpan(po + start, end - start), ta.AsSpan(to + start, end - start), da.AsSpan(dof + start, end - start), coefficient));
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
    /// The two passes of the device-side sum: pass 1 has groups of up to 256 threads, each thread summing
    /// a grid-stride slice (at least <see cref="MinValuesPerThread"/> values) and each group reducing in
    /// shared memory to one partial; pass 2 (one thread) adds the partials in order and writes the mean.
    /// 392 groups for the training target at width 0.25 (16 x 2 x 112 x 112 values).
    /// </summary>
    public static (LaunchPlan Partial, LaunchPlan Final) PlanGpu(GpuTarget target, long count)
    {
        int group = target.PowerOfTwoGroup(Reductions.MaxGroup);
        int groups = (int)Math.Clamp((count + (long)group * MinValuesPerThread - 1) / ((long)group * MinValuesPerThread), 1, MaxPartials);
        return (new LaunchPlan(nameof(MseLoss) + "." + nameof(SumSquaredErrorKernel), new Index3D(groups, 1, 1), new Index3D(group, 1, 1), count),
                new LaunchPlan(nameof(MseLoss) + "." + nameof(FinishKernel), new Index3D(1, 1, 1), default, groups));
    }

    const int MinValuesPerThread = 4;
    const int MaxPartials = 1024;

    static void ForwardGpu(GpuDevice gpu, Tensor prediction, Tensor target, Tensor loss, bool accumulate)
    {
        var (partial, final) = PlanGpu(gpu.Target, prediction.Length);
        var partials = gpu.Workspace("mse.partials", partial.Grid.X).View;
        gpu.Launching(partial);
        gpu.GroupedKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(SumSquaredErrorKernel)(
            new KernelConfig(partial.Grid, partial.Group), prediction.View, target.View, partials);
        gpu.Launching(final);
        gpu.Kernel<int, float, int, ArrayView<float>, ArrayView<float>>(FinishKernel)(
            1, partial.Grid.X, 1f / prediction.Length, accumulate ? 1 : 0, partials, loss.View);
    }

    // Grid: groups x group size (a power of two <= Reductions.MaxGroup). partials: one float per group.
    static void SumSquaredErrorKernel(ArrayView<float> prediction, ArrayView<float> target, ArrayView<float> partials)
    {
        var shared = SharedMemory.Allocate<float>(Reductions.MaxGroup);
        int lane = Group.IdxX, groupSize = Group.DimX;
        long n = prediction.Length, stride = (long)Grid.DimX * groupSize;
        float s = 0f;
        for (long i = (long)Grid.IdxX * groupSize + lane; i < n; i += stride) // coalesced: neighbours read neighbours
        {
            float d = prediction[i] - target[i];
            s += d * d;
        }
        s = Reductions.GroupSum(shared, s);
        if (lane == 0) partials[Grid.IdxX] = s;
    }

    // One thread: loss[0] (+)= (sum of the partials in order) * scale.
    static void FinishKernel(Index1D index, int count, float scale, int accumulate, ArrayView<float> partials, ArrayView<float> loss)
    {
        float sum = 0f;
        for (int g = 0; g < count; g++) sum += partials[g];
        loss[0] = (accumulate != 0 ? loss[0] : 0f) + sum * scale;
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
