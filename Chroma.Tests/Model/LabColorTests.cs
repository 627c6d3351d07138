using Chroma.Model;
using Xunit;

namespace Chroma.Tests.Model;

public class LabColorTests
{
    // Published values (Bruce Lindbloom's calculator: sRGB, D65, sRGB companding), given to 4 decimals.
    [Theory]
    [InlineData(1.0, 1.0, 1.0, 100.0, 0.0, 0.0)]
    [InlineData(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)]
    [InlineData(1.0, 0.0, 0.0, 53.2408, 80.0925, 67.2032)]
    [InlineData(0.0, 1.0, 0.0, 87.7347, -86.1827, 83.1793)]
    [InlineData(0.0, 0.0, 1.0, 32.2970, 79.1875, -107.8602)]
    [InlineData(0.5, 0.5, 0.5, 53.3890, 0.0, 0.0)]
    public void FromRgb_matches_published_values(double r, double g, double b, double l, double a, double bb)
    {
        var lab = LabColor.FromRgb(r, g, b);
        const double tol = 1e-4; // published to 4 decimals; a* of white is 500 * (1 - cbrt(1.0000001)) ~ -1.7e-5
        Assert.True(Math.Abs(lab.L - l) < tol && Math.Abs(lab.A - a) < tol && Math.Abs(lab.B - bb) < tol,
            $"rgb ({r}, {g}, {b}): got ({lab.L:F5}, {lab.A:F5}, {lab.B:F5}), expected ({l}, {a}, {bb})");
    }

    [Fact]
    public void Rgb_to_lab_to_rgb_is_the_identity()
    {
        var v = TestData.Uniform(10, 3 * 500, 0, 1);
        double worst = 0;
        for (int i = 0; i < v.Length; i += 3)
        {
            var lab = LabColor.FromRgb(v[i], v[i + 1], v[i + 2]);
            var rgb = LabColor.ToRgb(lab.L, lab.A, lab.B);
            worst = Math.Max(worst, Math.Max(Math.Abs(rgb.R - v[i]), Math.Max(Math.Abs(rgb.G - v[i + 1]), Math.Abs(rgb.B - v[i + 2]))));
        }
        Assert.True(worst < 1e-6, $"max round-trip error {worst:E2}");
    }

    [Fact]
    public void Dark_colours_in_the_linear_segments_round_trip()
    {
        // r, g, b below 0.04045 (linear sRGB segment) and L* below 8 (linear segment of f)
        foreach (var (r, g, b) in new[] { (0.01, 0.02, 0.03), (0.04, 0.0, 0.02), (0.001, 0.001, 0.001), (0.0404, 0.0405, 0.0406) })
        {
            var lab = LabColor.FromRgb(r, g, b);
            var rgb = LabColor.ToRgb(lab.L, lab.A, lab.B);
            Assert.True(Math.Abs(rgb.R - r) < 1e-9 && Math.Abs(rgb.G - g) < 1e-9 && Math.Abs(rgb.B - b) < 1e-9,
                $"({r}, {g}, {b}) -> L {lab.L} -> ({rgb.R}, {rgb.G}, {rgb.B})");
        }
    }

    [Fact]
    public void ToRgb_does_not_clamp_out_of_gamut_colours()
    {
        // Saturated Lab colours outside the sRGB cube come back with components outside [0, 1] and invert exactly.
        foreach (var (l, a, b) in new[] { (50.0, 100.0, -100.0), (90.0, -100.0, 0.0), (20.0, 0.0, 90.0) })
        {
            var rgb = LabColor.ToRgb(l, a, b);
            Assert.True(new[] { rgb.R, rgb.G, rgb.B }.Any(c => c < 0 || c > 1), $"Lab ({l}, {a}, {b}) -> ({rgb.R}, {rgb.G}, {rgb.B}) is in gamut");
            var back = LabColor.FromRgb(rgb.R, rgb.G, rgb.B);
            Assert.True(Math.Abs(back.L - l) < 1e-6 && Math.Abs(back.A - a) < 1e-6 && Math.Abs(back.B - b) < 1e-6,
                $"Lab ({l}, {a}, {b}) -> rgb -> ({back.L}, {back.A}, {back.B})");
        }
    }

    [Fact]
    public void Lightness_equals_the_L_of_the_full_conversion()
    {
        var v = TestData.Uniform(11, 3 * 200, 0, 1);
        for (int i = 0; i < v.Length; i += 3)
        {
            double expected = LabColor.FromRgb(v[i], v[i + 1], v[i + 2]).L;
            Assert.Equal(expected, LabColor.Lightness(v[i], v[i + 1], v[i + 2]), 1e-9);
        }
    }

    [Fact]
    public void Grey_has_no_chroma_and_its_lightness_depends_only_on_luminance()
    {
        foreach (double level in new[] { 0.02, 0.2, 0.5, 0.73, 0.95 })
        {
            var lab = LabColor.FromRgb(level, level, level);
            Assert.True(Math.Abs(lab.A) < 1e-4 && Math.Abs(lab.B) < 1e-4, $"grey {level}: a* {lab.A}, b* {lab.B}");
        }
        // A colour and the grey with the same L* (a* = b* = 0) have the same Lightness: the network
        // input does not depend on the colours of the photo.
        var v = TestData.Uniform(12, 3 * 50, 0, 1);
        for (int i = 0; i < v.Length; i += 3)
        {
            double l = LabColor.Lightness(v[i], v[i + 1], v[i + 2]);
            var grey = LabColor.ToRgb(l, 0, 0);
            Assert.True(Math.Abs(grey.R - grey.G) < 1e-5 && Math.Abs(grey.G - grey.B) < 1e-5, $"L* {l} with a* = b* = 0 is not grey: {grey}");
            Assert.Equal(l, LabColor.Lightness(grey.R, grey.G, grey.B), 1e-9);
        }
    }

