using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Numerics.Tensors;

namespace Chroma.Kernels;

public static partial class BatchNorm
{
    // A channel of x [N,C,S] is N segments of S contiguous values, segment i at (i*C + c)*S.
    // Each segment goes through a SIMD loop in float; segments are summed in double per channel.
    // With S = 1 (x [N,C], after FC layers) a channel is a strided column, so those paths walk rows
    // for a block of channels instead.

    static void ForwardTrainingCpu(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, Tensor saveMean, Tensor saveInvStd, int n, int c, int s, float momentum, float eps)
    {
        float[] xa = x.HostArray, ya = y.HostArray, g = gamma.HostArray, b = beta.HostArray;
        float[] rm = runningMean.HostArray, rv = runningVar.HostArray, sm = saveMean.HostArray, si = saveInvStd.HostArray;
        int xo = x.Offset, yo = y.Offset, go = gamma.Offset, bo = beta.Offset;
        int rmo = runningMean.Offset, rvo = runningVar.Offset, smo = saveMean.Offset, sio = saveInvStd.Offset;
        long m = (long)n * s;

        // Deviations are taken from the float-rounded mean; their sum corrects for that rounding.
        // Saves the statistics, updates the running ones and returns y = x * scale + shift's coefficients.
        (float Scale, float Shift) Finish(int ch, float roughMean, double sumDev, double sumDev2)
        {
            double mean = roughMean + sumDev / m;
            double var = Math.Max(0, (sumDev2 - sumDev * sumDev / m) / m);
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
            // x [N,C]: a channel is a column; walk rows contiguously for a block of columns.
            ForEachChannelBlock(c, s, x.Length, (c0, width) =>
            {
                Span<double> sum = stackalloc double[width], dev = stackalloc double[width], dev2 = stackalloc double[width];
                Span<float> mean = stackalloc float[width], scale = stackalloc float[width], shift = stackalloc float[width];
                for (int i = 0; i < n; i++)
                {
                    var row = xa.AsSpan(xo + i * c + c0, width);
                    for (int j = 0; j < width; j++) sum[j] += row[j];
                }
                for (int j = 0; j < width; j++) mean[j] = (float)(sum[j] / m);
                for (int i = 0; i < n; i++)
                {
                    var row = xa.AsSpan(xo + i * c + c0, width);
                    for (int j = 0; j < width; j++)
                    {
                        float d = row[j] - mean[j];
                        dev[j] += d;
                        dev2[j] += d * d;
                    }
                }
                for (int j = 0; j < width; j++) (scale[j], shift[j]) = Finish(c0 + j, mean[j], dev[j], dev2[j]);
                for (int i = 0; i < n; i++)
                    TensorPrimitives.FusedMultiplyAdd(xa.AsSpan(xo + i * c + c0, width), scale, shift, ya.AsSpan(yo + i * c + c0, width));
            });
            return;
        }

        ForEachChannelBlock(c, s, x.Length, (c0, width) =>
        {
            for (int ch = c0; ch < c0 + width; ch++)
            {
                double sum = 0;
                for (int i = 0; i < n; i++) sum += Sum(xa.AsSpan(xo + (i * c + ch) * s, s));
                float mean = (float)(sum / m);
                double sumDev = 0, sumDev2 = 0;
                for (int i = 0; i < n; i++)
                {
                    sumDev += SumDeviations(xa.AsSpan(xo + (i * c + ch) * s, s), mean, out float dev2);
                    sumDev2 += dev2;
                }
                var (scale, shift) = Finish(ch, mean, sumDev, sumDev2);
                ScaleShiftChannel(xa, xo, ya, yo, n, c, s, ch, scale, shift);
            }
        });
    }

