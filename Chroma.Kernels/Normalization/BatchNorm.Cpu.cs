using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Chroma.Kernels;

public static partial class BatchNorm
{
    // A channel of x [N,C,S] is N segments of S contiguous values, segment i at (i*C + c)*S.
    // Each segment goes through a SIMD loop in float; segments are summed in double per channel.
    // With S = 1 (x [N,C], after FC layers) a channel is a strided column, so those paths walk rows
    // for a block of channels instead, SIMD across the channels of a row.
    //
    // Passes over memory: training forward 2 (statistics, then y), inference 1, backward 2 (sums,
    // then dx). The statistics pass gets the mean and variance from sums of values shifted by the
    // channel's first value, sum d and sum d^2 with d = x - shift: mean = shift + sum d / m,
    // var = (sum d^2 - (sum d)^2 / m) / m. The shift is a sample of the channel, so sum d / m is of the
    // order of the standard deviation and the subtraction does not cancel a large mean away.
    //
    // Every loop is written once, generic over the vector width (ILanes: Vector512, Vector256,
    // Vector128 and scalar, picked at run time); the scalar instance finishes each vector loop's tail.

    /// <summary>Vector widths of the CPU path; <see cref="Auto"/> takes the widest the hardware accelerates.</summary>
    internal enum CpuWidth { Auto, Scalar, Vector128, Vector256, Vector512 }

    [ThreadStatic] static CpuWidth t_cpuWidth;

    /// <summary>
    /// The vector width the CPU path uses on the calling thread (tests run every width the machine
    /// accelerates); <see cref="CpuWidth.Auto"/> by default.
    /// </summary>
    internal static CpuWidth CpuWidthOnThisThread { get => t_cpuWidth; set => t_cpuWidth = value; }

    internal static bool IsAccelerated(CpuWidth width) => width switch
    {
        CpuWidth.Vector512 => Vector512.IsHardwareAccelerated,
        CpuWidth.Vector256 => Vector256.IsHardwareAccelerated,
        CpuWidth.Vector128 => Vector128.IsHardwareAccelerated,
        _ => true,
    };

    static CpuWidth ChosenWidth()
    {
        var w = t_cpuWidth;
        if (w == CpuWidth.Auto)
            return Vector512.IsHardwareAccelerated ? CpuWidth.Vector512 :
                   Vector256.IsHardwareAccelerated ? CpuWidth.Vector256 :
                   Vector128.IsHardwareAccelerated ? CpuWidth.Vector128 : CpuWidth.Scalar;
        if (!IsAccelerated(w)) throw new PlatformNotSupportedException($"BatchNorm: {w} is not accelerated on this machine.");
        return w;
    }

    static void ForwardTrainingCpu(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, Tensor saveMean, Tensor saveInvStd, int n, int c, int s, float momentum, float eps, bool relu)
    {
        switch (ChosenWidth())
        {
            case CpuWidth.Vector512: ForwardTrainingCpu<Lanes512, Vector512<float>>(x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd, n, c, s, momentum, eps, relu); break;
            case CpuWidth.Vector256: ForwardTrainingCpu<Lanes256, Vector256<float>>(x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd, n, c, s, momentum, eps, relu); break;
            case CpuWidth.Vector128: ForwardTrainingCpu<Lanes128, Vector128<float>>(x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd, n, c, s, momentum, eps, relu); break;
            default: ForwardTrainingCpu<Lanes1, float>(x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd, n, c, s, momentum, eps, relu); break;
        }
    }

    static void ForwardInferenceCpu(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, int n, int c, int s, float eps, bool relu)
    {
        switch (ChosenWidth())
        {
            case CpuWidth.Vector512: ForwardInferenceCpu<Lanes512, Vector512<float>>(x, gamma, beta, runningMean, runningVar, y, n, c, s, eps, relu); break;
            case CpuWidth.Vector256: ForwardInferenceCpu<Lanes256, Vector256<float>>(x, gamma, beta, runningMean, runningVar, y, n, c, s, eps, relu); break;
            case CpuWidth.Vector128: ForwardInferenceCpu<Lanes128, Vector128<float>>(x, gamma, beta, runningMean, runningVar, y, n, c, s, eps, relu); break;
            default: ForwardInferenceCpu<Lanes1, float>(x, gamma, beta, runningMean, runningVar, y, n, c, s, eps, relu); break;
        }
    }

