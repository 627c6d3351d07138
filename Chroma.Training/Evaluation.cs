using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Chroma.Model;
using Chroma.Training.Data;

namespace Chroma.Training;

/// <summary>
/// `chroma eval`: colorizes every image of a dataset from its luminance and compares with the
/// original: PSNR (sRGB), a*b* RMSE and colourfulness, beside the gray baseline (a* = b* = 0);
/// top-1 / top-5 when the data and the model have classes. Optionally an HTML report.
/// </summary>
public sealed class Evaluation
{
    public sealed record ImageResult(string Path, double Psnr, double GrayPsnr, double AbRmse, double GrayAbRmse,
        double Colourfulness, double OriginalColourfulness, int Label, int Rank);

    public sealed record Summary(int Images, double Psnr, double GrayPsnr, double AbRmse, double GrayAbRmse,
        double Colourfulness, double OriginalColourfulness, double GrayColourfulness, double? Top1, double? Top5, int Skipped);

    public List<ImageResult> Results { get; } = [];
    public List<string> Warnings { get; } = [];

    /// <summary>Class names stored in a model's metadata by `chroma train` (empty if none).</summary>
    public static List<string> ClassNames(IReadOnlyDictionary<string, string> metadata) =>
        metadata.TryGetValue("classes_names", out var json) ? JsonSerializer.Deserialize<List<string>>(json) ?? [] : [];

    /// <summary>
    /// Evaluates every image; <paramref name="report"/> (a folder) receives index.html and thumbnails,
    /// headed by <paramref name="modelName"/> (the model file evaluated).
    /// </summary>
    public Summary Run(Colorizer colorizer, Dataset data, string? report, Action<int, int>? progress = null, string? modelName = null)
    {
        string? imageDir = null;
        if (report is not null) { imageDir = Path.Combine(report, "images"); Directory.CreateDirectory(imageDir); }
        int done = 0;
        foreach (var sample in data.Samples)
        {
            try { Results.Add(EvaluateOne(colorizer, sample, imageDir, Results.Count)); }
            catch (Exception e) when (e is ImageFormatException or IOException)
            {
                Warnings.Add(e is ImageFormatException ? e.Message : $"{sample.Path}: {e.Message}");
            }
            progress?.Invoke(++done, data.Count);
        }
        var summary = Summarize(data.HasLabels && colorizer.Network.Config.Classes == data.ClassNames.Count, colorizer.Network.Config.Classes);
        if (report is not null) WriteReport(report, summary, data, colorizer.Saturation, modelName);
        return summary;
    }

    ImageResult EvaluateOne(Colorizer colorizer, Sample sample, string? imageDir, int index)
    {
        var image = ImageFile.Load(sample.Path);
        int h = image.Height, w = image.Width, n = h * w;
        var l = new float[n];
        var ab = new float[2 * n];
        LabColor.RgbToLab(image.Rgb, h, w, l, ab);
        var (predAb, logits) = colorizer.Predict(l, h, w, l, h, w);
        var pred = new float[3 * n];
        LabColor.LabToRgb(l, predAb, h, w, pred);
        var gray = new float[3 * n];
        LabColor.LabToRgb(l, new float[2 * n], h, w, gray);
        // The reference is the original re-rendered from its own Lab, so the gray baseline and the
        // prediction differ from it only in chrominance (sRGB gamut clipping affects all alike).
        var original = new float[3 * n];
        LabColor.LabToRgb(l, ab, h, w, original);
        int rank = sample.Label >= 0 && sample.Label < logits.Length ? Metrics.Rank(logits, sample.Label) : -1;
        var result = new ImageResult(sample.Path, Metrics.Psnr(pred, original), Metrics.Psnr(gray, original),
            Metrics.AbRmse(predAb, ab), Metrics.AbRmse(new float[2 * n], ab),
            Metrics.Colourfulness(pred), Metrics.Colourfulness(original), sample.Label, rank);
        if (imageDir is not null)
        {
            string stem = index.ToString("D5", CultureInfo.InvariantCulture);
            ImageFile.Save(Path.Combine(imageDir, stem + "-gray.jpg"), gray, w, h, overwrite: true);
            ImageFile.Save(Path.Combine(imageDir, stem + "-chroma.jpg"), pred, w, h, overwrite: true);
            ImageFile.Save(Path.Combine(imageDir, stem + "-original.jpg"), image.Rgb, w, h, overwrite: true);
        }
        return result;
    }

