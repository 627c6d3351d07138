using Chroma.Cli.Commands;
using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Cli;

/// <summary>The shipped default model (models/chroma-default.safetensors, built into Chroma.Model.dll).</summary>
public sealed class DefaultModelTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-default-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Is_built_in_with_its_metadata_and_equals_the_repository_file()
    {
        Assert.Null(Environment.GetEnvironmentVariable(ColorizeCommand.DefaultModelVariable));
        using var stream = DefaultModel.Open();
        Assert.True(stream.Length <= 10_000_000, "the default model must stay within 10 MB");
        using var network = ModelFile.Load(stream, DefaultModel.FileName, CpuDevice.Instance, out var metadata);
        Assert.Equal(0.25, network.Config.Width);
        var classes = Evaluation.ClassNames(metadata);
        Assert.Equal(network.Config.Classes, classes.Count);
        foreach (var key in new[] { "step", "date", "train_data", "width", "trained_by", ModelFile.SaturationKey })
            Assert.True(metadata.ContainsKey(key), $"metadata lacks '{key}'");
        Assert.InRange(ModelFile.SaturationFromMetadata(metadata, DefaultModel.FileName), 1f, 2f);

        // The embedded bytes are the repository's models/chroma-default.safetensors (no stale copy).
        string file = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "models", DefaultModel.FileName);
        if (File.Exists(file))
        {
            stream.Position = 0;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            Assert.Equal(File.ReadAllBytes(file), copy.ToArray());
        }
    }

    [Fact]
    public void Colorize_without_model_uses_it_and_adds_colour()
    {
        // A gray gradient with structure: the model must add chrominance and keep L*.
        const int w = 96, h = 64;
        var rgb = new float[3 * w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                float v = 0.15f + 0.7f * (0.5f * x / w + 0.5f * y / h) + 0.1f * MathF.Sin(x * 0.3f);
                for (int c = 0; c < 3; c++) rgb[c * w * h + y * w + x] = v;
            }
        string input = Path.Combine(_dir, "gray.png");
        ImageFile.Save(input, rgb, w, h);

        var r = Cli.Run("colorize", input, "--device", "cpu");
        Assert.True(r.ExitCode == 0, r.ToString());
        var output = ImageFile.Load(Path.Combine(_dir, "gray-color.png"));
        Assert.Equal((w, h), (output.Width, output.Height));
        int n = w * h;
        double chroma = 0, lDiff = 0;
        for (int i = 0; i < n; i++)
        {
            var lab = LabColor.FromRgb(output.Rgb[i], output.Rgb[n + i], output.Rgb[2 * n + i]);
            chroma += Math.Sqrt(lab.A * lab.A + lab.B * lab.B);
            lDiff += Math.Abs(lab.L - LabColor.FromRgb(rgb[i], rgb[i], rgb[i]).L);
        }
        Assert.True(lDiff / n < 1, $"L* moved by {lDiff / n:F2} on average");
        Assert.True(chroma / n > 2, $"mean chroma {chroma / n:F2}: the default model added no colour");
    }
}
