using Chroma.Model;
using Xunit;

namespace Chroma.Tests.Cli;

/// <summary>The README's example photo colorizes as it did before the CPU kernels changed (Fixtures/colorize/README.md).</summary>
public sealed class ColorizeRegressionTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-regression-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Example_photo_is_within_one_level_of_the_earlier_output()
    {
        string fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "colorize");
        string input = Path.Combine(_dir, "colorado-national-park-1941.png");
        File.Copy(Path.Combine(fixtures, "colorado-national-park-1941.png"), input);
        var r = Cli.Run("colorize", input, "--device", "cpu");
        Assert.True(r.ExitCode == 0, r.ToString());
        var now = ImageFile.Load(Path.Combine(_dir, "colorado-national-park-1941-color.png"));
        var before = ImageFile.Load(Path.Combine(fixtures, "colorado-national-park-1941-color.png"));
        Assert.Equal((before.Width, before.Height), (now.Width, now.Height));
        double worst = 0;
        for (int i = 0; i < before.Rgb.Length; i++) worst = Math.Max(worst, Math.Abs(before.Rgb[i] - now.Rgb[i]) * 255);
        Assert.True(worst <= 1.0001, $"largest channel difference {worst:F2}/255");
    }
}
