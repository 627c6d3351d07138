using Chroma.Model;
using Chroma.Training.Data;

namespace Chroma.Training;

/// <summary>Image-quality measures used by validation and `chroma eval`.</summary>
public static class Metrics
{
    /// <summary>PSNR in dB of two sRGB images in [0, 1] (peak 1); infinite when identical.</summary>
    public static double Psnr(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double se = 0;
        for (int i = 0; i < a.Length; i++) { double d = a[i] - b[i]; se += d * d; }
        double mse = se / a.Length;
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(1.0 / mse);
    }

    /// <summary>Root mean square difference of two a*b* planes [2,H,W] (in a*b* units).</summary>
    public static double AbRmse(ReadOnlySpan<float> ab, ReadOnlySpan<float> reference)
    {
        double se = 0;
        for (int i = 0; i < ab.Length; i++) { double d = ab[i] - reference[i]; se += d * d; }
        return Math.Sqrt(se / ab.Length);
    }

    /// <summary>
    /// Colourfulness of Hasler and Suesstrunk (2003) on sRGB [3,H,W] in [0,1], in their 0-255 units:
    /// rg = R - G, yb = (R + G)/2 - B; M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
    /// </summary>
    public static double Colourfulness(ReadOnlySpan<float> rgb)
    {
        int n = rgb.Length / 3;
        double srg = 0, syb = 0, srg2 = 0, syb2 = 0;
        for (int i = 0; i < n; i++)
        {
            double r = 255.0 * rgb[i], g = 255.0 * rgb[n + i], b = 255.0 * rgb[2 * n + i];
            double rg = r - g, yb = 0.5 * (r + g) - b;
            srg += rg; syb += yb; srg2 += rg * rg; syb2 += yb * yb;
        }
        double mrg = srg / n, myb = syb / n;
        double vrg = Math.Max(0, srg2 / n - mrg * mrg), vyb = Math.Max(0, syb2 / n - myb * myb);
        return Math.Sqrt(vrg + vyb) + 0.3 * Math.Sqrt(mrg * mrg + myb * myb);
    }

    public static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /// <summary>Rank of the true class among the scores (0 = top-1).</summary>
    public static int Rank(ReadOnlySpan<float> scores, int label)
    {
        int rank = 0;
        for (int i = 0; i < scores.Length; i++) if (scores[i] > scores[label]) rank++;
        return rank;
    }

    /// <summary>
    /// sRGB [3,H,W] from the network input L*/100 [H,W] and its normalized half-resolution output
    /// [2,H/2,W/2] (a*, b* = 100 (2s - 1), resized bilinearly to H x W).
    /// </summary>
    public static float[] RgbOfPrediction(ReadOnlySpan<float> lNorm, ReadOnlySpan<float> abNorm, int h, int w)
    {
        var ab = Augmentation.Resize(abNorm.ToArray(), h / 2, w / 2, h, w);
        NetworkEncoding.DecodeAb(ab);
        var l = new float[h * w];
        for (int i = 0; i < l.Length; i++) l[i] = NetworkEncoding.DecodeLightness(lNorm[i]);
        var rgb = new float[3 * h * w];
        LabColor.LabToRgb(l, ab, h, w, rgb);
        return rgb;
    }

    /// <summary>PSNR of the prediction's sRGB against the original crop.</summary>
    public static double PsnrOfPrediction(ReadOnlySpan<float> lNorm, ReadOnlySpan<float> abNorm, ReadOnlySpan<float> originalRgb, int h, int w) =>
        Psnr(RgbOfPrediction(lNorm, abNorm, h, w), originalRgb);
}