    // 7 x 9 runs on one thread, per pixel; 131 x 127 (above the parallel threshold) runs rows in
    // parallel, 7 x 16 pixels of each row by the AVX-512 loops where there are, 15 per pixel;
    // 3 x 37 puts the edges of the formulas (0, the companding threshold, 1, out of range, negative)
    // at every lane of those loops, for rgb -> lab and for lab -> rgb.
    [Theory]
    [InlineData(7, 9)]
    [InlineData(131, 127)]
    [InlineData(3, 37)]
    public void Planar_conversions_match_the_per_pixel_ones(int height, int width)
    {
        int plane = height * width;
        var rgb = TestData.ToFloat(TestData.Uniform(13, 3 * plane, 0, 1));
        float[] edges = [0f, 0.04045f, 0.040451f, 1f, 1.2f, -0.3f, -0.01f, 1e-7f, 0.5f];
        if (width == 37)
            for (int i = 0; i < rgb.Length; i++) rgb[i] = edges[(i * 7 + i / plane) % edges.Length];
        var l = new float[plane];
        var ab = new float[2 * plane];
        LabColor.RgbToLab(rgb, height, width, l, ab);

        var lightness = new float[plane];
        LabColor.RgbToLightness(rgb, height, width, lightness);

        for (int i = 0; i < plane; i++)
        {
            var lab = LabColor.FromRgb(rgb[i], rgb[plane + i], rgb[2 * plane + i]);
            // The AVX-512 loop takes exp(2.4 log u) and exp(log t / 3) for Math.Pow and Math.Cbrt:
            // equal after rounding to float, or one float ulp away.
            WithinOneUlp((float)lab.L, l[i], i);
            WithinOneUlp((float)lab.A, ab[i], i);
            WithinOneUlp((float)lab.B, ab[plane + i], i);
            WithinOneUlp((float)lab.L, lightness[i], i);
        }

        // lab -> rgb against the per-pixel ToRgb and the same clamp; for 3 x 37, L*a*b* at the edges
        // (L* 0, 8 = kappa eps where the curve changes, 100, beyond; a*, b* in and far out of gamut).
        var labL = (float[])l.Clone();
        var labAb = (float[])ab.Clone();
        if (width == 37)
        {
            float[] lEdges = [0f, 8f, 7.9999f, 8.0001f, 100f, 50f, -5f, 120f, 1e-6f];
            float[] abEdges = [0f, 127f, -127f, 20f, -0.001f, 1e-7f, 300f, -64f];
            for (int i = 0; i < plane; i++) labL[i] = lEdges[(i * 5) % lEdges.Length];
            for (int i = 0; i < 2 * plane; i++) labAb[i] = abEdges[(i * 3 + i / plane) % abEdges.Length];
        }
        var rgbOut = new float[3 * plane];
        LabColor.LabToRgb(labL, labAb, height, width, rgbOut);
        for (int i = 0; i < plane; i++)
        {
            var c = LabColor.ToRgb(labL[i], labAb[i], labAb[plane + i]);
            WithinOneUlp(Clamp01(c.R), rgbOut[i], i);
            WithinOneUlp(Clamp01(c.G), rgbOut[plane + i], i);
            WithinOneUlp(Clamp01(c.B), rgbOut[2 * plane + i], i);
        }

        if (width == 37) return; // out-of-range inputs do not come back through the clamping LabToRgb
        var back = new float[3 * plane];
        LabColor.LabToRgb(l, ab, height, width, back);
        // float32 L*, a*, b* (about 7 significant digits of 100) limit the round trip
        Compare.Close("lab -> rgb", TestData.ToDouble(rgb), back, 0, 5e-5);
    }

    static float Clamp01(double v) => v <= 0 ? 0f : v >= 1 ? 1f : (float)v;

    static void WithinOneUlp(float expected, float actual, int pixel) => Assert.True(
        expected == actual || Math.Abs(expected - actual) <= MathF.BitIncrement(Math.Abs(expected)) - Math.Abs(expected),
        $"pixel {pixel}: {actual:R}, expected {expected:R}");

    [Fact]
    public void Planar_LabToRgb_clamps_to_the_unit_range()
    {
        float[] l = [50f, 100f, 0f];
        float[] ab = [100f, -120f, 0f, -100f, 80f, 0f];
        var rgb = new float[9];
        LabColor.LabToRgb(l, ab, 1, 3, rgb);
        Assert.All(rgb, v => Assert.InRange(v, 0f, 1f));
        Assert.Contains(rgb, v => v == 0f || v == 1f); // these colours lie outside the gamut
    }

    [Fact]
    public void Planar_conversions_reject_wrong_buffer_sizes()
    {
        var rgb = new float[3 * 4 * 5];
        var ex = Assert.Throws<ArgumentException>(() => LabColor.RgbToLab(rgb, 4, 5, new float[20], new float[39]));
        Assert.Contains("ab", ex.Message);
        Assert.Throws<ArgumentException>(() => LabColor.RgbToLab(rgb, 5, 5, new float[25], new float[50]));
        Assert.Throws<ArgumentException>(() => LabColor.LabToRgb(new float[20], new float[40], 4, 5, new float[59]));
        Assert.Throws<ArgumentException>(() => LabColor.RgbToLightness(rgb, 4, 5, new float[21]));
    }
}