    static void BackwardCpu(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy, Tensor dx,
        Tensor dgamma, Tensor dbeta, Tensor? reluOutput, int n, int c, int s)
    {
        switch (ChosenWidth())
        {
            case CpuWidth.Vector512: BackwardCpu<Lanes512, Vector512<float>>(x, gamma, saveMean, saveInvStd, dy, dx, dgamma, dbeta, reluOutput, n, c, s); break;
            case CpuWidth.Vector256: BackwardCpu<Lanes256, Vector256<float>>(x, gamma, saveMean, saveInvStd, dy, dx, dgamma, dbeta, reluOutput, n, c, s); break;
            case CpuWidth.Vector128: BackwardCpu<Lanes128, Vector128<float>>(x, gamma, saveMean, saveInvStd, dy, dx, dgamma, dbeta, reluOutput, n, c, s); break;
            default: BackwardCpu<Lanes1, float>(x, gamma, saveMean, saveInvStd, dy, dx, dgamma, dbeta, reluOutput, n, c, s); break;
        }
    }

    static void ForwardTrainingCpu<T, V>(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, Tensor saveMean, Tensor saveInvStd, int n, int c, int s, float momentum, float eps, bool relu)
        where T : struct, ILanes<V> where V : struct
    {
        float[] xa = x.HostArray, ya = y.HostArray, g = gamma.HostArray, b = beta.HostArray;
        float[] rm = runningMean.HostArray, rv = runningVar.HostArray, sm = saveMean.HostArray, si = saveInvStd.HostArray;
        int xo = x.Offset, yo = y.Offset, go = gamma.Offset, bo = beta.Offset;
        int rmo = runningMean.Offset, rvo = runningVar.Offset, smo = saveMean.Offset, sio = saveInvStd.Offset;
        long m = (long)n * s;

        // From the shifted sums: saves the statistics, updates the running ones and returns the
        // coefficients of y = x * scale + shift.
        (float Scale, float Shift) Finish(int ch, float shift, double sumD, double sumD2)
        {
            double mean = shift + sumD / m;
            double var = Math.Max(0, (sumD2 - sumD * sumD / m) / m);
            double invStd = 1 / Math.Sqrt(var + eps);
            sm[smo + ch] = (float)mean;
            si[sio + ch] = (float)invStd;
            rm[rmo + ch] = (float)((1 - momentum) * rm[rmo + ch] + momentum * mean);
            rv[rvo + ch] = (float)((1 - momentum) * rv[rvo + ch] + momentum * var * m / (m - 1));
            double scale = g[go + ch] * invStd;
            return ((float)scale, (float)(b[bo + ch] - mean * scale));
        }

        if (s == 1)
        {
            // x [N,C]: a channel is a column; walk rows contiguously for a block of columns, the
            // shift being row 0. Accumulators are float per column (a column is one segment of N values).
            ForEachChannelBlock(c, s, x.Length, (c0, width) =>
            {
                Span<float> shift = stackalloc float[width], sum = stackalloc float[width], sum2 = stackalloc float[width];
                Span<float> scale = stackalloc float[width], offset = stackalloc float[width];
                xa.AsSpan(xo + c0, width).CopyTo(shift);
                sum.Clear(); sum2.Clear();
                for (int i = 1; i < n; i++) RowShiftedSums<T, V>(xa.AsSpan(xo + i * c + c0, width), shift, sum, sum2);
                for (int j = 0; j < width; j++) (scale[j], offset[j]) = Finish(c0 + j, shift[j], sum[j], sum2[j]);
                for (int i = 0; i < n; i++)
                    RowScaleShift<T, V>(xa.AsSpan(xo + i * c + c0, width), ya.AsSpan(yo + i * c + c0, width), scale, offset, relu);
            });
            return;
        }

        ForEachChannelBlock(c, s, x.Length, (c0, width) =>
        {
            for (int ch = c0; ch < c0 + width; ch++)
            {
                float shift = xa[xo + ch * s];
                double sumD = 0, sumD2 = 0;
                for (int i = 0; i < n; i++)
                {
                    var (d, d2) = ShiftedSums<T, V>(xa.AsSpan(xo + (i * c + ch) * s, s), shift);
                    sumD += d;
                    sumD2 += d2;
                }
                var (scale, offset) = Finish(ch, shift, sumD, sumD2);
                for (int i = 0; i < n; i++)
                {
                    int at = (i * c + ch) * s;
                    ScaleShift<T, V>(xa.AsSpan(xo + at, s), ya.AsSpan(yo + at, s), scale, offset, relu);
                }
            }
        });
    }

