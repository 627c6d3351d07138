using Chroma.Kernels;
using Chroma.Model;

namespace Chroma.Training.Data;

/// <summary>
/// The paper's data preparation: resize to <see cref="ResizeTo"/> square, take a
/// <see cref="CropSize"/> crop (random when training, centred otherwise) and a random horizontal
/// flip, then split into the network input (L*/100) and the target (a*b* / 200 + 0.5 at half
/// resolution, clamped to [0, 1]).
/// </summary>
public sealed record Augmentation(int ResizeTo = 256, int CropSize = 224, bool Random = true)
{
    public void Validate()
    {
        if (CropSize < 8 || CropSize % 8 != 0) throw new ArgumentException($"crop size must be a positive multiple of 8, got {CropSize}.");
        if (ResizeTo < CropSize) throw new ArgumentException($"resize size {ResizeTo} is smaller than the crop {CropSize}.");
    }

    /// <summary>One prepared example: input [1,S,S], target [2,S/2,S/2], and the crop's sRGB [3,S,S] for metrics.</summary>
    public sealed record Example(float[] Input, float[] Target, float[] Rgb, int Label);

    /// <summary>Prepares one image; <paramref name="seed"/> fixes the crop and flip.</summary>
    public Example Prepare(LoadedImage image, int label, ulong seed)
    {
        int r = ResizeTo, s = CropSize;
        var resized = Resize(image.Rgb, image.Height, image.Width, r, r);
        var rng = new Random((int)(seed ^ (seed >> 32)));
        int y0 = Random ? rng.Next(r - s + 1) : (r - s) / 2;
        int x0 = Random ? rng.Next(r - s + 1) : (r - s) / 2;
        bool flip = Random && rng.Next(2) == 1;

        var crop = new float[3 * s * s];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < s; y++)
            {
                var src = resized.AsSpan(c * r * r + (y0 + y) * r + x0, s);
                var dst = crop.AsSpan(c * s * s + y * s, s);
                src.CopyTo(dst);
                if (flip) dst.Reverse();
            }
        var l = new float[s * s];
        var ab = new float[2 * s * s];
        LabColor.RgbToLab(crop, s, s, l, ab);
        var input = new float[s * s];
        NetworkEncoding.EncodeLightness(l, input);
        return new Example(input, TargetFromAb(ab, s, s), crop, label);
    }

    /// <summary>a*b* [2,H,W] -> network target [2,H/2,W/2]: 2x2 average, then ab / 200 + 0.5 clamped to [0, 1].</summary>
    public static float[] TargetFromAb(float[] ab, int h, int w)
    {
        int h2 = h / 2, w2 = w / 2;
        var t = new float[2 * h2 * w2];
        for (int c = 0; c < 2; c++)
            for (int y = 0; y < h2; y++)
                for (int x = 0; x < w2; x++)
                {
                    int i = c * h * w + 2 * y * w + 2 * x;
                    float mean = 0.25f * (ab[i] + ab[i + 1] + ab[i + w] + ab[i + w + 1]);
                    t[c * h2 * w2 + y * w2 + x] = NetworkEncoding.EncodeAbTarget(mean);
                }
        return t;
    }

    /// <summary>Planar [C,H,W] resize with Chroma's bilinear (averaging when shrinking) op on the CPU path.</summary>
    public static float[] Resize(float[] planes, int h, int w, int oh, int ow)
    {
        int c = planes.Length / (h * w);
        if (h == oh && w == ow) return planes;
        var cpu = CpuDevice.Instance;
        using var x = cpu.FromArray(planes, 1, c, h, w);
        using var y = cpu.Zeros(1, c, oh, ow);
        BilinearResize.Forward(x, y);
        return y.ToArray();
    }

    /// <summary>
    /// Colourfulness used to skip near-gray images (grayscale, sepia), as the paper removed
    /// low-colour-variance images: sqrt(var(a*) + var(b*)) over a 64x64 thumbnail.
    /// </summary>
    public static double ColorVariation(LoadedImage image)
    {
        var small = Resize(image.Rgb, image.Height, image.Width, 64, 64);
        var l = new float[64 * 64];
        var ab = new float[2 * 64 * 64];
        LabColor.RgbToLab(small, 64, 64, l, ab);
        double total = 0;
        for (int c = 0; c < 2; c++)
        {
            var plane = ab.AsSpan(c * 4096, 4096);
            double mean = 0, sq = 0;
            foreach (var v in plane) mean += v;
            mean /= plane.Length;
            foreach (var v in plane) sq += (v - mean) * (v - mean);
            total += sq / plane.Length;
        }
        return Math.Sqrt(total);
    }
}
