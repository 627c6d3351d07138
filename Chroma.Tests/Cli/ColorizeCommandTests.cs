using Chroma.Cli.Commands;
using Chroma.Model;
using Chroma.Tests.Training;
using Xunit;

namespace Chroma.Tests.Cli;

public sealed class ColorizeCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-colorize-").FullName;
    readonly string _model;

    public ColorizeCommandTests() => _model = Fixtures.SaveTinyModel(Path.Combine(_dir, "tiny.safetensors"));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string PathOf(params string[] parts) => Path.Combine([_dir, .. parts]);

    Cli.Result Colorize(params string[] args) => Cli.Run(["colorize", "--model", _model, "--device", "cpu", .. args]);

    /// <summary>Per-pixel |L*(a) - L*(b)| of two decoded images of one size: (mean, max).</summary>
    static (double Mean, double Max) LightnessDifference(string a, string b)
    {
        var x = ImageFile.Load(a);
        var y = ImageFile.Load(b);
        Assert.Equal((x.Width, x.Height), (y.Width, y.Height));
        int n = x.Width * x.Height;
        double sum = 0, max = 0;
        for (int i = 0; i < n; i++)
        {
            double lx = LabColor.FromRgb(x.Rgb[i], x.Rgb[n + i], x.Rgb[2 * n + i]).L;
            double ly = LabColor.FromRgb(y.Rgb[i], y.Rgb[n + i], y.Rgb[2 * n + i]).L;
            double d = Math.Abs(lx - ly);
            sum += d;
            max = Math.Max(max, d);
        }
        return (sum / n, max);
    }

    void AssertColorizedCopyOf(string input, string output)
    {
        Assert.True(File.Exists(output), $"{output} was not written");
        var (mean, max) = LightnessDifference(input, output);
        Assert.True(mean < 1 && max < 2, $"{Path.GetFileName(output)}: L* differs from the input's by {mean:F3} on average, {max:F3} at most");
    }

    [Theory]
    [InlineData("photo.jpg", 37, 29)]
    [InlineData("scan.png", 45, 31)]
    public void Colorizes_beside_the_input_to_a_file_and_to_a_folder(string name, int width, int height)
    {
        string input = Fixtures.SaveColourful(PathOf("in", name), width, height, seed: 21);
        string ext = Path.GetExtension(name), stem = Path.GetFileNameWithoutExtension(name);

        var r = Colorize(input);
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertColorizedCopyOf(input, PathOf("in", stem + "-color" + ext));

        r = Colorize(input, "-o", PathOf("out", "named.png"));
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertColorizedCopyOf(input, PathOf("out", "named.png"));

        r = Colorize(input, "-o", PathOf("folder") + Path.DirectorySeparatorChar); // a trailing separator makes it a folder
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertColorizedCopyOf(input, PathOf("folder", stem + "-color" + ext));

        Assert.Empty(Fixtures.TempFiles(_dir));
    }

    [Fact]
    public void Folder_with_bad_files_colorizes_the_good_ones_and_skips_the_rest()
    {
        string folder = PathOf("mixed");
        string[] good =
        [
            Fixtures.SaveColourful(Path.Combine(folder, "a.jpg"), 41, 27, 1),
            Fixtures.SaveColourful(Path.Combine(folder, "b.png"), 23, 35, 2),
            Fixtures.SaveColourful(Path.Combine(folder, "sub", "c.png"), 19, 17, 3),
        ];
        string truncated = Fixtures.SaveTruncatedJpeg(Path.Combine(folder, "cut.jpg"), 4);
        string empty = Path.Combine(folder, "empty.png");
        File.WriteAllBytes(empty, []);
        string text = Path.Combine(folder, "notes.jpg");
        File.WriteAllText(text, "a text file with an image's name");
        string huge = Fixtures.SaveHugePngHeader(Path.Combine(folder, "huge.png"));
        string[] bad = [truncated, empty, text, huge];

        var r = Colorize(folder);
        Assert.True(r.ExitCode == 1, r.ToString());
        foreach (var g in good)
            AssertColorizedCopyOf(g, Path.Combine(Path.GetDirectoryName(g)!, Path.GetFileNameWithoutExtension(g) + "-color" + Path.GetExtension(g)));
        foreach (var b in bad)
        {
            Assert.False(File.Exists(Path.Combine(folder, Path.GetFileNameWithoutExtension(b) + "-color" + Path.GetExtension(b))), b);
            Assert.Contains(Path.GetFileName(b), r.Output);
        }
        Assert.Contains("colorized 3 of 7", r.Output);
        Assert.Contains("too large", r.Output);
        Assert.Equal(good.Length + bad.Length + good.Length, Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Length);
        Assert.Empty(Fixtures.TempFiles(_dir));

        // Run again: outputs (NAME-color) are not taken as inputs, and existing ones are not replaced.
        var again = Colorize(folder);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("colorized 0 of 7", again.Output);
        Assert.Contains("already exists", again.Output);
    }

    [Fact]
    public void Never_overwrites_unless_asked_and_never_replaces_the_input()
    {
        string input = Fixtures.SaveColourful(PathOf("p.png"), 27, 21, 5);
        string output = PathOf("p-color.png");
        File.WriteAllText(output, "precious");

        var r = Colorize(input);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("already exists", r.Output);
        Assert.Equal("precious", File.ReadAllText(output));

        byte[] inputBytes = File.ReadAllBytes(input);
        foreach (var args in new[] { new[] { input, "-o", input }, [input, "-o", input, "--overwrite"], [input, "-o", PathOf(".", "p.png"), "--overwrite"] })
        {
            r = Colorize(args);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("replace the input", r.Output);
            Assert.Equal(inputBytes, File.ReadAllBytes(input));
        }

        r = Colorize(input, "--overwrite");
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertColorizedCopyOf(input, output);
        Assert.Empty(Fixtures.TempFiles(_dir));
    }

    [Fact]
    public void Without_model_and_without_a_default_model_exits_2()
    {
        // The build has a default model built in; $CHROMA_DEFAULT_MODEL naming a missing file is an error, not a silent fallback.
        string? saved = Environment.GetEnvironmentVariable(ColorizeCommand.DefaultModelVariable);
        Environment.SetEnvironmentVariable(ColorizeCommand.DefaultModelVariable, PathOf("no-such-model.safetensors"));
        try
        {
            string input = Fixtures.SaveColourful(PathOf("p.png"), 16, 16, 5);
            var r = Cli.Run("colorize", input, "--device", "cpu");
            Assert.True(r.ExitCode == 2, r.ToString());
            Assert.Contains("no default model", r.Output);
            Assert.False(File.Exists(PathOf("p-color.png")));
            r = Cli.Run("colorize", input, "--device", "cpu", "-o", PathOf("out"));
            Assert.True(r.ExitCode == 2, r.ToString());
            Assert.False(Directory.Exists(PathOf("out")), "the output folder was created for nothing");
        }
        finally { Environment.SetEnvironmentVariable(ColorizeCommand.DefaultModelVariable, saved); }
    }

    [Fact]
    public void Global_from_takes_the_global_features_from_another_image()
    {
        string input = Fixtures.SaveColourful(PathOf("p.png"), 33, 25, 6);
        string other = Fixtures.SaveColourful(PathOf("other.jpg"), 50, 40, 7, cls: 2);
        var plain = Colorize(input, "-o", PathOf("plain.png"));
        var transferred = Colorize(input, "--global-from", other, "-o", PathOf("transfer.png"));
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.True(transferred.ExitCode == 0, transferred.ToString());
        AssertColorizedCopyOf(input, PathOf("transfer.png"));
        // Same lightness, other global features: other colours.
        Assert.NotEqual(ImageFile.Load(PathOf("plain.png")).Rgb, ImageFile.Load(PathOf("transfer.png")).Rgb);

        var missing = Colorize(input, "--global-from", PathOf("nope.jpg"), "-o", PathOf("x.png"));
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("nope.jpg", missing.Output);
        Assert.False(File.Exists(PathOf("x.png")));
    }

    /// <summary>Mean chroma sqrt(a*^2 + b*^2) of an image file.</summary>
    static double MeanChroma(string path)
    {
        var image = ImageFile.Load(path);
        int n = image.Width * image.Height;
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            var lab = LabColor.FromRgb(image.Rgb[i], image.Rgb[n + i], image.Rgb[2 * n + i]);
            sum += Math.Sqrt(lab.A * lab.A + lab.B * lab.B);
        }
        return sum / n;
    }

    [Fact]
    public void Saturation_comes_from_the_model_unless_given()
    {
        string input = Fixtures.SaveColourful(PathOf("p.png"), 35, 23, 8);
        string gray = PathOf("gray-model.safetensors");
        using (var net = Fixtures.TinyNetwork())
            ModelFile.Save(net, gray, extraMetadata: new Dictionary<string, string> { [ModelFile.SaturationKey] = "0" });

        var r = Cli.Run("colorize", "--model", gray, "--device", "cpu", input, "-o", PathOf("from-model.png"));
        Assert.True(r.ExitCode == 0, r.ToString());
        r = Cli.Run("colorize", "--model", gray, "--device", "cpu", input, "-o", PathOf("given.png"), "--saturation", "2");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = Colorize(input, "-o", PathOf("plain.png"));
        Assert.True(r.ExitCode == 0, r.ToString());
        double fromModel = MeanChroma(PathOf("from-model.png")), given = MeanChroma(PathOf("given.png")), plain = MeanChroma(PathOf("plain.png"));
        Assert.True(fromModel < 1, $"the model's saturation 0 should give a gray image (mean chroma {fromModel:F2})");
        Assert.True(given > 1.5 * plain, $"--saturation 2 gave mean chroma {given:F2}, saturation 1 {plain:F2}");
        AssertColorizedCopyOf(input, PathOf("given.png"));

        foreach (var bad in new[] { "-1", "4.5", "NaN" })
        {
            r = Colorize(input, "-o", PathOf("out-" + bad), "--saturation", bad);
            Assert.True(r.ExitCode == 2, r.ToString());
            Assert.Contains("--saturation must be between 0 and 4", r.Output);
            Assert.False(Directory.Exists(PathOf("out-" + bad)), "the output folder was created for nothing");
        }
    }

    [Fact]
    public void Bad_device_and_missing_input_are_clear_errors()
    {
        string input = Fixtures.SaveColourful(PathOf("p.png"), 16, 16, 5);
        var r = Cli.Run("colorize", "--model", _model, "--device", "bogus", input);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--device: \"bogus\" is not a device; use auto, cpu, cuda, opencl, cuda:N or opencl:N", r.Stderr);
        Assert.DoesNotContain("   at ", r.Output); // no stack trace

        r = Colorize(PathOf("missing.jpg"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("missing.jpg", r.Output);
        Assert.DoesNotContain("   at ", r.Output);

        // One missing among several: the others are still done.
        r = Colorize(PathOf("missing.jpg"), input);
        Assert.Equal(1, r.ExitCode);
        Assert.True(File.Exists(PathOf("p-color.png")));
    }

    [Fact]
    public void Bad_model_file_is_a_clear_error_naming_it()
    {
        string input = Fixtures.SaveColourful(PathOf("p.png"), 16, 16, 5);
        var bytes = File.ReadAllBytes(_model);
        string truncated = PathOf("truncated.safetensors");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length - 100)]);
        string garbage = PathOf("garbage.safetensors");
        File.WriteAllText(garbage, "hello");
        foreach (var model in new[] { truncated, garbage, PathOf("absent.safetensors") })
        {
            var r = Cli.Run("colorize", "--model", model, "--device", "cpu", input);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains(Path.GetFileName(model), r.Output);
            Assert.Contains("error", r.Output);
            Assert.DoesNotContain("   at ", r.Output);
            Assert.False(File.Exists(PathOf("p-color.png")));
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 3)]
    [InlineData(7, 301)]
    [InlineData(517, 5)]
    public void Tiny_and_elongated_images_are_colorized(int width, int height)
    {
        string input = Fixtures.SaveColourful(PathOf("p.png"), width, height, 8);
        var r = Colorize(input);
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertColorizedCopyOf(input, PathOf("p-color.png"));
    }

    [Fact]
    public void Output_in_a_format_that_cannot_be_written_is_refused()
    {
        string input = Fixtures.SaveColourful(PathOf("p.png"), 16, 16, 5);
        var r = Colorize(input, "-o", PathOf("out.gif"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("out.gif", r.Output);
        Assert.DoesNotContain("   at ", r.Output);
        Assert.False(File.Exists(PathOf("out.gif")));
        Assert.Empty(Fixtures.TempFiles(_dir));
    }

    [Fact]
    public void Output_names_in_a_folder_do_not_collide_and_keep_the_input_format()
    {
        string one = Fixtures.SaveColourful(PathOf("x", "same.png"), 17, 13, 1);
        string two = Fixtures.SaveColourful(PathOf("y", "same.png"), 17, 13, 2);
        string bmp = Fixtures.SaveColourful(PathOf("y", "old.bmp"), 15, 11, 3);
        var r = Colorize(one, two, bmp, "-o", PathOf("out") + "/");
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertColorizedCopyOf(one, PathOf("out", "same-color.png"));
        AssertColorizedCopyOf(two, PathOf("out", "same-color-2.png"));
        AssertColorizedCopyOf(bmp, PathOf("out", "old-color.png")); // no BMP encoder in Skia: written as PNG

        // Several inputs cannot go to one file; a folder without images is an error.
        r = Colorize(one, two, "-o", PathOf("both.png"));
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("names one file, but there are 2 inputs", r.Stderr);
        Assert.False(File.Exists(PathOf("both.png")));
        Directory.CreateDirectory(PathOf("nothing"));
        r = Colorize(PathOf("nothing"));
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("no images found", r.Output);
    }

    [Fact]
    public void Transparency_of_a_png_is_kept()
    {
        const int w = 21, h = 13;
        var alpha = Enumerable.Range(0, w * h).Select(i => (i % w) / (float)(w - 1)).ToArray();
        string input = PathOf("logo.png");
        ImageFile.Save(input, Fixtures.ColourfulRgb(w, h, 4), w, h, alpha);
        var r = Colorize(input);
        Assert.True(r.ExitCode == 0, r.ToString());
        var output = ImageFile.Load(PathOf("logo-color.png"));
        Assert.NotNull(output.Alpha);
        Assert.Equal(ImageFile.Load(input).Alpha, output.Alpha);
    }
}