    [ThreadStatic] static Workspace? _inferenceCoefficients;

    static void ForwardInferenceCpu<T, V>(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, int n, int c, int s, float eps, bool relu)
        where T : struct, ILanes<V> where V : struct
    {
        float[] xa = x.HostArray, ya = y.HostArray, g = gamma.HostArray, b = beta.HostArray;
        float[] rm = runningMean.HostArray, rv = runningVar.HostArray;
        int xo = x.Offset, yo = y.Offset, go = gamma.Offset, bo = beta.Offset, rmo = runningMean.Offset, rvo = runningVar.Offset;
        // y = x * scale + shift per channel: coefficients [2, C] (scale, then shift) in a Workspace lease.
        using var coefficients = Workspace.Take(ref _inferenceCoefficients, 2 * c);
        float[] ca = coefficients.Array;
        int scaleOff = coefficients.Offset, shiftOff = scaleOff + c;
        var scale = ca.AsSpan(scaleOff, c);
        var shift = ca.AsSpan(shiftOff, c);
        for (int ch = 0; ch < c; ch++)
        {
            double sc = g[go + ch] / Math.Sqrt((double)rv[rvo + ch] + eps);
            scale[ch] = (float)sc;
            shift[ch] = (float)(b[bo + ch] - rm[rmo + ch] * sc);
        }
        if (s == 1)
        {
            // x [N,C]: each row is one multiply-add with the coefficient vectors.
            for (int i = 0; i < n; i++) RowScaleShift<T, V>(xa.AsSpan(xo + i * c, c), ya.AsSpan(yo + i * c, c), scale, shift, relu);
            return;
        }
        ForEachChannelBlock(c, s, x.Length, (c0, width) =>
        {
            for (int ch = c0; ch < c0 + width; ch++)
                for (int i = 0; i < n; i++)
                {
                    int at = (i * c + ch) * s;
                    ScaleShift<T, V>(xa.AsSpan(xo + at, s), ya.AsSpan(yo + at, s), ca[scaleOff + ch], ca[shiftOff + ch], relu);
                }
        });
    }

