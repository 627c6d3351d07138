using System.CommandLine;
using Chroma.Model;
using Chroma.Training;
using Chroma.Training.Data;
using System.Text.Json;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>`chroma eval`: PSNR, a*b* RMSE, colourfulness and class accuracy against the gray baseline.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model .safetensors file (default: the shipped model)." };
        var data = new Option<string>("--data") { Description = "Images: a folder (sub-folder per class) or a list file.", Required = true };
        var report = new Option<string?>("--report") { Description = "Folder for an HTML report (index.html) with every image as gray | Chroma | original; an existing folder is replaced only with --overwrite." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing --report folder's files." };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda, opencl, cuda:N or opencl:N.", DefaultValueFactory = _ => "auto" };
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N images." };
        var sample = new Option<int?>("--sample") { Description = "Evaluate N images drawn at random (without replacement; see --seed)." };
        var seed = new Option<int>("--seed") { Description = "Random seed of --sample.", DefaultValueFactory = _ => 1 };
        var maxPixels = new Option<int>("--max-pixels") { Description = "Largest working size of the local path, in pixels (as for colorize).", DefaultValueFactory = _ => Colorizer.DefaultMaxWorkingPixels };
        var saturation = ColorizeCommand.SaturationOption();
        var noMirror = ColorizeCommand.NoMirrorOption();
        var json = new Option<bool>("--json") { Description = "Print the results as one JSON object on stdout, and nothing else there." };
        var cmd = new Command("eval", "Evaluate a model on colour photos (colorized from their luminance).") { model, data, report, overwrite, device, limit, sample, seed, maxPixels, saturation, noMirror, json };
        cmd.SetAction(r =>
        {
            ColorizeCommand.CheckOptions(r.GetValue(maxPixels), r.GetValue(saturation));
            if (r.GetValue(limit) is < 1) throw new CliException("--limit must be at least 1.");
            if (r.GetValue(sample) is < 1) throw new CliException("--sample must be at least 1.");
            string? reportDir = r.GetValue(report);
            if (reportDir is not null)
            {
                if (File.Exists(reportDir)) throw new CliException($"--report {reportDir}: is a file; give a folder.");
                if (Directory.Exists(reportDir) && Directory.EnumerateFileSystemEntries(reportDir).Any() && !r.GetValue(overwrite))
                    throw new CliException($"--report {reportDir}: already exists (pass --overwrite to replace its files, or choose another folder).");
            }
            var (colorizer, path) = ColorizeCommand.OpenColorizer(r.GetValue(model), () => CliRunner.OpenDevice(r.GetValue(device)), r.GetValue(saturation), r.GetValue(maxPixels));
            using var owned = colorizer;
            if (r.GetValue(noMirror)) colorizer.AverageMirrored = false;
            var classes = Evaluation.ClassNames(colorizer.Metadata);
            var dataset = Dataset.Open(r.GetValue(data)!, classes.Count > 0 ? classes : null);
            if (r.GetValue(limit) is int n && n < dataset.Count) dataset = dataset.With(dataset.Samples.Take(n).ToList());
            if (r.GetValue(sample) is int k)
            {
                var rng = new Random(r.GetValue(seed));
                var shuffled = dataset.Samples.ToArray();
                rng.Shuffle(shuffled);
                if (k < shuffled.Length) dataset = dataset.With(shuffled.Take(k).ToList());
            }
            var eval = new Evaluation();
            Evaluation.Summary s = null!;
            CliConsole.Error.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask($"evaluating {dataset.Count} images", maxValue: dataset.Count);
                    s = eval.Run(colorizer, dataset, reportDir, (done, _) => task.Value = done, modelName: path);
                });
            foreach (var w in eval.Warnings) CliConsole.Error.MarkupLineInterpolated($"[yellow]skipped:[/] {w}");
            if (r.GetValue(json))
            {
                var result = new
                {
                    model = path, data = dataset.Source, images = s.Images, skipped = s.Skipped, saturation = colorizer.Saturation, average_mirrored = colorizer.AverageMirrored,
                    psnr = s.Psnr, gray_psnr = s.GrayPsnr, ab_rmse = s.AbRmse, gray_ab_rmse = s.GrayAbRmse,
                    colourfulness = s.Colourfulness, original_colourfulness = s.OriginalColourfulness, top1 = s.Top1, top5 = s.Top5,
                    report = reportDir is null ? null : Path.Combine(reportDir, "index.html"),
                };
                Console.Out.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
                return CliConventions.Done;
            }
            var t = new Table().AddColumns("", "Chroma", "gray baseline", "original");
            t.AddRow("PSNR (dB)", $"{s.Psnr:F2}", $"{s.GrayPsnr:F2}", "");
            t.AddRow("a*b* RMSE", $"{s.AbRmse:F2}", $"{s.GrayAbRmse:F2}", "");
            t.AddRow("colourfulness", $"{s.Colourfulness:F1}", $"{s.GrayColourfulness:F1}", $"{s.OriginalColourfulness:F1}");
            if (s.Top1 is { } t1) t.AddRow(s.Top5 is null ? "top-1" : "top-1 / top-5", s.Top5 is { } t5 ? $"{t1:P1} / {t5:P1}" : $"{t1:P1}", "", "");
            CliConsole.Out.MarkupLineInterpolated($"model {path}: {s.Images} images from {dataset.Source}, saturation {colorizer.Saturation.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)}");
            CliConsole.Out.Write(t);
            if (reportDir is not null) CliConsole.Out.MarkupLineInterpolated($"report: {Path.Combine(reportDir, "index.html")}");
            return CliConventions.Done;
        });
        return cmd;
    }
}
