using Chroma.Model;
using SkiaSharp;

namespace Chroma.Tests.Training;

/// <summary>Small images, datasets and models made in temporary folders for the CLI and training tests.</summary>
static class Fixtures
{
    public const string ClassA = "beach", ClassB = "forest", ClassC = "sunset";
    public static readonly string[] ClassNames = [ClassA, ClassB, ClassC];

    /// <summary>
    /// A colourful planar sRGB image [3,H,W]: a class-dependent base colour, a diagonal hue sweep
    /// and seeded speckle, all kept in [0.15, 0.85] (mid-range, inside the sRGB gamut with margin).
    /// </summary>
    public static float[] ColourfulRgb(int width, int height, int seed, int cls = 0)
    {
        var rng = new Random(seed);
        var rgb = new float[3 * width * height];
        int plane = width * height;
        double phase = rng.NextDouble() * 2 * Math.PI, tilt = 0.5 + rng.NextDouble();
        (double r0, double g0, double b0) = (cls % 3) switch { 0 => (0.35, 0.5, 0.7), 1 => (0.3, 0.6, 0.3), _ => (0.75, 0.45, 0.3) };
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x;
                double t = phase + 2 * Math.PI * (x + tilt * y) / (width + height);
                double speckle = 0.04 * (rng.NextDouble() - 0.5);
                rgb[i] = Clamp(r0 + 0.15 * Math.Sin(t) + speckle);
                rgb[plane + i] = Clamp(g0 + 0.15 * Math.Sin(t + 2.1) + speckle);
                rgb[2 * plane + i] = Clamp(b0 + 0.15 * Math.Sin(t + 4.2) + speckle);
            }
        return rgb;
    }

    static float Clamp(double v) => (float)Math.Clamp(v, 0.15, 0.85);

    public static string SaveColourful(string path, int width, int height, int seed, int cls = 0)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ImageFile.Save(path, ColourfulRgb(width, height, seed, cls), width, height, overwrite: true);
        return path;
    }

    /// <summary>
    /// root/beach, root/forest, root/sunset with <paramref name="perClass"/> PNG images each (80 x 72 and
    /// similar odd sizes); every fourth image of a class sits in a nested sub-folder.
    /// </summary>
    public static string ClassFolders(string root, int perClass = 8)
    {
        for (int c = 0; c < ClassNames.Length; c++)
            for (int i = 0; i < perClass; i++)
            {
                string folder = i % 4 == 3 ? Path.Combine(root, ClassNames[c], "nested") : Path.Combine(root, ClassNames[c]);
                SaveColourful(Path.Combine(folder, $"img{i:D2}.png"), 80 - (i % 3) * 3, 72 + (i % 2) * 5, seed: 100 * c + i, cls: c);
            }
        return root;
    }

    /// <summary>A true single-channel (grayscale) JPEG, as Skia writes a Gray8 bitmap.</summary>
    public static string SaveGrayJpeg(string path, int width, int height, int seed)
    {
        var rng = new Random(seed);
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                byte v = (byte)(40 + (x * 170) / width + rng.Next(10));
                bitmap.SetPixel(x, y, new SKColor(v, v, v));
            }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    /// <summary>A JPEG cut to half its length (header intact, image data ends early).</summary>
    public static string SaveTruncatedJpeg(string path, int seed)
    {
        SaveColourful(path, 61, 47, seed);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        return path;
    }

    /// <summary>A valid PNG header claiming 100000 x 100000 pixels (10 gigapixels), with a tiny IDAT.</summary>
    public static string SaveHugePngHeader(string path)
    {
        File.WriteAllBytes(path, Chroma.Tests.Model.TestPng.Build(100_000, 100_000, 8, 2, new byte[64]));
        return path;
    }

    /// <summary>A tiny random network: width 1/16 (4 to 64 channels), 3 classes, 64 x 64 global input.</summary>
    public static ColorizationNetwork TinyNetwork(int seed = 1) =>
        new(new ColorizerConfig(0.0625, 3, 1, 64), CpuDevice.Instance, seed);

    public static string SaveTinyModel(string path, int seed = 1)
    {
        using var net = TinyNetwork(seed);
        ModelFile.Save(net, path);
        return path;
    }

    /// <summary>Files whose name marks them as an interrupted atomic write (hidden ".NAME.GUID.tmp").</summary>
    public static string[] TempFiles(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f).EndsWith(".tmp", StringComparison.Ordinal) || Path.GetFileName(f).Contains(".tmp.", StringComparison.Ordinal))
            .ToArray();
}