    static void BackwardCpu<T, V>(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy, Tensor dx,
        Tensor dgamma, Tensor dbeta, Tensor? reluOutput, int n, int c, int s)
        where T : struct, ILanes<V> where V : struct
    {
        float[] xa = x.HostArray, dya = dy.HostArray, dxa = dx.HostArray, g = gamma.HostArray;
        float[] sm = saveMean.HostArray, si = saveInvStd.HostArray, dga = dgamma.HostArray, dba = dbeta.HostArray;
        int xo = x.Offset, dyo = dy.Offset, dxo = dx.Offset, go = gamma.Offset, smo = saveMean.Offset, sio = saveInvStd.Offset;
        int dgo = dgamma.Offset, dbo = dbeta.Offset;
        // With the ReLU fused, dy is masked by y > 0 as it is read; without, y is never read (an empty span).
        bool relu = reluOutput is not null;
        float[] ra = reluOutput?.HostArray ?? [];
        int ro = reluOutput?.Offset ?? 0;
        ReadOnlySpan<float> Mask(int at, int length) => relu ? ra.AsSpan(ro + at, length) : default;
        long m = (long)n * s;

        // Accumulates dgamma, dbeta and returns the coefficients of
        // dx += k (m dy - sumDy - xhat sumDyXhat), k = gamma invStd / m, written as a dy + b (x - mean) + c0.
        (float A, float B, float C0) Finish(int ch, double sumDy, double sumDyDev)
        {
            double invStd = si[sio + ch];
            double sumDyXhat = sumDyDev * invStd;
            dba[dbo + ch] += (float)sumDy;
            dga[dgo + ch] += (float)sumDyXhat;
            double k = g[go + ch] * invStd / m;
            return ((float)(k * m), (float)(-k * invStd * sumDyXhat), (float)(-k * sumDy));
        }

        if (s == 1)
        {
            // x [N,C]: a channel is a column; walk rows contiguously for a block of columns.
            ForEachChannelBlock(c, s, x.Length, (c0, width) =>
            {
                Span<float> sumDy = stackalloc float[width], sumDyDev = stackalloc float[width];
                Span<float> a = stackalloc float[width], bDev = stackalloc float[width], c0s = stackalloc float[width];
                sumDy.Clear(); sumDyDev.Clear();
                var mean = sm.AsSpan(smo + c0, width);
                for (int i = 0; i < n; i++)
                {
                    int at = i * c + c0;
                    RowBackwardSums<T, V>(xa.AsSpan(xo + at, width), dya.AsSpan(dyo + at, width), Mask(at, width), relu, mean, sumDy, sumDyDev);
                }
                for (int j = 0; j < width; j++) (a[j], bDev[j], c0s[j]) = Finish(c0 + j, sumDy[j], sumDyDev[j]);
                for (int i = 0; i < n; i++)
                {
                    int at = i * c + c0;
                    RowAccumulateDx<T, V>(xa.AsSpan(xo + at, width), dya.AsSpan(dyo + at, width), Mask(at, width), relu,
                        dxa.AsSpan(dxo + at, width), mean, a, bDev, c0s);
                }
            });
            return;
        }

        ForEachChannelBlock(c, s, x.Length, (c0, width) =>
        {
            for (int ch = c0; ch < c0 + width; ch++)
            {
                float mean = sm[smo + ch];
                double sumDy = 0, sumDyDev = 0;
                for (int i = 0; i < n; i++)
                {
                    int at = (i * c + ch) * s;
                    var (d, dd) = BackwardSums<T, V>(xa.AsSpan(xo + at, s), dya.AsSpan(dyo + at, s), Mask(at, s), relu, mean);
                    sumDy += d;
                    sumDyDev += dd;
                }
                var (a, bDev, c0s) = Finish(ch, sumDy, sumDyDev);
                for (int i = 0; i < n; i++)
                {
                    int at = (i * c + ch) * s;
                    AccumulateDx<T, V>(xa.AsSpan(xo + at, s), dya.AsSpan(dyo + at, s), Mask(at, s), relu, dxa.AsSpan(dxo + at, s), mean, a, bDev, c0s);
                }
            }
        });
    }

    /// <summary>
    /// Runs <paramref name="body"/>(first channel, count) over blocks of channels, in parallel when the
    /// tensor is large (<see cref="CpuLoop.For"/>, its default threshold of 2^15 elements). With S = 1 a
    /// block is 64 columns walked row by row; with small S a block holds enough channels that
    /// neighbouring threads do not write the same cache lines.
    /// </summary>
    static void ForEachChannelBlock(int c, int s, int length, Action<int, int> body)
    {
        int perBlock = s == 1 ? 64 : s >= 16 ? 1 : (16 + s - 1) / s;
        int blocks = (c + perBlock - 1) / perBlock;
        long perChannel = c == 0 ? 0 : length / c;   // N*S elements
        CpuLoop.For(blocks, perBlock * perChannel, blk => body(blk * perBlock, Math.Min(perBlock, c - blk * perBlock)));
    }