    static void ForwardInferenceCpu(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor y, int n, int c, int s, float eps)
    {
        float[] xa = x.HostArray, ya = y.HostArray, g = gamma.HostArray, b = beta.HostArray;
        float[] rm = runningMean.HostArray, rv = runningVar.HostArray;
        int xo = x.Offset, yo = y.Offset, go = gamma.Offset, bo = beta.Offset, rmo = runningMean.Offset, rvo = runningVar.Offset;
        // y = x * scale + shift per channel.
        var scale = new float[c];
        var shift = new float[c];
        for (int ch = 0; ch < c; ch++)
        {
            double sc = g[go + ch] / Math.Sqrt((double)rv[rvo + ch] + eps);
            scale[ch] = (float)sc;
            shift[ch] = (float)(b[bo + ch] - rm[rmo + ch] * sc);
        }
        if (s == 1)
        {
            // x [N,C]: each row is one multiply-add with the coefficient vectors.
            for (int i = 0; i < n; i++)
                TensorPrimitives.FusedMultiplyAdd(xa.AsSpan(xo + i * c, c), scale, shift, ya.AsSpan(yo + i * c, c));
            return;
        }
        ForEachChannelBlock(c, s, x.Length, (c0, width) =>
        {
            for (int ch = c0; ch < c0 + width; ch++) ScaleShiftChannel(xa, xo, ya, yo, n, c, s, ch, scale[ch], shift[ch]);
        });
    }