    /// <summary>Means over the images; top-5 only when there are more than 5 classes (else it is always 100%).</summary>
    Summary Summarize(bool classify, int classes)
    {
        if (Results.Count == 0) throw new InvalidDataException("no image could be evaluated.");
        double Mean(Func<ImageResult, double> f) => Results.Average(f);
        double? top1 = null, top5 = null;
        var labelled = Results.Where(r => r.Rank >= 0).ToList();
        if (classify && labelled.Count > 0)
        {
            top1 = labelled.Count(r => r.Rank == 0) / (double)labelled.Count;
            if (classes > 5) top5 = labelled.Count(r => r.Rank < 5) / (double)labelled.Count;
        }
        // PSNR is averaged per image (as the colorization literature reports it); identical images are capped at 99 dB.
        double Capped(double v) => Math.Min(v, 99);
        return new Summary(Results.Count, Mean(r => Capped(r.Psnr)), Mean(r => Capped(r.GrayPsnr)), Mean(r => r.AbRmse), Mean(r => r.GrayAbRmse),
            Mean(r => r.Colourfulness), Mean(r => r.OriginalColourfulness), 0.0, top1, top5, Warnings.Count);
    }

    void WriteReport(string folder, Summary s, Dataset data, float saturation, string? modelName)
    {
        var inv = CultureInfo.InvariantCulture;
        var html = new StringBuilder();
        html.Append("""
<!doctype html><html><head><meta charset="utf-8"><title>Chroma evaluation</title>
<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}img{height:128px}td.l{text-align:left}</style></head><body>
<h1>Chroma evaluation</h1>
""");
        if (modelName is not null) html.Append(CultureInfo.InvariantCulture, $"<p>Model: {WebUtility.HtmlEncode(modelName)}</p>\n");
        html.Append(CultureInfo.InvariantCulture, $"<p>{s.Images} images from {WebUtility.HtmlEncode(data.Source)}; {s.Skipped} unreadable skipped; saturation {saturation:0.###}.</p>\n<table><tr><th></th><th>Chroma</th><th>gray baseline</th><th>original</th></tr>\n");
        html.Append(inv, $"<tr><td class=l>PSNR (dB)</td><td>{s.Psnr:F2}</td><td>{s.GrayPsnr:F2}</td><td></td></tr>\n");
        html.Append(inv, $"<tr><td class=l>a*b* RMSE</td><td>{s.AbRmse:F2}</td><td>{s.GrayAbRmse:F2}</td><td></td></tr>\n");
        html.Append(inv, $"<tr><td class=l>colourfulness</td><td>{s.Colourfulness:F1}</td><td>{s.GrayColourfulness:F1}</td><td>{s.OriginalColourfulness:F1}</td></tr>\n");
        if (s.Top1 is { } t1)
        {
            if (s.Top5 is { } t5) html.Append(inv, $"<tr><td class=l>top-1 / top-5</td><td>{t1:P1} / {t5:P1}</td><td></td><td></td></tr>\n");
            else html.Append(inv, $"<tr><td class=l>top-1</td><td>{t1:P1}</td><td></td><td></td></tr>\n");
        }
        html.Append("</table>\n<p>Click a column header to sort.</p>\n<table id=r><thead><tr><th>#</th><th>gray input</th><th>Chroma</th><th>original</th><th>PSNR</th><th>gray PSNR</th><th>ab RMSE</th><th>colourfulness</th><th class=l>file</th></tr></thead><tbody>\n");
        for (int i = 0; i < Results.Count; i++)
        {
            var r = Results[i];
            string stem = "images/" + i.ToString("D5", inv);
            html.Append(inv, $"<tr><td>{i}</td><td><img loading=lazy src=\"{stem}-gray.jpg\"></td><td><img loading=lazy src=\"{stem}-chroma.jpg\"></td><td><img loading=lazy src=\"{stem}-original.jpg\"></td>" +
                $"<td>{r.Psnr:F2}</td><td>{r.GrayPsnr:F2}</td><td>{r.AbRmse:F2}</td><td>{r.Colourfulness:F1}</td><td class=l>{WebUtility.HtmlEncode(Path.GetFileName(r.Path))}</td></tr>\n");
        }
        html.Append("""
</tbody></table>
<script>
document.querySelectorAll('#r th').forEach((th, col) => th.addEventListener('click', () => {
  const body = document.querySelector('#r tbody');
  const rows = [...body.rows];
  const asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
  const key = r => { const t = r.cells[col].textContent; const v = parseFloat(t); return isNaN(v) ? t : v; };
  rows.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
  rows.forEach(r => body.appendChild(r));
}));
</script></body></html>
""");
        File.WriteAllText(Path.Combine(folder, "index.html"), html.ToString());
    }
}