    // ---- Segment loops (one channel's S contiguous values). Each wrapper runs the loop at width T,
    // ---- then at width 1 from where it stopped.

    /// <summary>sum (x - shift) and sum (x - shift)^2.</summary>
    static (float Sum, float SumSquares) ShiftedSums<T, V>(ReadOnlySpan<float> x, float shift)
        where T : struct, ILanes<V> where V : struct
    {
        float sum = 0, sum2 = 0;
        int i = ShiftedSums<T, V>(x, 0, shift, ref sum, ref sum2);
        ShiftedSums<Lanes1, float>(x, i, shift, ref sum, ref sum2);
        return (sum, sum2);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static int ShiftedSums<T, V>(ReadOnlySpan<float> x, int i, float shift, ref float sum, ref float sum2)
        where T : struct, ILanes<V> where V : struct
    {
        ref float rx = ref MemoryMarshal.GetReference(x);
        V sv = T.Create(shift), acc = T.Zero, acc2 = T.Zero;
        for (; i <= x.Length - T.Count; i += T.Count)
        {
            var d = T.Subtract(T.Load(ref rx, i), sv);
            acc = T.Add(acc, d);
            acc2 = T.MultiplyAdd(d, d, acc2);
        }
        sum += T.Sum(acc);
        sum2 += T.Sum(acc2);
        return i;
    }

    /// <summary>y = x * scale + shift, then max(0, .) when <paramref name="relu"/>.</summary>
    static void ScaleShift<T, V>(ReadOnlySpan<float> x, Span<float> y, float scale, float shift, bool relu)
        where T : struct, ILanes<V> where V : struct
    {
        int i = ScaleShift<T, V>(x, y, 0, scale, shift, relu);
        ScaleShift<Lanes1, float>(x, y, i, scale, shift, relu);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static int ScaleShift<T, V>(ReadOnlySpan<float> x, Span<float> y, int i, float scale, float shift, bool relu)
        where T : struct, ILanes<V> where V : struct
    {
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float ry = ref MemoryMarshal.GetReference(y);
        V sv = T.Create(scale), tv = T.Create(shift);
        for (; i <= x.Length - T.Count; i += T.Count)
        {
            var v = T.MultiplyAdd(T.Load(ref rx, i), sv, tv);
            if (relu) v = T.Max(v, T.Zero);
            T.Store(v, ref ry, i);
        }
        return i;
    }

    /// <summary>sum g and sum g * (x - mean), g = dy masked by y > 0 when <paramref name="relu"/>.</summary>
    static (float SumDy, float SumDyDev) BackwardSums<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y,
        bool relu, float mean)
        where T : struct, ILanes<V> where V : struct
    {
        float sumDy = 0, sumDyDev = 0;
        int i = BackwardSums<T, V>(x, dy, y, relu, 0, mean, ref sumDy, ref sumDyDev);
        BackwardSums<Lanes1, float>(x, dy, y, relu, i, mean, ref sumDy, ref sumDyDev);
        return (sumDy, sumDyDev);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static int BackwardSums<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, bool relu, int i,
        float mean, ref float sumDy, ref float sumDyDev)
        where T : struct, ILanes<V> where V : struct
    {
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float rdy = ref MemoryMarshal.GetReference(dy);
        ref float ry = ref MemoryMarshal.GetReference(y);
        V mv = T.Create(mean), acc = T.Zero, accDev = T.Zero;
        for (; i <= x.Length - T.Count; i += T.Count)
        {
            var d = T.Load(ref rdy, i);
            if (relu) d = T.WherePositive(T.Load(ref ry, i), d);
            acc = T.Add(acc, d);
            accDev = T.MultiplyAdd(d, T.Subtract(T.Load(ref rx, i), mv), accDev);
        }
        sumDy += T.Sum(acc);
        sumDyDev += T.Sum(accDev);
        return i;
    }

    /// <summary>dx += a g + b (x - mean) + c0, g = dy masked by y > 0 when <paramref name="relu"/>.</summary>
    static void AccumulateDx<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, bool relu, Span<float> dx,
        float mean, float a, float b, float c0)
        where T : struct, ILanes<V> where V : struct
    {
        int i = AccumulateDx<T, V>(x, dy, y, relu, dx, 0, mean, a, b, c0);
        AccumulateDx<Lanes1, float>(x, dy, y, relu, dx, i, mean, a, b, c0);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static int AccumulateDx<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, bool relu, Span<float> dx,
        int i, float mean, float a, float b, float c0)
        where T : struct, ILanes<V> where V : struct
    {
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float rdy = ref MemoryMarshal.GetReference(dy);
        ref float ry = ref MemoryMarshal.GetReference(y);
        ref float rdx = ref MemoryMarshal.GetReference(dx);
        V mv = T.Create(mean), av = T.Create(a), bv = T.Create(b), cv = T.Create(c0);
        for (; i <= x.Length - T.Count; i += T.Count)
        {
            var d = T.Load(ref rdy, i);
            if (relu) d = T.WherePositive(T.Load(ref ry, i), d);
            var acc = T.Add(T.Load(ref rdx, i), cv);
            acc = T.MultiplyAdd(T.Subtract(T.Load(ref rx, i), mv), bv, acc);
            T.Store(T.MultiplyAdd(d, av, acc), ref rdx, i);
        }
        return i;
    }

