using Chroma.Model;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>
/// The app-facing pipeline (Colorizer) with a random tiny model made in code: what it must
/// guarantee whatever the weights (L* kept, colour-blind input, sizes, alpha, global transfer).
/// </summary>
public sealed class ColorizerTests(ITestOutputHelper output)
{
    /// <summary>
    /// Width 0.0625, input size 64. The output layer's weights are halved so that the predicted
    /// a*, b* stay within about +-10 and mid-range colours stay inside the sRGB gamut
    /// (clipping out-of-gamut colours would move L*, which is not what these tests are about).
    /// </summary>
    static Colorizer RandomColorizer(int seed = 2, int maxWorkingPixels = 1_500_000)
    {
        var network = new ColorizationNetwork(new ColorizerConfig(0.0625, 5, 1, 64), CpuDevice.Instance, seed);
        var weight = network.Parameters["color.conv5.weight"].Value;
        var values = weight.ToArray();
        for (int i = 0; i < values.Length; i++) values[i] *= 0.5f;
        weight.CopyFrom(values);
        network.Parameters.MarkChanged();
        return new Colorizer(network) { MaxWorkingPixels = maxWorkingPixels };
    }

    /// <summary>A smooth colourful image with sRGB values in [0.25, 0.75] (L* about 30..75).</summary>
    static LoadedImage MidRangeImage(int width, int height, int pattern = 0, float[]? alpha = null)
    {
        var rgb = new float[3 * width * height];
        int plane = width * height;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double u = (x + 0.5) / width, v = (y + 0.5) / height;
                double phase = pattern * 1.7;
                rgb[y * width + x] = (float)(0.5 + 0.25 * Math.Sin(5 * u + phase));
                rgb[plane + y * width + x] = (float)(0.5 + 0.25 * Math.Cos(4 * v - 3 * u + phase));
                rgb[2 * plane + y * width + x] = (float)(0.5 + 0.25 * Math.Sin(7 * u * v + 2 * phase));
            }
        return new LoadedImage { Width = width, Height = height, Rgb = rgb, Alpha = alpha };
    }

    static float[] Lightness(float[] rgb, int width, int height)
    {
        var l = new float[width * height];
        LabColor.RgbToLightness(rgb, height, width, l);
        return l;
    }

    static double MaxAbsDifference(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    [Theory]
    [InlineData(53, 37)]
    [InlineData(64, 48)]
    public void Colorize_keeps_the_input_lightness(int width, int height)
    {
        using var colorizer = RandomColorizer();
        var image = MidRangeImage(width, height);
        var result = colorizer.Colorize(image);

        var l = new float[width * height];
        var ab = new float[2 * width * height];
        LabColor.RgbToLab(result.Rgb, height, width, l, ab);
        double maxChroma = ab.Max(Math.Abs);
        double lError = MaxAbsDifference(Lightness(image.Rgb, width, height), l);
        output.WriteLine($"{width}x{height}: max |a*|,|b*| of the output {maxChroma:F1}, max L* change {lError:E2}");
        Assert.True(maxChroma > 1, $"the random model should predict some colour (max |a*|,|b*| = {maxChroma:F2})");
        Assert.True(lError <= 1, $"L* moved by {lError:F3} (at most 1 allowed)");
    }

    [Fact]
    public void Result_does_not_depend_on_the_input_colours()
    {
        using var colorizer = RandomColorizer();
        var colour = MidRangeImage(40, 24, pattern: 1);
        // the same L* with a* = b* = 0
        var l = Lightness(colour.Rgb, 40, 24);
        var grayRgb = new float[colour.Rgb.Length];
        LabColor.LabToRgb(l, new float[2 * l.Length], 24, 40, grayRgb);
        var gray = new LoadedImage { Width = 40, Height = 24, Rgb = grayRgb };
        Assert.True(MaxAbsDifference(colour.Rgb, grayRgb) > 0.05, "the colour image should differ from its gray version");

        double difference = MaxAbsDifference(colorizer.Colorize(colour).Rgb, colorizer.Colorize(gray).Rgb);
        output.WriteLine($"colour vs gray input: max output difference {difference:E2}");
        Assert.True(difference <= 1e-4, $"outputs for a colour image and its gray version differ by {difference:E3}");
    }

    [Fact]
    public void Global_features_from_another_image_change_the_colours()
    {
        using var colorizer = RandomColorizer();
        var image = MidRangeImage(48, 32, pattern: 0);
        var other = MidRangeImage(70, 90, pattern: 2);
        var plain = colorizer.Colorize(image);
        var transferred = colorizer.Colorize(image, globalFrom: other);
        var self = colorizer.Colorize(image, globalFrom: image);

        double change = MaxAbsDifference(plain.Rgb, transferred.Rgb);
        output.WriteLine($"global features from another image: max change {change:E2}; from itself: {MaxAbsDifference(plain.Rgb, self.Rgb):E2}");
        Assert.True(change > 1e-3, $"global features from another image changed the output by only {change:E2}");
        Assert.Equal(plain.Rgb, self.Rgb); // the image's own global features are the default
        // the colours change, the lightness does not
        Assert.True(MaxAbsDifference(Lightness(plain.Rgb, 48, 32), Lightness(transferred.Rgb, 48, 32)) <= 1);
    }

    [Theory]
    [InlineData(53, 37)]
    [InlineData(37, 53)]
    [InlineData(1, 1)]
    [InlineData(250, 7)]
    public void Output_size_equals_input_size(int width, int height)
    {
        using var colorizer = RandomColorizer();
        var result = colorizer.Colorize(MidRangeImage(width, height));
        Assert.Equal(width, result.Width);
        Assert.Equal(height, result.Height);
        Assert.Equal(3 * width * height, result.Rgb.Length);
        Assert.All(result.Rgb, v => Assert.InRange(v, 0f, 1f));
        Assert.Null(result.Alpha);
    }

    [Fact]
    public void Alpha_is_passed_through()
    {
        using var colorizer = RandomColorizer();
        var alpha = TestData.ToFloat(TestData.Uniform(5, 29 * 19, 0, 1));
        var result = colorizer.Colorize(MidRangeImage(29, 19, alpha: alpha));
        Assert.NotNull(result.Alpha);
        Assert.Equal(alpha, result.Alpha);
    }

    [Fact]
    public void Large_image_runs_at_a_bounded_working_size()
    {
        // 4800 working pixels for a 96 x 160 image: the local path runs at 48 x 88, the output is full size
        using var colorizer = RandomColorizer(maxWorkingPixels: 4800);
        var image = MidRangeImage(160, 96);
        var result = colorizer.Colorize(image);
        Assert.Equal((160, 96), (result.Width, result.Height));
        Assert.True(MaxAbsDifference(Lightness(image.Rgb, 160, 96), Lightness(result.Rgb, 160, 96)) <= 1);
        Assert.Equal((48, 88), Colorizer.WorkingSize(96, 160, 4800));
    }

    public static TheoryData<int, int, int> Sizes => new()
    {
        { 3000, 4000, 1_500_000 },   // a 12 MP photo: rounding to multiples of 8 would overshoot to 1064 x 1416
        { 4000, 3000, 1_500_000 },
        { 1080, 1920, 1_500_000 },
        { 37, 53, 1_500_000 },       // small: rounded to the nearest multiples of 8, 40 x 56
        { 480, 640, 1_500_000 },     // already fits: unchanged
        { 1, 1, 1_500_000 },
        { 100, 20_000, 1_500_000 },  // extreme aspect
        { 96, 160, 4800 },
        { 5, 5, 64 },
    };

    [Theory, MemberData(nameof(Sizes))]
    public void WorkingSize_is_multiples_of_8_within_the_pixel_budget(int h, int w, int maxPixels)
    {
        var (wh, ww) = Colorizer.WorkingSize(h, w, maxPixels);
        output.WriteLine($"{h} x {w}, at most {maxPixels}: {wh} x {ww} = {(long)wh * ww}");
        Assert.True(wh % 8 == 0 && ww % 8 == 0 && wh >= 8 && ww >= 8, $"{wh} x {ww} is not made of positive multiples of 8");
        Assert.True((long)wh * ww <= maxPixels, $"{wh} x {ww} = {(long)wh * ww} pixels exceeds the budget of {maxPixels}");
        // each side is within one step of 8 (plus the rounding) of the aspect-preserving size
        double scale = Math.Min(1.0, Math.Sqrt((double)maxPixels / ((double)h * w)));
        Assert.InRange(wh, Math.Max(8, h * scale - 12), Math.Max(8, h * scale + 4));
        Assert.InRange(ww, Math.Max(8, w * scale - 12), Math.Max(8, w * scale + 4));
        if (h % 8 == 0 && w % 8 == 0 && (long)h * w <= maxPixels) Assert.Equal((h, w), (wh, ww));
    }

    [Theory]
    [InlineData(128, 128, 1_500_000, 256, 256, 256)]    // a small square photo is enlarged to the trained scale
    [InlineData(100, 300, 1_500_000, 256, 256, 768)]    // the shorter side reaches 256, aspect kept
    [InlineData(37, 53, 1_500_000, 256, 256, 368)]      // 256 x 366.7, to multiples of 8
    [InlineData(480, 640, 1_500_000, 256, 480, 640)]    // already large enough: unchanged
    [InlineData(128, 128, 4096, 256, 64, 64)]           // the pixel budget still bounds it
    [InlineData(128, 128, 1_500_000, 0, 128, 128)]      // 0 never enlarges
    public void WorkingSize_enlarges_small_photos_to_the_minimum_side(int h, int w, int maxPixels, int minSide, int eh, int ew) =>
        Assert.Equal((eh, ew), Colorizer.WorkingSize(h, w, maxPixels, minSide));

    [Fact]
    public void Mirror_averaging_is_the_mean_of_the_prediction_and_the_mirrored_prediction_mirrored_back()
    {
        using var colorizer = RandomColorizer(maxWorkingPixels: 1_500_000);
        const int h = 24, w = 40;
        var rng = new Random(12);
        var l = Enumerable.Range(0, h * w).Select(_ => (float)(rng.NextDouble() * 100)).ToArray();
        var mirrored = new float[h * w];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) mirrored[y * w + x] = l[y * w + (w - 1 - x)];

        var plain = colorizer.PredictAb(l, h, w, l, h, w);
        var ofMirrored = colorizer.PredictAb(mirrored, h, w, mirrored, h, w);
        colorizer.AverageMirrored = true;
        var averaged = colorizer.PredictAb(l, h, w, l, h, w);
        double maxDiff = 0, moved = 0;
        for (int c = 0; c < 2; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int i = c * h * w + y * w + x;
                    double expected = 0.5 * ((double)plain[i] + ofMirrored[c * h * w + y * w + (w - 1 - x)]);
                    maxDiff = Math.Max(maxDiff, Math.Abs(averaged[i] - expected));
                    moved = Math.Max(moved, Math.Abs(averaged[i] - plain[i]));
                }
        Assert.True(maxDiff < 1e-3, $"averaged prediction differs from the mean by {maxDiff}");
        Assert.True(moved > 1e-3, "mirror averaging changed nothing: the test would not see it");
    }

    [Fact]
    public void Minimum_working_side_comes_from_the_model_file_and_is_checked()
    {
        using var network = new ColorizationNetwork(new ColorizerConfig(0.0625, 3, 1, 64), CpuDevice.Instance, seed: 1);
        string dir = Directory.CreateTempSubdirectory("chroma-minside-").FullName;
        try
        {
            string good = Path.Combine(dir, "good.safetensors"), bad = Path.Combine(dir, "bad.safetensors");
            ModelFile.Save(network, good, extraMetadata: new Dictionary<string, string> { [ModelFile.MinWorkingSideKey] = "256", [ModelFile.AverageMirroredKey] = "true" });
            ModelFile.Save(network, bad, extraMetadata: new Dictionary<string, string> { [ModelFile.MinWorkingSideKey] = "-3" });
            using (var colorizer = Colorizer.Load(good, CpuDevice.Instance))
            {
                Assert.Equal(256, colorizer.MinWorkingSide);
                Assert.True(colorizer.AverageMirrored);
            }
            var e = Assert.Throws<ModelFileException>(() => Colorizer.Load(bad, CpuDevice.Instance));
            Assert.Contains("working_min_side", e.Message);
            Assert.Contains("bad.safetensors", e.Message);
            ModelFile.Save(network, bad, extraMetadata: new Dictionary<string, string> { [ModelFile.AverageMirroredKey] = "yes" });
            e = Assert.Throws<ModelFileException>(() => Colorizer.Load(bad, CpuDevice.Instance));
            Assert.Contains("average_mirrored", e.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData(0.0f)]
    [InlineData(0.6f)]
    [InlineData(1.7f)]
    public void Saturation_scales_the_predicted_chroma_and_keeps_hue(float gain)
    {
        // Two colorizers on one set of weights: the gain must multiply a*, b* and change nothing else.
        using var plain = RandomColorizer(seed: 5);
        var vivid = new Colorizer(plain.Network) { Saturation = gain }; // shares the network; not disposed
        const int w = 41, h = 27;
        var image = MidRangeImage(w, h, pattern: 2);
        var l = Lightness(image.Rgb, w, h);
        var (ab, logits) = plain.Predict(l, h, w, l, h, w);
        var (abGain, logitsGain) = vivid.Predict(l, h, w, l, h, w);
        Assert.Equal(logits, logitsGain);
        double maxChroma = ab.Max(Math.Abs);
        Assert.True(maxChroma > 1, $"the random model should predict some colour (max {maxChroma:F2})");
        for (int i = 0; i < ab.Length; i++)
            Assert.True(Math.Abs(abGain[i] - (double)gain * ab[i]) <= 1e-4 * (1 + Math.Abs(ab[i])), $"a*b*[{i}]: {abGain[i]} with gain {gain}, {ab[i]} without");

        // and the colorized image keeps its lightness; gain 0 gives the gray image
        var result = vivid.Colorize(image);
        var lOut = new float[w * h];
        var abOut = new float[2 * w * h];
        LabColor.RgbToLab(result.Rgb, h, w, lOut, abOut);
        Assert.True(MaxAbsDifference(l, lOut) <= 1, "L* moved");
        if (gain == 0) Assert.True(abOut.Max(Math.Abs) < 0.5, $"gain 0 left chroma {abOut.Max(Math.Abs):F2}");
    }

    [Theory]
    [InlineData(-0.1f)]
    [InlineData(4.5f)]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Saturation_out_of_range_is_rejected(float gain)
    {
        using var plain = RandomColorizer();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Colorizer(plain.Network) { Saturation = gain });
        Assert.Contains("between 0 and 4", e.Message);
    }
}
