using System.Text.RegularExpressions;
using Chroma.Model;
using Chroma.Training;
using Chroma.Training.Data;
using Xunit;

namespace Chroma.Tests.Training;

public sealed class EvaluationTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-eval-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>sqrt(mean over both planes of a*^2 and b*^2), per pixel in float64 from the decoded file.</summary>
    static double RmsOfChrominance(string path)
    {
        var image = ImageFile.Load(path);
        int n = image.Width * image.Height;
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            var (_, a, b) = LabColor.FromRgb(image.Rgb[i], image.Rgb[n + i], image.Rgb[2 * n + i]);
            sum += a * a + b * b;
        }
        return Math.Sqrt(sum / (2.0 * n));
    }

    [Fact]
    public void Random_tiny_model_gives_finite_figures_and_a_complete_report()
    {
        string root = Fixtures.ClassFolders(Path.Combine(_dir, "data"), perClass: 2);
        string bad = Path.Combine(root, "beach", "broken.jpg");
        File.WriteAllText(bad, "not a JPEG");
        var data = Dataset.Open(root);
        using var colorizer = new Colorizer(Fixtures.TinyNetwork(seed: 4));
        var eval = new Evaluation();
        string report = Path.Combine(_dir, "report");
        int lastProgress = 0;
        var s = eval.Run(colorizer, data, report, (done, total) => { lastProgress = done; Assert.Equal(7, total); });

        Assert.Equal(7, lastProgress);
        Assert.Equal(6, s.Images);
        Assert.Equal(1, s.Skipped);
        Assert.Contains(eval.Warnings, w => w.Contains(bad, StringComparison.Ordinal));
        foreach (double v in new[] { s.Psnr, s.GrayPsnr, s.AbRmse, s.GrayAbRmse, s.Colourfulness, s.OriginalColourfulness, s.GrayColourfulness })
            Assert.True(double.IsFinite(v), $"{s}");
        Assert.NotNull(s.Top1);
        Assert.InRange(s.Top1!.Value, 0, 1);
        Assert.Null(s.Top5); // 3 classes: the true one is always in the top 5, so top-5 is not reported
        Assert.True(s.OriginalColourfulness > 10, $"{s.OriginalColourfulness}");

        // The gray baseline's error is the originals' chrominance itself.
        double expected = eval.Results.Average(r => RmsOfChrominance(r.Path));
        Assert.Equal(expected, s.GrayAbRmse, expected * 1e-4);
        Assert.True(s.GrayAbRmse > 5, $"{s.GrayAbRmse}");

        string html = File.ReadAllText(Path.Combine(report, "index.html"));
        Assert.Contains("saturation 1.", html);
        var sources = Regex.Matches(html, "src=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(3 * 6, sources.Count);
        Assert.Equal(sources.Count, sources.Distinct().Count());
        foreach (var src in sources)
        {
            string file = Path.Combine(report, src);
            Assert.True(File.Exists(file), $"index.html references {src}, which does not exist");
            Assert.True(ImageFile.Load(file).Width > 0);
        }
        Assert.Contains("img00.png", html);
    }

    [Fact]
    public void Colourfulness_is_zero_for_gray_and_matches_a_hand_computed_value()
    {
        // Gray: R = G = B everywhere, so rg = yb = 0.
        var gray = new float[3 * 6];
        for (int i = 0; i < 6; i++) gray[i] = gray[6 + i] = gray[12 + i] = i / 5f;
        Assert.Equal(0, Metrics.Colourfulness(gray), 9);

        // One pure red and one black pixel (0-255 units): rg = {255, 0}, yb = {127.5, 0};
        // sd_rg = mean_rg = 127.5, sd_yb = mean_yb = 63.75, so M = 1.3 * sqrt(127.5^2 + 63.75^2) = 1.3 * 127.5 * sqrt(1.25).
        float[] redBlack = [1, 0, 0, 0, 0, 0];
        Assert.Equal(1.3 * 127.5 * Math.Sqrt(1.25), Metrics.Colourfulness(redBlack), 6);

        var saturated = Fixtures.ColourfulRgb(16, 12, seed: 1);
        Assert.True(Metrics.Colourfulness(saturated) > 5);
    }

    [Fact]
    public void Psnr_and_ab_rmse_match_their_definitions()
    {
        float[] a = [0.5f, 0.25f, 1f, 0f], b = [0.5f, 0.5f, 0.75f, 0f];
        // mse = (0 + 1/16 + 1/16 + 0) / 4 = 1/32: PSNR = 10 log10(32)
        Assert.Equal(10 * Math.Log10(32), Metrics.Psnr(a, b), 9);
        Assert.Equal(double.PositiveInfinity, Metrics.Psnr(a, a));
        Assert.Equal(Math.Sqrt((9 + 16) / 2.0), Metrics.AbRmse([3f, 4f], [0f, 0f]), 9);
        Assert.Equal(2, Metrics.Rank([0.1f, 0.7f, 0.5f, 0.2f], 0 + 3));
    }
}
