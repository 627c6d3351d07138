using Chroma.Tests.Training;
using Xunit;

namespace Chroma.Tests.Cli;

/// <summary>
/// The command-line conventions every command shares (CliConventions): unknown options, values that
/// do not parse, exit codes 0/1/2, errors on stderr and results on stdout, -o as file or folder,
/// folders given where files are expected, empty inputs.
/// </summary>
public sealed class ConventionTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-conventions-").FullName;
    readonly string _model;

    public ConventionTests() => _model = Fixtures.SaveTinyModel(Path.Combine(_dir, "tiny.safetensors"));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string PathOf(params string[] parts) => Path.Combine([_dir, .. parts]);

    Cli.Result Colorize(params string[] args) => Cli.Run(["colorize", "--model", _model, "--device", "cpu", .. args]);

    static void AssertUsageError(Cli.Result r, string message)
    {
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains(message, r.Stderr);
        Assert.Equal("", r.Stdout);
        Assert.DoesNotContain("   at ", r.Output);      // no stack trace
        Assert.DoesNotContain("Usage:", r.Output);      // no help dump
        Assert.DoesNotContain("System.", r.Output);     // no .NET type names
    }

    [Theory]
    [InlineData("--overwirte", "unknown option '--overwirte' (did you mean --overwrite?)")]
    [InlineData("--saturaton", "unknown option '--saturaton' (did you mean --saturation?)")]
    [InlineData("-x", "unknown option '-x'")]
    public void A_misspelled_option_is_a_usage_error_even_where_an_input_would_fit(string option, string message)
    {
        string input = Fixtures.SaveColourful(PathOf("a.png"), 16, 12, 1);
        var r = Colorize(option, "2", input);
        AssertUsageError(r, message);
        Assert.False(File.Exists(PathOf("a-color.png")), "nothing may be done on a usage error");
    }

    [Fact]
    public void A_file_whose_name_starts_with_a_dash_is_reachable_after_double_dash()
    {
        string input = Fixtures.SaveColourful(PathOf("-dash.png"), 16, 12, 2);
        string old = Directory.GetCurrentDirectory();
        Directory.SetCurrentDirectory(_dir);
        try
        {
            var r = Colorize("--", "-dash.png");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.True(File.Exists(PathOf("-dash-color.png")));
        }
        finally { Directory.SetCurrentDirectory(old); }
    }

    [Theory]
    [InlineData("colorize", "--saturation", "1,5", "--saturation: \"1,5\" is not a number; use a dot: 1.5")]
    [InlineData("colorize", "--saturation", "lots", "--saturation: \"lots\" is not a number")]
    [InlineData("colorize", "--max-pixels", "1e6x", "--max-pixels: \"1e6x\" is not a whole number")]
    [InlineData("colorize", "--max-pixels", "2.5", "--max-pixels: \"2.5\" is not a whole number; --max-pixels takes whole numbers only")]
    [InlineData("train", "--batch", "sixteen", "--batch: \"sixteen\" is not a whole number")]
    [InlineData("train", "--width", "0,25", "--width: \"0,25\" is not a number; use a dot: 0.25")]
    [InlineData("bench", "--width", "1,0", "--width: \"1,0\" is not a number; use a dot: 1.0")]
    [InlineData("colorize", "--device", "gpu", "--device: \"gpu\" is not a device; use auto, cpu, cuda, opencl, cuda:N or opencl:N")]
    [InlineData("colorize", "--device", "cuda:x", "--device: \"cuda:x\" is not a device")]
    public void A_value_that_does_not_parse_is_one_line_naming_option_value_and_form(string command, string option, string value, string message)
    {
        string input = Fixtures.SaveColourful(PathOf("b.png"), 16, 12, 3);
        string[] rest = command switch
        {
            "colorize" => ["--model", _model, input],
            "train" => ["--data", _dir],
            _ => [],
        };
        var r = Cli.Run([command, option, value, .. rest]);
        AssertUsageError(r, message);
        Assert.Equal(2, r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // the error and where to find help
    }

    [Fact]
    public void A_missing_required_option_is_a_usage_error()
    {
        AssertUsageError(Cli.Run("eval"), "chroma eval: --data is required");
    }

    [Fact]
    public void A_result_line_is_not_wrapped_when_stdout_is_redirected()
    {
        // Spectre wraps redirected output at the console width; a script reading "input -> output" needs one line.
        string name = new string('n', 200) + ".png";
        string input = Fixtures.SaveColourful(PathOf(name), 16, 12, 11);
        var r = Colorize(input);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"{input} -> {PathOf(new string('n', 200) + "-color.png")}", r.Stdout);
    }

    [Fact]
    public void Help_documents_the_exit_codes()
    {
        var r = Cli.Run("colorize", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("Exit codes: 0 all done; 1 some inputs failed", r.Stdout);
        Assert.Contains("2 usage error", r.Stdout);
    }

    [Fact]
    public void Exit_codes_are_0_when_all_done_1_when_some_inputs_failed_2_on_usage_errors()
    {
        string good = Fixtures.SaveColourful(PathOf("in", "good.png"), 16, 12, 4);
        var r = Colorize(good);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("good-color.png", r.Stdout);
        Assert.Equal("", r.Stderr);

        File.WriteAllText(PathOf("in", "broken.png"), "not a png");
        r = Colorize(good, PathOf("in", "broken.png"), "--overwrite");
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("colorized 1 of 2 images", r.Stdout);
        Assert.Contains("broken.png", r.Stderr);
        Assert.DoesNotContain("broken.png", r.Stdout);

        r = Colorize(good, "--max-pixels", "10");
        AssertUsageError(r, "--max-pixels must be at least");
    }

    [Fact]
    public void A_folder_or_an_empty_file_where_a_file_is_expected_gets_a_precise_message()
    {
        string input = Fixtures.SaveColourful(PathOf("c.png"), 16, 12, 5);
        Directory.CreateDirectory(PathOf("models"));
        AssertUsageError(Cli.Run("colorize", "--model", PathOf("models"), input), $"--model {PathOf("models")}: is a folder; give a .safetensors model file");
        AssertUsageError(Cli.Run("eval", "--model", PathOf("models"), "--data", _dir), "is a folder; give a .safetensors model file");
        AssertUsageError(Colorize("--global-from", PathOf("models"), input), $"--global-from {PathOf("models")}: is a folder; give an image file");
        File.WriteAllBytes(PathOf("empty.safetensors"), []);
        AssertUsageError(Cli.Run("colorize", "--model", PathOf("empty.safetensors"), input), "empty.safetensors: the file is empty");

        File.WriteAllBytes(PathOf("empty.jpg"), []);
        var r = Colorize(PathOf("empty.jpg"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("empty.jpg: the file is empty", r.Stderr);
    }

    [Fact]
    public void Output_is_a_folder_when_it_ends_with_a_separator_or_exists_else_a_file()
    {
        string one = Fixtures.SaveColourful(PathOf("one.png"), 16, 12, 6);
        string two = Fixtures.SaveColourful(PathOf("two.png"), 16, 12, 7);

        var r = Colorize(one, "-o", PathOf("new") + "/");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(PathOf("new", "one-color.png")));

        Directory.CreateDirectory(PathOf("existing"));
        r = Colorize(one, "-o", PathOf("existing"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(PathOf("existing", "one-color.png")));

        r = Colorize(one, "-o", PathOf("named.jpg"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(PathOf("named.jpg")));

        // Not an image format: refused, and no folder of that name is made.
        AssertUsageError(Colorize(one, "-o", PathOf("col.txt")), "'.txt' is not an image format Chroma writes");
        Assert.False(Directory.Exists(PathOf("col.txt")));
        AssertUsageError(Colorize(one, "-o", PathOf("noext")), "no extension");
        Assert.False(Directory.Exists(PathOf("noext")));

        // Several inputs to one (even existing) file: refused before anything is done.
        File.WriteAllText(PathOf("existing.txt"), "keep me");
        AssertUsageError(Colorize(one, two, "-o", PathOf("existing.txt")), "names one file, but there are 2 inputs");
        Assert.Equal("keep me", File.ReadAllText(PathOf("existing.txt")));
        Assert.False(File.Exists(PathOf("two-color.png")));
    }

    [Fact]
    public void Output_folder_mirrors_the_input_sub_folders()
    {
        Fixtures.SaveColourful(PathOf("album", "1950", "x.jpg"), 16, 12, 8);
        Fixtures.SaveColourful(PathOf("album", "1960", "x.jpg"), 16, 12, 9);
        Fixtures.SaveColourful(PathOf("album", "top.png"), 16, 12, 10);
        var r = Colorize(PathOf("album"), "-o", PathOf("out") + "/");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(PathOf("out", "1950", "x-color.jpg")));
        Assert.True(File.Exists(PathOf("out", "1960", "x-color.jpg")));
        Assert.True(File.Exists(PathOf("out", "top-color.png")));
        Assert.False(File.Exists(PathOf("out", "x-color-2.jpg")));
    }

    [Fact]
    public void Info_json_is_one_object_on_stdout()
    {
        var r = Cli.Run("info", _model, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        Assert.Equal("cpu", doc.RootElement.GetProperty("devices")[0].GetProperty("name").GetString());
        var model = doc.RootElement.GetProperty("model");
        Assert.Equal(_model, model.GetProperty("path").GetString());
        Assert.True(model.GetProperty("parameters").GetInt64() > 0);
        Assert.Equal("chroma-colorizer", model.GetProperty("metadata").GetProperty("format").GetString());
        AssertUsageError(Cli.Run("info", _dir), "is a folder; give a .safetensors model file");
    }

    /// <summary>A 16-bit gray TIFF (a scanner's usual output) of <paramref name="pages"/> pages, written with LibTiff.</summary>
    static void WriteGrayTiff16(string path, int width, int height, int pages)
    {
        using var tif = BitMiracle.LibTiff.Classic.Tiff.Open(path, "w")!;
        for (int p = 0; p < pages; p++)
        {
            tif.SetField(BitMiracle.LibTiff.Classic.TiffTag.IMAGEWIDTH, width);
            tif.SetField(BitMiracle.LibTiff.Classic.TiffTag.IMAGELENGTH, height);
            tif.SetField(BitMiracle.LibTiff.Classic.TiffTag.BITSPERSAMPLE, 16);
            tif.SetField(BitMiracle.LibTiff.Classic.TiffTag.SAMPLESPERPIXEL, 1);
            tif.SetField(BitMiracle.LibTiff.Classic.TiffTag.PHOTOMETRIC, BitMiracle.LibTiff.Classic.Photometric.MINISBLACK);
            tif.SetField(BitMiracle.LibTiff.Classic.TiffTag.PLANARCONFIG, BitMiracle.LibTiff.Classic.PlanarConfig.CONTIG);
            tif.SetField(BitMiracle.LibTiff.Classic.TiffTag.ROWSPERSTRIP, height);
            if (pages > 1) tif.SetField(BitMiracle.LibTiff.Classic.TiffTag.SUBFILETYPE, BitMiracle.LibTiff.Classic.FileType.PAGE);
            var row = new byte[2 * width];
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    ushort v = (ushort)(8000 + 50000.0 * x / width * y / height + 3000 * Math.Sin(x * 0.4));
                    row[2 * x] = (byte)v; row[2 * x + 1] = (byte)(v >> 8);
                }
                tif.WriteScanline(row, y);
            }
            tif.WriteDirectory();
        }
    }

    [Fact]
    public void Tiff_scans_are_colorized_to_tiff_or_png_and_a_multi_page_file_gets_a_note()
    {
        string scan = PathOf("scans", "scan.tif");
        Directory.CreateDirectory(PathOf("scans"));
        WriteGrayTiff16(scan, 41, 29, pages: 1);
        var r = Colorize(scan);
        Assert.True(r.ExitCode == 0, r.ToString());
        var colour = Chroma.Model.ImageFile.Load(PathOf("scans", "scan-color.tif"));
        Assert.Equal((41, 29), (colour.Width, colour.Height));
        Assert.Equal("", r.Stderr);

        r = Colorize(scan, "-o", PathOf("scan.png"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal((41, 29), (Chroma.Model.ImageFile.Load(PathOf("scan.png")).Width, 29));

        // Folders pick up .tif and .tiff files.
        WriteGrayTiff16(PathOf("scans", "album.tiff"), 23, 17, pages: 3);
        r = Colorize(PathOf("scans"), "-o", PathOf("out") + "/");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(PathOf("out", "scan-color.tif")));
        Assert.True(File.Exists(PathOf("out", "album-color.tiff")));
        Assert.Contains("album.tiff: 3 pages, only the first is colorized", r.Stderr);
    }
}
