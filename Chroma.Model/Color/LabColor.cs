using System.Runtime.Intrinsics;

namespace Chroma.Model;

/// <summary>
/// Conversion between gamma-encoded sRGB and CIE L*a*b* (D65 white, sRGB companding), after
/// Bruce Lindbloom's formulas.
/// <code>
/// decode:  c_lin = c / 12.92                      if c &lt;= 0.04045
///                  ((c + 0.055) / 1.055)^2.4      otherwise          (odd extension for c &lt; 0)
/// XYZ    = M * (r_lin, g_lin, b_lin)              M: the sRGB matrix, D65
/// f(t)   = cbrt(t)                  if t &gt; eps          eps = 216/24389
///          (kappa * t + 16) / 116   otherwise            kappa = 24389/27
/// L* = 116 f(Y/Yn) - 16,  a* = 500 (f(X/Xn) - f(Y/Yn)),  b* = 200 (f(Y/Yn) - f(Z/Zn))
/// white:  Xn = 0.95047, Yn = 1.0, Zn = 1.08883
/// </code>
/// L* lies in [0, 100] for colours in the sRGB cube; a* and b* stay within about +-128.
/// The inverse uses the exact inverse of M and of each step, so rgb -&gt; lab -&gt; rgb is the
/// identity up to rounding, also for colours outside the sRGB gamut (<see cref="ToRgb"/> does
/// not clamp).
/// </summary>
public static class LabColor
{
    const double Xn = 0.95047, Yn = 1.0, Zn = 1.08883;
    const double Epsilon = 216.0 / 24389.0;
    const double Kappa = 24389.0 / 27.0;

    // sRGB (linear) -> XYZ, D65; rows give X, Y, Z.
    const double M00 = 0.4124564, M01 = 0.3575761, M02 = 0.1804375;
    const double M10 = 0.2126729, M11 = 0.7151522, M12 = 0.0721750;
    const double M20 = 0.0193339, M21 = 0.1191920, M22 = 0.9503041;

    // XYZ -> sRGB (linear): the exact inverse of M, computed once, so that round trips are
    // exact to double rounding rather than to the 7 digits of the published inverse.
    static readonly double[] Inverse = Invert3x3(M00, M01, M02, M10, M11, M12, M20, M21, M22);