    // ---- Row loops (x [N,C]: one row of a block of channels, per-channel coefficients as spans).

    /// <summary>sum[j] += x[j] - shift[j], sum2[j] += (x[j] - shift[j])^2.</summary>
    static void RowShiftedSums<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> shift, Span<float> sum, Span<float> sum2)
        where T : struct, ILanes<V> where V : struct
    {
        int i = RowShiftedSums<T, V>(x, shift, sum, sum2, 0);
        RowShiftedSums<Lanes1, float>(x, shift, sum, sum2, i);
    }

    static int RowShiftedSums<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> shift, Span<float> sum, Span<float> sum2, int i)
        where T : struct, ILanes<V> where V : struct
    {
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float rs = ref MemoryMarshal.GetReference(shift);
        ref float r1 = ref MemoryMarshal.GetReference(sum);
        ref float r2 = ref MemoryMarshal.GetReference(sum2);
        for (; i <= x.Length - T.Count; i += T.Count)
        {
            var d = T.Subtract(T.Load(ref rx, i), T.Load(ref rs, i));
            T.Store(T.Add(T.Load(ref r1, i), d), ref r1, i);
            T.Store(T.MultiplyAdd(d, d, T.Load(ref r2, i)), ref r2, i);
        }
        return i;
    }

    /// <summary>y[j] = x[j] * scale[j] + shift[j], then max(0, .) when <paramref name="relu"/>.</summary>
    static void RowScaleShift<T, V>(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, bool relu)
        where T : struct, ILanes<V> where V : struct
    {
        int i = RowScaleShift<T, V>(x, y, scale, shift, relu, 0);
        RowScaleShift<Lanes1, float>(x, y, scale, shift, relu, i);
    }

    static int RowScaleShift<T, V>(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, bool relu, int i)
        where T : struct, ILanes<V> where V : struct
    {
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float ry = ref MemoryMarshal.GetReference(y);
        ref float rs = ref MemoryMarshal.GetReference(scale);
        ref float rt = ref MemoryMarshal.GetReference(shift);
        for (; i <= x.Length - T.Count; i += T.Count)
        {
            var v = T.MultiplyAdd(T.Load(ref rx, i), T.Load(ref rs, i), T.Load(ref rt, i));
            if (relu) v = T.Max(v, T.Zero);
            T.Store(v, ref ry, i);
        }
        return i;
    }

    /// <summary>sumDy[j] += g[j], sumDyDev[j] += g[j] (x[j] - mean[j]), g = dy masked by y > 0 when <paramref name="relu"/>.</summary>
    static void RowBackwardSums<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, bool relu,
        ReadOnlySpan<float> mean, Span<float> sumDy, Span<float> sumDyDev)
        where T : struct, ILanes<V> where V : struct
    {
        int i = RowBackwardSums<T, V>(x, dy, y, relu, mean, sumDy, sumDyDev, 0);
        RowBackwardSums<Lanes1, float>(x, dy, y, relu, mean, sumDy, sumDyDev, i);
    }

    static int RowBackwardSums<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, bool relu,
        ReadOnlySpan<float> mean, Span<float> sumDy, Span<float> sumDyDev, int i)
        where T : struct, ILanes<V> where V : struct
    {
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float rdy = ref MemoryMarshal.GetReference(dy);
        ref float ry = ref MemoryMarshal.GetReference(y);
        ref float rm = ref MemoryMarshal.GetReference(mean);
        ref float r1 = ref MemoryMarshal.GetReference(sumDy);
        ref float r2 = ref MemoryMarshal.GetReference(sumDyDev);
        for (; i <= x.Length - T.Count; i += T.Count)
        {
            var d = T.Load(ref rdy, i);
            if (relu) d = T.WherePositive(T.Load(ref ry, i), d);
            T.Store(T.Add(T.Load(ref r1, i), d), ref r1, i);
            T.Store(T.MultiplyAdd(d, T.Subtract(T.Load(ref rx, i), T.Load(ref rm, i)), T.Load(ref r2, i)), ref r2, i);
        }
        return i;
    }

    /// <summary>dx[j] += a[j] g[j] + b[j] (x[j] - mean[j]) + c0[j], g = dy masked by y > 0 when <paramref name="relu"/>.</summary>
    static void RowAccumulateDx<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, bool relu, Span<float> dx,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c0)
        where T : struct, ILanes<V> where V : struct
    {
        int i = RowAccumulateDx<T, V>(x, dy, y, relu, dx, mean, a, b, c0, 0);
        RowAccumulateDx<Lanes1, float>(x, dy, y, relu, dx, mean, a, b, c0, i);
    }

    static int RowAccumulateDx<T, V>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, bool relu, Span<float> dx,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c0, int i)
        where T : struct, ILanes<V> where V : struct
    {
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float rdy = ref MemoryMarshal.GetReference(dy);
        ref float ry = ref MemoryMarshal.GetReference(y);
        ref float rdx = ref MemoryMarshal.GetReference(dx);
        ref float rm = ref MemoryMarshal.GetReference(mean);
        ref float ra = ref MemoryMarshal.GetReference(a);
        ref float rb = ref MemoryMarshal.GetReference(b);
        ref float rc = ref MemoryMarshal.GetReference(c0);
        for (; i <= x.Length - T.Count; i += T.Count)
        {
            var d = T.Load(ref rdy, i);
            if (relu) d = T.WherePositive(T.Load(ref ry, i), d);
            var acc = T.Add(T.Load(ref rdx, i), T.Load(ref rc, i));
            acc = T.MultiplyAdd(T.Subtract(T.Load(ref rx, i), T.Load(ref rm, i)), T.Load(ref rb, i), acc);
            T.Store(T.MultiplyAdd(d, T.Load(ref ra, i), acc), ref rdx, i);
        }
        return i;
    }

    /// <summary>The vector operations the loops above need, for one width (float lanes).</summary>
    internal interface ILanes<V> where V : struct
    {
        /// <summary>Floats per vector.</summary>
        static abstract int Count { get; }
        static abstract V Zero { get; }
        static abstract V Create(float value);
        static abstract V Load(ref float at, int i);
        static abstract void Store(V v, ref float at, int i);
        static abstract V Add(V x, V y);
        static abstract V Subtract(V x, V y);
        /// <summary>x * y + z, fused where the hardware has FMA.</summary>
        static abstract V MultiplyAdd(V x, V y, V z);
        /// <summary>Lane-wise maximum, NaN-propagating like MathF.Max.</summary>
        static abstract V Max(V x, V y);
        /// <summary>v where y &gt; 0, else 0 (the ReLU backward mask).</summary>
        static abstract V WherePositive(V y, V v);
        static abstract float Sum(V v);
    }

    internal struct Lanes512 : ILanes<Vector512<float>>
    {
        public static int Count => Vector512<float>.Count;
        public static Vector512<float> Zero => Vector512<float>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Create(float value) => Vector512.Create(value);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ref float at, int i) => Vector512.LoadUnsafe(ref at, (nuint)i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> v, ref float at, int i) => v.StoreUnsafe(ref at, (nuint)i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> x, Vector512<float> y) => x + y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Subtract(Vector512<float> x, Vector512<float> y) => x - y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MultiplyAdd(Vector512<float> x, Vector512<float> y, Vector512<float> z) => Vector512.MultiplyAddEstimate(x, y, z);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> x, Vector512<float> y) => Vector512.Max(x, y);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> WherePositive(Vector512<float> y, Vector512<float> v) => Vector512.ConditionalSelect(Vector512.GreaterThan(y, Vector512<float>.Zero), v, Vector512<float>.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> v) => Vector512.Sum(v);
    }

    internal struct Lanes256 : ILanes<Vector256<float>>
    {
        public static int Count => Vector256<float>.Count;
        public static Vector256<float> Zero => Vector256<float>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Create(float value) => Vector256.Create(value);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(ref float at, int i) => Vector256.LoadUnsafe(ref at, (nuint)i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> v, ref float at, int i) => v.StoreUnsafe(ref at, (nuint)i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> x, Vector256<float> y) => x + y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Subtract(Vector256<float> x, Vector256<float> y) => x - y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MultiplyAdd(Vector256<float> x, Vector256<float> y, Vector256<float> z) => Vector256.MultiplyAddEstimate(x, y, z);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> x, Vector256<float> y) => Vector256.Max(x, y);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> WherePositive(Vector256<float> y, Vector256<float> v) => Vector256.ConditionalSelect(Vector256.GreaterThan(y, Vector256<float>.Zero), v, Vector256<float>.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> v) => Vector256.Sum(v);
    }

    internal struct Lanes128 : ILanes<Vector128<float>>
    {
        public static int Count => Vector128<float>.Count;
        public static Vector128<float> Zero => Vector128<float>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Create(float value) => Vector128.Create(value);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(ref float at, int i) => Vector128.LoadUnsafe(ref at, (nuint)i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector128<float> v, ref float at, int i) => v.StoreUnsafe(ref at, (nuint)i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> x, Vector128<float> y) => x + y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Subtract(Vector128<float> x, Vector128<float> y) => x - y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MultiplyAdd(Vector128<float> x, Vector128<float> y, Vector128<float> z) => Vector128.MultiplyAddEstimate(x, y, z);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> x, Vector128<float> y) => Vector128.Max(x, y);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> WherePositive(Vector128<float> y, Vector128<float> v) => Vector128.ConditionalSelect(Vector128.GreaterThan(y, Vector128<float>.Zero), v, Vector128<float>.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> v) => Vector128.Sum(v);
    }

    /// <summary>Width 1: the scalar fallback, and the tail of every vector loop.</summary>
    internal struct Lanes1 : ILanes<float>
    {
        public static int Count => 1;
        public static float Zero => 0f;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Create(float value) => value;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(ref float at, int i) => Unsafe.Add(ref at, i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float v, ref float at, int i) => Unsafe.Add(ref at, i) = v;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float x, float y) => x + y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Subtract(float x, float y) => x - y;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MultiplyAdd(float x, float y, float z) => float.MultiplyAddEstimate(x, y, z);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Max(float x, float y) => MathF.Max(x, y);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float WherePositive(float y, float v) => y > 0f ? v : 0f;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(float v) => v;
    }
}
