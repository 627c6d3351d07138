using System.Globalization;
using ScottPlot;

namespace Chroma.Training;

/// <summary>
/// metrics.csv (one row per validation, appended and flushed) and curves.png (loss and PSNR
/// curves, redrawn at each validation).
/// </summary>
public sealed class MetricsLog
{
    public sealed record Row(long Step, double Epoch, double TrainLoss, double TrainColorLoss, double TrainClassLoss,
        double ValLoss, double ValColorLoss, double ValClassLoss, double ValPsnr, double ValTop1, double ImagesPerSecond, double ElapsedSeconds);

    const string Header = "step,epoch,train_loss,train_color_loss,train_class_loss,val_loss,val_color_loss,val_class_loss,val_psnr,val_top1,images_per_s,elapsed_s";
    readonly string _csv, _plot;
    readonly List<Row> _rows = [];

    /// <summary>Opens (or creates) the CSV; rows past <paramref name="truncateAfterStep"/> (from an interrupted run being resumed) are dropped.</summary>
    public MetricsLog(string csvPath, string plotPath, long truncateAfterStep)
    {
        _csv = csvPath; _plot = plotPath;
        if (File.Exists(csvPath))
        {
            foreach (var line in File.ReadLines(csvPath).Skip(1))
                if (Parse(line) is { } row && row.Step <= truncateAfterStep) _rows.Add(row);
        }
        Rewrite();
    }

    public IReadOnlyList<Row> Rows => _rows;

    public void Append(Row row)
    {
        _rows.Add(row);
        File.AppendAllText(_csv, Format(row) + "\n");
        Plot();
    }

    void Rewrite()
    {
        var tmp = _csv + ".tmp";
        File.WriteAllLines(tmp, new[] { Header }.Concat(_rows.Select(Format)));
        File.Move(tmp, _csv, overwrite: true);
    }

    static string Format(Row r) => string.Join(",",
        new object[] { r.Step, r.Epoch, r.TrainLoss, r.TrainColorLoss, r.TrainClassLoss, r.ValLoss, r.ValColorLoss, r.ValClassLoss, r.ValPsnr, r.ValTop1, r.ImagesPerSecond, r.ElapsedSeconds }
            .Select(v => v is double d ? d.ToString("G6", CultureInfo.InvariantCulture) : Convert.ToString(v, CultureInfo.InvariantCulture)));

    static Row? Parse(string line)
    {
        var f = line.Split(',');
        if (f.Length != 12) return null;
        var d = f.Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN).ToArray();
        return new Row((long)d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11]);
    }

    /// <summary>Draws training and validation loss (left) and validation PSNR (right axis).</summary>
    void Plot()
    {
        if (_rows.Count == 0) return;
        var plot = new Plot();
        double[] steps = _rows.Select(r => (double)r.Step).ToArray();
        var train = plot.Add.Scatter(steps, _rows.Select(r => r.TrainLoss).ToArray());
        train.LegendText = "train loss";
        var val = plot.Add.Scatter(steps, _rows.Select(r => r.ValLoss).ToArray());
        val.LegendText = "validation loss";
        var psnr = plot.Add.Scatter(steps, _rows.Select(r => r.ValPsnr).ToArray());
        psnr.LegendText = "validation PSNR (dB)";
        psnr.Axes.YAxis = plot.Axes.Right;
        plot.Axes.Right.Label.Text = "PSNR (dB)";
        plot.Axes.Left.Label.Text = "loss";
        plot.Axes.Bottom.Label.Text = "step";
        plot.Title("Chroma training");
        plot.ShowLegend();
        var tmp = _plot + ".tmp.png";
        plot.SavePng(tmp, 900, 500);
        File.Move(tmp, _plot, overwrite: true);
    }
}