    static void BackwardCpu(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy, Tensor dx,
        Tensor dgamma, Tensor dbeta, int n, int c, int s)
    {
        float[] xa = x.HostArray, dya = dy.HostArray, dxa = dx.HostArray, g = gamma.HostArray;
        float[] sm = saveMean.HostArray, si = saveInvStd.HostArray, dga = dgamma.HostArray, dba = dbeta.HostArray;
        int xo = x.Offset, dyo = dy.Offset, dxo = dx.Offset, go = gamma.Offset, smo = saveMean.Offset, sio = saveInvStd.Offset;
        int dgo = dgamma.Offset, dbo = dbeta.Offset;
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
                Span<double> sumDy = stackalloc double[width], sumDyDev = stackalloc double[width];
                Span<float> a = stackalloc float[width], bDev = stackalloc float[width], c0s = stackalloc float[width];
                var mean = sm.AsSpan(smo + c0, width);
                for (int i = 0; i < n; i++)
                {
                    var xr = xa.AsSpan(xo + i * c + c0, width);
                    var dyr = dya.AsSpan(dyo + i * c + c0, width);
                    for (int j = 0; j < width; j++)
                    {
                        sumDy[j] += dyr[j];
                        sumDyDev[j] += dyr[j] * (xr[j] - mean[j]);
                    }
                }
                for (int j = 0; j < width; j++) (a[j], bDev[j], c0s[j]) = Finish(c0 + j, sumDy[j], sumDyDev[j]);
                for (int i = 0; i < n; i++)
                {
                    var xr = xa.AsSpan(xo + i * c + c0, width);
                    var dyr = dya.AsSpan(dyo + i * c + c0, width);
                    var dxr = dxa.AsSpan(dxo + i * c + c0, width);
                    for (int j = 0; j < width; j++) dxr[j] += a[j] * dyr[j] + bDev[j] * (xr[j] - mean[j]) + c0s[j];
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
                    sumDy += Sum(dya.AsSpan(dyo + at, s));
                    sumDyDev += DotDeviations(dya.AsSpan(dyo + at, s), xa.AsSpan(xo + at, s), mean);
                }
                var (a, bDev, c0s) = Finish(ch, sumDy, sumDyDev);
                for (int i = 0; i < n; i++)
                {
                    int at = (i * c + ch) * s;
                    AccumulateDx(dya.AsSpan(dyo + at, s), xa.AsSpan(xo + at, s), dxa.AsSpan(dxo + at, s), mean, a, bDev, c0s);
                }
            }
        });
    }

    /// <summary>
    /// Runs <paramref name="body"/>(first channel, count) over blocks of channels, in parallel when the
    /// tensor is large. With S = 1 a block is 64 columns walked row by row; with small S a block holds
    /// enough channels that neighbouring threads do not write the same cache lines.
    /// </summary>
    static void ForEachChannelBlock(int c, int s, int length, Action<int, int> body)
    {
        const int SequentialBelow = 1 << 15; // elements; below this, thread start-up costs more than it saves
        int perBlock = s == 1 ? 64 : s >= 16 ? 1 : (16 + s - 1) / s;
        int blocks = (c + perBlock - 1) / perBlock;
        if (length < SequentialBelow || Environment.ProcessorCount == 1)
        {
            for (int blk = 0; blk < blocks; blk++) body(blk * perBlock, Math.Min(perBlock, c - blk * perBlock));
            return;
        }
        Parallel.For(0, blocks, blk => body(blk * perBlock, Math.Min(perBlock, c - blk * perBlock)));
    }

    /// <summary>y = x * scale + shift over the N segments of one channel.</summary>
    static void ScaleShiftChannel(float[] x, int xo, float[] y, int yo, int n, int c, int s, int ch, float scale, float shift)
    {
        for (int i = 0; i < n; i++)
        {
            int at = (i * c + ch) * s;
            ScaleShift(x.AsSpan(xo + at, s), y.AsSpan(yo + at, s), scale, shift);
        }
    }

    static float Sum(ReadOnlySpan<float> x)
    {
        int i = 0;
        float total = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= 2 * Vector256<float>.Count)
        {
            ref float r = ref MemoryMarshal.GetReference(x);
            Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
            for (; i <= x.Length - 2 * Vector256<float>.Count; i += 2 * Vector256<float>.Count)
            {
                acc0 += Vector256.LoadUnsafe(ref r, (nuint)i);
                acc1 += Vector256.LoadUnsafe(ref r, (nuint)(i + Vector256<float>.Count));
            }
            total = Vector256.Sum(acc0 + acc1);
        }
        for (; i < x.Length; i++) total += x[i];
        return total;
    }

    /// <summary>Returns sum (x - mean); <paramref name="sumSquares"/> = sum (x - mean)^2.</summary>
    static float SumDeviations(ReadOnlySpan<float> x, float mean, out float sumSquares)
    {
        int i = 0;
        float total = 0, squares = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            ref float r = ref MemoryMarshal.GetReference(x);
            var mv = Vector256.Create(mean);
            Vector256<float> acc = Vector256<float>.Zero, acc2 = Vector256<float>.Zero;
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var d = Vector256.LoadUnsafe(ref r, (nuint)i) - mv;
                acc += d;
                acc2 = Vector256.FusedMultiplyAdd(d, d, acc2);
            }
            total = Vector256.Sum(acc);
            squares = Vector256.Sum(acc2);
        }
        for (; i < x.Length; i++)
        {
            float d = x[i] - mean;
            total += d;
            squares += d * d;
        }
        sumSquares = squares;
        return total;
    }

    /// <summary>sum dy * (x - mean).</summary>
    static float DotDeviations(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float mean)
    {
        int i = 0;
        float total = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            ref float rx = ref MemoryMarshal.GetReference(x);
            ref float rdy = ref MemoryMarshal.GetReference(dy);
            var mv = Vector256.Create(mean);
            var acc = Vector256<float>.Zero;
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
                acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rdy, (nuint)i), Vector256.LoadUnsafe(ref rx, (nuint)i) - mv, acc);
            total = Vector256.Sum(acc);
        }
        for (; i < x.Length; i++) total += dy[i] * (x[i] - mean);
        return total;
    }

    static void ScaleShift(ReadOnlySpan<float> x, Span<float> y, float scale, float shift)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            ref float rx = ref MemoryMarshal.GetReference(x);
            ref float ry = ref MemoryMarshal.GetReference(y);
            Vector256<float> sv = Vector256.Create(scale), tv = Vector256.Create(shift);
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
                Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, (nuint)i), sv, tv).StoreUnsafe(ref ry, (nuint)i);
        }
        for (; i < x.Length; i++) y[i] = MathF.FusedMultiplyAdd(x[i], scale, shift);
    }

    /// <summary>dx += a dy + b (x - mean) + c0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void AccumulateDx(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, float mean, float a, float b, float c0)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            ref float rx = ref MemoryMarshal.GetReference(x);
            ref float rdy = ref MemoryMarshal.GetReference(dy);
            ref float rdx = ref MemoryMarshal.GetReference(dx);
            Vector256<float> mv = Vector256.Create(mean), av = Vector256.Create(a), bv = Vector256.Create(b), cv = Vector256.Create(c0);
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var acc = Vector256.LoadUnsafe(ref rdx, (nuint)i) + cv;
                acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, (nuint)i) - mv, bv, acc);
                Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rdy, (nuint)i), av, acc).StoreUnsafe(ref rdx, (nuint)i);
            }
        }
        for (; i < x.Length; i++) dx[i] += a * dy[i] + b * (x[i] - mean) + c0;
    }
}
