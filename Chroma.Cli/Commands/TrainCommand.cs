using System.CommandLine;
using System.Globalization;
using Chroma.Training;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>`chroma train`: the paper's training (joint loss, ADADELTA) with checkpoints and curves.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = "Training images: a folder with one sub-folder per class, or a list file ('relative/path label' per line). Required, except with --resume (the run's own)." };
        var val = new Option<string?>("--val") { Description = "Validation images (same layouts). Default: hold out --val-fraction of --data." };
        var valFraction = new Option<double>("--val-fraction") { Description = "Fraction of --data held out for validation when --val is not given.", DefaultValueFactory = _ => 0.05 };
        var width = new Option<double>("--width") { Description = "Channel width multiplier (1.0 = the paper's model).", DefaultValueFactory = _ => 0.25 };
        var batch = new Option<int>("--batch") { Description = "Images per step (the paper: 128).", DefaultValueFactory = _ => 16 };
        var steps = new Option<long?>("--steps") { Description = "Number of optimizer steps." };
        var epochs = new Option<double?>("--epochs") { Description = "Number of passes over the training images (when --steps is not given; default 1)." };
        var alpha = new Option<double>("--alpha") { Description = "Weight of the classification loss (the paper: 1/300).", DefaultValueFactory = _ => 1.0 / 300 };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda, opencl, cuda:N or opencl:N.", DefaultValueFactory = _ => "auto" };
        var output = new Option<string>("--output", "-o", "--out") { Description = "Run folder: checkpoints, metrics.csv, curves.png, model.safetensors.", DefaultValueFactory = _ => "runs/train" };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in -o from its latest checkpoint with its own settings: --steps or --epochs may extend it, --lr and --device may change; any other setting that differs is refused." };
        var init = new Option<string?>("--init") { Description = "Start from this model's weights (fine-tuning): tensors whose names and shapes match are taken, the rest initialized as usual; a report says which." };
        var lr = new Option<double?>("--lr") { Description = "ADADELTA's step multiplier (default 1, the plain method as in the paper); with --resume it may be lowered to anneal a run." };
        var seed = new Option<int>("--seed") { Description = "Seed of initialization, data order and augmentation.", DefaultValueFactory = _ => 0 };
        var ckEvery = new Option<int>("--checkpoint-every") { Description = "Steps between checkpoints.", DefaultValueFactory = _ => 500 };
        var keep = new Option<int>("--keep") { Description = "Checkpoints kept (the newest).", DefaultValueFactory = _ => 3 };
        var valEvery = new Option<int>("--validate-every") { Description = "Steps between validations (metrics row, curve).", DefaultValueFactory = _ => 200 };
        var logEvery = new Option<int>("--log-every") { Description = "Steps between reads of the loss from the device (the progress line).", DefaultValueFactory = _ => 10 };
        var valMax = new Option<int>("--val-images") { Description = "Validation images used (at most).", DefaultValueFactory = _ => 256 };
        var resizeTo = new Option<int>("--resize") { Description = "Images are first resized to this square size.", DefaultValueFactory = _ => 256 };
        var crop = new Option<int>("--crop") { Description = "Random crop size (the network's training input).", DefaultValueFactory = _ => 224 };
        var noClass = new Option<bool>("--no-classification") { Description = "Train the colour loss only, even if the data has classes." };
        var cmd = new Command("train", "Train a colorization model.")
            { data, val, valFraction, width, batch, steps, epochs, alpha, lr, device, output, resume, init, seed, ckEvery, keep, valEvery, logEvery, valMax, resizeTo, crop, noClass };
        cmd.SetAction(r =>
        {
            if (r.GetValue(data) is null && !r.GetValue(resume)) throw new CliException("chroma train: --data is required (except with --resume, which keeps the run's own)");
            var options = new TrainOptions
            {
                Data = r.GetValue(data) ?? "", Validation = r.GetValue(val), ValidationFraction = r.GetValue(valFraction),
                Width = r.GetValue(width), BatchSize = r.GetValue(batch), Steps = r.GetValue(steps), Epochs = r.GetValue(epochs),
                Alpha = (float)r.GetValue(alpha), LearningRate = (float?)r.GetValue(lr), RunDirectory = r.GetValue(output)!, Resume = r.GetValue(resume), Init = r.GetValue(init), Seed = r.GetValue(seed),
                CheckpointEvery = r.GetValue(ckEvery), KeepCheckpoints = r.GetValue(keep), ValidateEvery = r.GetValue(valEvery), LogEvery = r.GetValue(logEvery),
                MaxValidationImages = r.GetValue(valMax), ResizeTo = r.GetValue(resizeTo), CropSize = r.GetValue(crop),
                Classification = !r.GetValue(noClass),
            };
            if (options.Resume && File.Exists(Path.Combine(options.RunDirectory, "run.json")))
            {
                // The run's settings win on --resume; a different one given explicitly would be silently ignored, so it is refused.
                var saved = Trainer.ReadRunFile(options.RunDirectory);
                (Option Option, Func<TrainOptions, object?> Value)[] settings =
                [
                    (data, o => o.Data), (val, o => o.Validation), (valFraction, o => o.ValidationFraction), (width, o => o.Width), (batch, o => o.BatchSize),
                    (alpha, o => o.Alpha), (init, o => o.Init), (seed, o => o.Seed), (ckEvery, o => o.CheckpointEvery), (keep, o => o.KeepCheckpoints),
                    (valEvery, o => o.ValidateEvery), (logEvery, o => o.LogEvery), (valMax, o => o.MaxValidationImages), (resizeTo, o => o.ResizeTo),
                    (crop, o => o.CropSize), (noClass, o => o.Classification),
                ];
                var changed = settings.Where(x => r.GetResult(x.Option) is { Implicit: false } && !Equals(x.Value(options), x.Value(saved)))
                    .Select(x => $"{x.Option.Name} (the run has {Format(x.Value(saved))}, given {Format(x.Value(options))})").ToList();
                if (changed.Count > 0)
                    throw new CliException($"--resume: {options.RunDirectory} was started with other settings: {string.Join("; ", changed)}. Leave them out to continue it, or start a new run in another -o.");
            }
            using var dev = CliRunner.OpenDevice(r.GetValue(device));
            AnsiConsole.MarkupLineInterpolated($"device: {dev.Name} ({dev.SelectionReason})");
            using var trainer = new Trainer(options, dev, msg => AnsiConsole.MarkupLineInterpolated($"[grey]{msg}[/]"));
            AnsiConsole.MarkupLineInterpolated($"model: width {trainer.Network.Config.Width}, {trainer.Network.Config.Classes} classes, {trainer.Network.Parameters.ParameterCount / 1e6:F2} M parameters; {trainer.TotalSteps} steps of {trainer.Options.BatchSize}");

            using var stop = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; stop.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                CliConsole.Error.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("training", maxValue: trainer.TotalSteps);
                        task.Value = trainer.Step;
                        float? lastLoss = null;
                        trainer.StepDone += (step, terms, ips) =>
                        {
                            task.Value = step;
                            if (terms is { } t) lastLoss = t.Total;
                            // The loss is read back only every --log-every steps (a read is a device sync); until the first one there is none to show.
                            var loss = lastLoss is { } l ? string.Create(CultureInfo.InvariantCulture, $" loss {l:F5}") : "";
                            task.Description = string.Create(CultureInfo.InvariantCulture, $"step {step}/{trainer.TotalSteps}{loss} {ips:F1} img/s");
                        };
                        trainer.Validated += row => AnsiConsole.MarkupLineInterpolated(
                            $"step {row.Step}: train loss {row.TrainLoss:F5}, val loss {row.ValLoss:F5}, val PSNR {row.ValPsnr:F2} dB{(double.IsNaN(row.ValTop1) ? "" : $", top-1 {row.ValTop1:P1}")}");
                        trainer.Run(stop.Token);
                    });
            }
            catch (TrainingDivergedException e) { throw new CliException(e.Message, CliConventions.SomeFailed); }
            finally { Console.CancelKeyPress -= onCancel; }
            AnsiConsole.MarkupLine(Markup.Escape(stop.IsCancellationRequested
                ? $"stopped at step {trainer.Step}; continue with --resume --out {options.RunDirectory}"
                : $"done: {Path.Combine(options.RunDirectory, "model.safetensors")}, curves in {Path.Combine(options.RunDirectory, "curves.png")}"));
            return stop.IsCancellationRequested ? CliConventions.Interrupted : CliConventions.Done;
        });
        return cmd;
    }

    static string Format(object? value) => value switch
    {
        null => "none",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