    /// <summary>sRGB (gamma-encoded, nominally in [0, 1]) to L*a*b*.</summary>
    public static (double L, double A, double B) FromRgb(double r, double g, double b)
    {
        double rl = Decode(r), gl = Decode(g), bl = Decode(b);
        double fx = F((M00 * rl + M01 * gl + M02 * bl) / Xn);
        double fy = F((M10 * rl + M11 * gl + M12 * bl) / Yn);
        double fz = F((M20 * rl + M21 * gl + M22 * bl) / Zn);
        return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz));
    }

    /// <summary>L*a*b* to gamma-encoded sRGB. Not clamped: out-of-gamut colours give values outside [0, 1].</summary>
    public static (double R, double G, double B) ToRgb(double l, double a, double b)
    {
        double fy = (l + 16) / 116;
        double fx = fy + a / 500;
        double fz = fy - b / 200;
        double x = Xn * FInverse(fx);
        double y = Yn * (l > Kappa * Epsilon ? fy * fy * fy : l / Kappa);
        double z = Zn * FInverse(fz);
        var m = Inverse;
        return (Encode(m[0] * x + m[1] * y + m[2] * z),
                Encode(m[3] * x + m[4] * y + m[5] * z),
                Encode(m[6] * x + m[7] * y + m[8] * z));
    }

    /// <summary>
    /// L* of an sRGB pixel, computed from the luminance Y alone (the network's input; a colour
    /// photo and its grey version with the same Y give the same L*). Equals <c>FromRgb(r, g, b).L</c>.
    /// </summary>
    public static double Lightness(double r, double g, double b)
    {
        double y = (M10 * Decode(r) + M11 * Decode(g) + M12 * Decode(b)) / Yn;
        return 116 * F(y) - 16;
    }

    /// <summary>
    /// Planar sRGB to planar L*a*b*: <paramref name="rgb"/> [3, H, W] in [0, 1] gives
    /// <paramref name="l"/> [H, W] (0..100) and <paramref name="ab"/> [2, H, W]. Rows run in parallel.
    /// </summary>
    public static unsafe void RgbToLab(ReadOnlySpan<float> rgb, int height, int width, Span<float> l, Span<float> ab)
    {
        int plane = CheckPlanes("LabColor.RgbToLab", height, width, ("rgb", rgb.Length, 3), ("l", l.Length, 1), ("ab", ab.Length, 2));
        fixed (float* pRgbFixed = rgb)
        fixed (float* pLFixed = l)
        fixed (float* pAbFixed = ab)
        {
            float* pRgb = pRgbFixed, pL = pLFixed, pAb = pAbFixed;
            ImageFile.ForRows(height, width, y =>
            {
                int i = y * width, end = i + width;
                if (Vector512.IsHardwareAccelerated)
                    i += FromRgb16(pRgb + i, pRgb + plane + i, pRgb + 2 * plane + i, pL + i, pAb + i, pAb + plane + i, width);
                for (; i < end; i++)
                {
                    var (ll, aa, bb) = FromRgb(pRgb[i], pRgb[plane + i], pRgb[2 * plane + i]);
                    pL[i] = (float)ll;
                    pAb[i] = (float)aa;
                    pAb[plane + i] = (float)bb;
                }
            });
        }
    }

    /// <summary>
    /// <see cref="RgbToLab"/>'s loop on 16 pixels at a time with AVX-512, for the first count / 16 x 16
    /// pixels of a row; returns how many it did. The formulas of <see cref="FromRgb"/> in double, with
    /// exp(2.4 log u) for u^2.4 and exp(log t / 3) for cbrt t, so results agree with it to the float
    /// rounding (the tests allow one float ulp; on 150,528 random values all were equal). The
    /// formulas are written again here in vector form; FromRgb stays the reference. Measured on the
    /// 2-core AMD EPYC (Zen 4), one core: a 224x224 crop in 1.8-1.9 ms against 5.2 ms for the per-pixel
    /// loop. The conversion was about half of the ~9 ms a training image cost to prepare, and
    /// preparation about a quarter of a real training step at width 0.25 (about 390 ms per batch of 16
    /// in `chroma train`, 292 ms in `chroma bench`, which prepares no images); docs/BENCHMARKS.md.
    /// </summary>
    static unsafe int FromRgb16(float* r, float* g, float* b, float* l, float* a, float* bStar, int count)
    {
        int i = 0;
        for (; i + 16 <= count; i += 16)
        {
            var (r0, r1) = Vector512.Widen(Vector512.Load(r + i));
            var (g0, g1) = Vector512.Widen(Vector512.Load(g + i));
            var (b0, b1) = Vector512.Widen(Vector512.Load(b + i));
            var lab0 = FromLinear(Decode(r0), Decode(g0), Decode(b0));
            var lab1 = FromLinear(Decode(r1), Decode(g1), Decode(b1));
            Vector512.Narrow(lab0.L, lab1.L).Store(l + i);
            Vector512.Narrow(lab0.A, lab1.A).Store(a + i);
            Vector512.Narrow(lab0.B, lab1.B).Store(bStar + i);
        }
        return i;
    }

    static Vector512<double> Decode(Vector512<double> c)
    {
        var m = Vector512.Abs(c);
        var curve = Vector512.Exp(Vector512.Log((m + Vector512.Create(0.055)) / Vector512.Create(1.055)) * Vector512.Create(2.4));
        var v = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(m, Vector512.Create(0.04045)), m / Vector512.Create(12.92), curve);
        return Vector512.ConditionalSelect(Vector512.LessThan(c, Vector512<double>.Zero), -v, v);
    }

    static Vector512<double> F(Vector512<double> t) => Vector512.ConditionalSelect(
        Vector512.GreaterThan(t, Vector512.Create(Epsilon)),
        Vector512.Exp(Vector512.Log(t) / Vector512.Create(3.0)),
        (Vector512.Create(Kappa) * t + Vector512.Create(16.0)) / Vector512.Create(116.0));

    static (Vector512<double> L, Vector512<double> A, Vector512<double> B) FromLinear(Vector512<double> rl, Vector512<double> gl, Vector512<double> bl)
    {
        var fx = F((rl * M00 + gl * M01 + bl * M02) / Vector512.Create(Xn));
        var fy = F((rl * M10 + gl * M11 + bl * M12) / Vector512.Create(Yn));
        var fz = F((rl * M20 + gl * M21 + bl * M22) / Vector512.Create(Zn));
        return (fy * 116 - Vector512.Create(16.0), (fx - fy) * 500, (fy - fz) * 200);
    }

    /// <summary>Planar sRGB [3, H, W] to L* [H, W] (0..100) only: the network input path, cheaper than <see cref="RgbToLab"/>.</summary>
    public static unsafe void RgbToLightness(ReadOnlySpan<float> rgb, int height, int width, Span<float> l)
    {
        int plane = CheckPlanes("LabColor.RgbToLightness", height, width, ("rgb", rgb.Length, 3), ("l", l.Length, 1));
        fixed (float* pRgbFixed = rgb)
        fixed (float* pLFixed = l)
        {
            float* pRgb = pRgbFixed, pL = pLFixed;
            ImageFile.ForRows(height, width, y =>
            {
                int i = y * width, end = i + width;
                if (Vector512.IsHardwareAccelerated)
                    i += Lightness16(pRgb + i, pRgb + plane + i, pRgb + 2 * plane + i, pL + i, width);
                for (; i < end; i++)
                    pL[i] = (float)Lightness(pRgb[i], pRgb[plane + i], pRgb[2 * plane + i]);
            });
        }
    }

    /// <summary>
    /// <see cref="RgbToLightness"/>'s loop on 16 pixels at a time with AVX-512 (as <see cref="FromRgb16"/>,
    /// Y only; <see cref="Lightness"/> stays the reference, within one float ulp). Measured on the 2-core
    /// AMD EPYC (Zen 4), both cores: a 6000x4000 photo (what `chroma colorize` converts at full
    /// resolution) in 0.14-0.16 s against 1.17-1.24 s for the per-pixel loop (a throwaway micro-benchmark of
    /// the planar calls on random pixels, median of 4 after a warm-up; 2026-12-07).
    /// </summary>
    static unsafe int Lightness16(float* r, float* g, float* b, float* l, int count)
    {
        int i = 0;
        for (; i + 16 <= count; i += 16)
        {
            var (r0, r1) = Vector512.Widen(Vector512.Load(r + i));
            var (g0, g1) = Vector512.Widen(Vector512.Load(g + i));
            var (b0, b1) = Vector512.Widen(Vector512.Load(b + i));
            var y0 = (Decode(r0) * M10 + Decode(g0) * M11 + Decode(b0) * M12) / Vector512.Create(Yn);
            var y1 = (Decode(r1) * M10 + Decode(g1) * M11 + Decode(b1) * M12) / Vector512.Create(Yn);
            Vector512.Narrow(F(y0) * 116 - Vector512.Create(16.0), F(y1) * 116 - Vector512.Create(16.0)).Store(l + i);
        }
        return i;
    }

    /// <summary>
    /// Planar L*a*b* to planar sRGB: <paramref name="l"/> [H, W] and <paramref name="ab"/> [2, H, W]
    /// give <paramref name="rgb"/> [3, H, W], clamped to [0, 1]. Rows run in parallel.
    /// </summary>
    public static unsafe void LabToRgb(ReadOnlySpan<float> l, ReadOnlySpan<float> ab, int height, int width, Span<float> rgb)
    {
        int plane = CheckPlanes("LabColor.LabToRgb", height, width, ("l", l.Length, 1), ("ab", ab.Length, 2), ("rgb", rgb.Length, 3));
        fixed (float* pLFixed = l)
        fixed (float* pAbFixed = ab)
        fixed (float* pRgbFixed = rgb)
        {
            float* pL = pLFixed, pAb = pAbFixed, pRgb = pRgbFixed;
            ImageFile.ForRows(height, width, y =>
            {
                int i = y * width, end = i + width;
                if (Vector512.IsHardwareAccelerated)
                    i += ToRgb16(pL + i, pAb + i, pAb + plane + i, pRgb + i, pRgb + plane + i, pRgb + 2 * plane + i, width);
                for (; i < end; i++)
                {
                    var (r, g, b) = ToRgb(pL[i], pAb[i], pAb[plane + i]);
                    pRgb[i] = Clamp01(r);
                    pRgb[plane + i] = Clamp01(g);
                    pRgb[2 * plane + i] = Clamp01(b);
                }
            });
        }
    }

    /// <summary>
    /// <see cref="LabToRgb"/>'s loop on 16 pixels at a time with AVX-512: <see cref="ToRgb"/>'s formulas in
    /// double with exp(log m / 2.4) for m^(1/2.4), then the same clamp; within one float ulp of it (ToRgb
    /// stays the reference). Measured on the 2-core AMD EPYC (Zen 4), both cores: a 6000x4000 photo in
    /// 0.14 s against 0.75-0.78 s for the per-pixel loop (measured as RgbToLightness's figures).
    /// </summary>
    static unsafe int ToRgb16(float* l, float* a, float* bStar, float* r, float* g, float* b, int count)
    {
        var m = Inverse;
        int i = 0;
        for (; i + 16 <= count; i += 16)
        {
            var (l0, l1) = Vector512.Widen(Vector512.Load(l + i));
            var (a0, a1) = Vector512.Widen(Vector512.Load(a + i));
            var (s0, s1) = Vector512.Widen(Vector512.Load(bStar + i));
            var (x0, y0, z0) = ToXyz(l0, a0, s0);
            var (x1, y1, z1) = ToXyz(l1, a1, s1);
            Vector512.Narrow(Clamp01(Encode(x0 * m[0] + y0 * m[1] + z0 * m[2])), Clamp01(Encode(x1 * m[0] + y1 * m[1] + z1 * m[2]))).Store(r + i);
            Vector512.Narrow(Clamp01(Encode(x0 * m[3] + y0 * m[4] + z0 * m[5])), Clamp01(Encode(x1 * m[3] + y1 * m[4] + z1 * m[5]))).Store(g + i);
            Vector512.Narrow(Clamp01(Encode(x0 * m[6] + y0 * m[7] + z0 * m[8])), Clamp01(Encode(x1 * m[6] + y1 * m[7] + z1 * m[8]))).Store(b + i);
        }
        return i;

        static (Vector512<double> X, Vector512<double> Y, Vector512<double> Z) ToXyz(Vector512<double> l, Vector512<double> a, Vector512<double> b)
        {
            var fy = (l + Vector512.Create(16.0)) / Vector512.Create(116.0);
            var fx = fy + a / Vector512.Create(500.0);
            var fz = fy - b / Vector512.Create(200.0);
            var y = Vector512.ConditionalSelect(Vector512.GreaterThan(l, Vector512.Create(Kappa * Epsilon)), fy * fy * fy, l / Vector512.Create(Kappa));
            return (FInverse(fx) * Xn, y * Yn, FInverse(fz) * Zn);
        }
    }

    static Vector512<double> Encode(Vector512<double> v)
    {
        var m = Vector512.Abs(v);
        var curve = Vector512.Exp(Vector512.Log(m) / Vector512.Create(2.4)) * Vector512.Create(1.055) - Vector512.Create(0.055);
        var c = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(m, Vector512.Create(0.04045 / 12.92)), m * Vector512.Create(12.92), curve);
        return Vector512.ConditionalSelect(Vector512.LessThan(v, Vector512<double>.Zero), -c, c);
    }

    static Vector512<double> FInverse(Vector512<double> f)
    {
        var f3 = f * f * f;
        return Vector512.ConditionalSelect(Vector512.GreaterThan(f3, Vector512.Create(Epsilon)), f3, (f * Vector512.Create(116.0) - Vector512.Create(16.0)) / Vector512.Create(Kappa));
    }

    // As Clamp01(double): NaN passes through, as it does there.
    static Vector512<double> Clamp01(Vector512<double> v) => Vector512.ConditionalSelect(
        Vector512.LessThanOrEqual(v, Vector512<double>.Zero), Vector512<double>.Zero,
        Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(v, Vector512<double>.One), Vector512<double>.One, v));

    static double Decode(double c)
    {
        double m = Math.Abs(c);
        double v = m <= 0.04045 ? m / 12.92 : Math.Pow((m + 0.055) / 1.055, 2.4);
        return c < 0 ? -v : v;
    }

    // Threshold 0.04045 / 12.92 (not the usual 0.0031308) so that Encode inverts Decode branch for branch.
    static double Encode(double v)
    {
        double m = Math.Abs(v);
        double c = m <= 0.04045 / 12.92 ? m * 12.92 : 1.055 * Math.Pow(m, 1 / 2.4) - 0.055;
        return v < 0 ? -c : c;
    }

    static double F(double t) => t > Epsilon ? Math.Cbrt(t) : (Kappa * t + 16) / 116;

    static double FInverse(double f)
    {
        double f3 = f * f * f;
        return f3 > Epsilon ? f3 : (116 * f - 16) / Kappa;
    }

    static float Clamp01(double v) => v <= 0 ? 0f : v >= 1 ? 1f : (float)v;

    static int CheckPlanes(string op, int height, int width, params (string Name, int Length, int Planes)[] buffers)
    {
        if (height < 0 || width < 0 || (long)height * width * 3 > int.MaxValue)
            throw new ArgumentException($"{op}: invalid image size {width}x{height}.");
        int plane = height * width;
        foreach (var (name, length, planes) in buffers)
            if (length != planes * plane)
                throw new ArgumentException($"{op}: {name} must hold {planes} x {height} x {width} = {planes * plane} values, got {length}.");
        return plane;
    }

    static double[] Invert3x3(double a, double b, double c, double d, double e, double f, double g, double h, double i)
    {
        double ca = e * i - f * h, cb = -(d * i - f * g), cc = d * h - e * g;
        double det = a * ca + b * cb + c * cc;
        return
        [
            ca / det, -(b * i - c * h) / det, (b * f - c * e) / det,
            cb / det, (a * i - c * g) / det, -(a * f - c * d) / det,
            cc / det, -(a * h - b * g) / det, (a * e - b * d) / det,
        ];
    }
}
