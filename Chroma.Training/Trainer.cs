using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Chroma.Kernels;
using Chroma.Model;
using Chroma.Training.Data;

namespace Chroma.Training;

/// <summary>A loss that is NaN or infinite: training stops, the last checkpoint is left as it was.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>
/// The paper's training loop on Chroma's engine: joint loss, ADADELTA over the one parameter
/// buffer, batch norm in training mode; validation, metrics CSV and curves, atomic checkpoints
/// (the last K kept), exact resume, clean stop on cancellation.
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly TrainOptions _o;
    readonly Device _device;
    readonly Dataset _train, _val;
    readonly ColorizationNetwork _network;
    readonly TrainingStep _step;
    readonly MetricsLog _metrics;
    readonly Stopwatch _clock = new();

    /// <summary>Step reached (number of optimizer updates done).</summary>
    public long Step { get; private set; }
    public long TotalSteps { get; }
    public Dataset TrainData => _train;
    public Dataset ValidationData => _val;
    public ColorizationNetwork Network => _network;
    public TrainOptions Options => _o;

    /// <summary>
    /// Called after each step with its throughput, and with the mean loss terms of the steps since the
    /// last read on the steps where the loss is read back (every <see cref="TrainOptions.LogEvery"/>
    /// steps, before a validation or checkpoint, and at the end); null on the others.
    /// </summary>
    public event Action<long, JointLoss.Terms?, double>? StepDone;
    /// <summary>Called after each validation with its row of metrics.</summary>
    public event Action<MetricsLog.Row>? Validated;
    /// <summary>Messages for the user (skipped images, checkpoints written).</summary>
    public event Action<string>? Info;

    /// <summary>
    /// Opens a run. A start that fails (bad data, a bad --init, an unusable setting) leaves nothing
    /// behind: a run folder this constructor created is removed again.
    /// </summary>
    public Trainer(TrainOptions options, Device device, Action<string>? info = null)
    {
        _device = device;
        bool created = !Directory.Exists(options.RunDirectory);
        try
        {
            if (info is not null) Info += info;
            Directory.CreateDirectory(options.RunDirectory);
            string runFile = Path.Combine(options.RunDirectory, "run.json");
            Checkpoint.Loaded? resumeFrom = null;
            bool lengthChanged = false;
            if (options.Resume)
            {
                var saved = ReadRunFile(options.RunDirectory);
                // The run's settings win; only the length may be changed (--steps, or else --epochs), and
                // a new length is written back to run.json so that a later plain --resume keeps it.
                var resumed = options.Steps is not null ? saved with { Steps = options.Steps, Epochs = null }
                    : options.Epochs is not null ? saved with { Steps = null, Epochs = options.Epochs }
                    : saved;
                // The learning rate may change too (annealing a run); also written back.
                if (options.LearningRate is not null) resumed = resumed with { LearningRate = options.LearningRate };
                lengthChanged = resumed.Steps != saved.Steps || resumed.Epochs != saved.Epochs || resumed.LearningRate != saved.LearningRate;
                options = resumed with { Resume = true, RunDirectory = options.RunDirectory };
                string? latest = Checkpoints(options.RunDirectory).LastOrDefault();
                if (latest is null) throw new FileNotFoundException($"{options.RunDirectory}: no checkpoint to resume from.");
                resumeFrom = Checkpoint.Load(latest);
                RemoveInterruptedWrites(options.RunDirectory);
            }
            else if (File.Exists(runFile))
                throw new IOException($"{options.RunDirectory} already holds a run; pass --resume to continue it or choose another -o.");
            _o = options;
            Validate(_o);

            var all = Dataset.Open(_o.Data);
            (_train, _val) = _o.Validation is null ? all.Split(_o.ValidationFraction, _o.Seed) : (all, Dataset.Open(_o.Validation, all.ClassNames));
            _train = Filter(_train, "training");
            _val = Filter(_val, "validation");
            if (_val.Count > _o.MaxValidationImages) _val = _val.With(_val.Samples.Take(_o.MaxValidationImages).ToList());

            TotalSteps = _o.Steps ?? (long)Math.Ceiling((_o.Epochs ?? 1.0) * _train.Count / _o.BatchSize);
            // A shorter run than the one reached would neither train nor export a model.
            if (resumeFrom is not null && resumeFrom.Step > TotalSteps)
                throw new ArgumentException($"{_o.RunDirectory} is already at step {resumeFrom.Step}; the run's length of {TotalSteps} steps cannot continue it (give --steps {resumeFrom.Step} or more).");

            int classes = _train.HasLabels ? _train.ClassNames.Count : 1;
            var config = new ColorizerConfig(_o.Width, classes, _o.FusionKernel, _o.CropSize);
            _network = new ColorizationNetwork(config, device, _o.Seed);
            _step = new TrainingStep(_network, _o.BatchSize, _o.Classification && _train.HasLabels, _o.Alpha, _o.Rho, _o.Eps) { LearningRate = _o.LearningRate ?? 1f };

            if (resumeFrom is null && _o.Init is not null)
            {
                // Only a new run starts from --init; a resumed one continues from its checkpoint.
                ModelFile.InitReport report;
                try { report = ModelFile.InitializeFrom(_network, _o.Init); }
                catch { _step.Dispose(); _network.Dispose(); throw; }
                foreach (var line in report.Lines(_o.Init, _network.Parameters.Entries.Count)) Info?.Invoke(line);
            }
            // Written once the run can start (a bad --init leaves no run.json behind to block a retry).
            if (resumeFrom is null || lengthChanged) WriteRunFile(runFile, _o);
            if (resumeFrom is not null)
            {
                Checkpoint.Restore(resumeFrom, _network, _step.SquareAverage, _step.AccumulatedDelta);
                Step = resumeFrom.Step;
                Info?.Invoke($"resumed from {resumeFrom.Path} at step {Step}");
            }
            _metrics = new MetricsLog(Path.Combine(_o.RunDirectory, "metrics.csv"), Path.Combine(_o.RunDirectory, "curves.png"), truncateAfterStep: Step);
        }
        catch
        {
            if (created && Directory.Exists(options.RunDirectory))
            {
                try { Directory.Delete(options.RunDirectory, recursive: true); }
                catch (IOException) { } // the original error is what the user needs to see
                catch (UnauthorizedAccessException) { }
            }
            throw;
        }
    }

    /// <summary>The settings saved in a run folder's run.json (what --resume continues with).</summary>
    public static TrainOptions ReadRunFile(string runDirectory)
    {
        string runFile = Path.Combine(runDirectory, "run.json");
        if (!File.Exists(runFile)) throw new FileNotFoundException($"{runDirectory}: nothing to resume (no run.json).", runFile);
        TrainOptions? saved;
        try { saved = JsonSerializer.Deserialize<TrainOptions>(File.ReadAllText(runFile)); }
        catch (JsonException e) { throw new InvalidDataException($"{runFile}: unreadable ({e.Message}).", e); }
        return saved ?? throw new InvalidDataException($"{runFile}: unreadable.");
    }

    /// <summary>The run's settings, through a temporary file and a rename: a kill never leaves half a run.json.</summary>
    static void WriteRunFile(string runFile, TrainOptions options)
    {
        string temp = runFile + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(options with { Resume = false }, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(temp, runFile, overwrite: true);
    }

    static void Validate(TrainOptions o)
    {
        if (o.BatchSize < 2) throw new ArgumentException($"--batch must be at least 2 (batch norm needs batch statistics), got {o.BatchSize}.");
        if (o.Steps is < 1) throw new ArgumentException($"--steps must be positive, got {o.Steps}.");
        if (o.Epochs is <= 0) throw new ArgumentException($"--epochs must be positive, got {o.Epochs}.");
        if (o.LearningRate is { } lr && !(lr > 0 && lr <= 10)) throw new ArgumentException($"--lr must be above 0 and at most 10, got {lr}.");
        if (o.CheckpointEvery < 1 || o.ValidateEvery < 1 || o.KeepCheckpoints < 1 || o.LogEvery < 1)
            throw new ArgumentException("checkpoint, validation and logging intervals and the number of kept checkpoints must be positive.");
        new Augmentation(o.ResizeTo, o.CropSize).Validate();
        new ColorizerConfig(o.Width, 1, o.FusionKernel, o.CropSize).Validate();
    }

    /// <summary>Drops unreadable and near-gray images, counting them (the paper removed low colour-variance images).</summary>
    Dataset Filter(Dataset data, string what)
    {
        var keep = new bool[data.Count];
        var reasons = new string?[data.Count];
        int gray = 0, bad = 0;
        Parallel.For(0, data.Count, i =>
        {
            try
            {
                var image = ImageFile.Load(data.Samples[i].Path);
                if (Augmentation.ColorVariation(image) < _o.MinColorVariation) Interlocked.Increment(ref gray);
                else keep[i] = true;
            }
            catch (Exception e) when (e is ImageFormatException or IOException or UnauthorizedAccessException)
            {
                Interlocked.Increment(ref bad);
                reasons[i] = e is ImageFormatException ? e.Message : $"{data.Samples[i].Path}: {e.Message}";
            }
        });
        foreach (var r in reasons) if (r is not null) Info?.Invoke($"warning: skipped unreadable image {r}");
        var kept = data.Samples.Where((_, i) => keep[i]).ToList();
        Info?.Invoke($"{what}: {kept.Count} images ({gray} near-gray skipped, {bad} unreadable skipped) from {data.Source}");
        if (kept.Count == 0) throw new InvalidDataException($"{data.Source}: no usable {what} images.");
        return data.With(kept);
    }

    /// <summary>Runs until <see cref="TotalSteps"/> or cancellation; always leaves a checkpoint of the last finished step.</summary>
    public void Run(CancellationToken cancel)
    {
        var aug = new Augmentation(_o.ResizeTo, _o.CropSize);
        using var loader = new BatchLoader(_train, aug, _o.BatchSize, _o.Seed, startBatch: Step, keepRgb: false);
        // Train-loss sums since the last validation, from the loss reads (each a mean over its steps).
        double sumTotal = 0, sumColor = 0, sumClass = 0; int count = 0;
        _clock.Restart();
        long imagesAtStart = Step * _o.BatchSize;
        int warningsShown = 0;

        while (Step < TotalSteps)
        {
            if (cancel.IsCancellationRequested) { ReadLoss(); Save("stopped"); return; }
            var batch = loader.Next();
            _step.Run(batch.Inputs, batch.Targets, batch.Labels);
            Step++;
            bool last = Step == TotalSteps, validate = Step % _o.ValidateEvery == 0 || last, checkpoint = Step % _o.CheckpointEvery == 0 || last;
            JointLoss.Terms? terms = null;
            // The loss is read back only here; a checkpoint or validation always reads it first, so a
            // diverged run never saves the weights it diverged with.
            if (Step % _o.LogEvery == 0 || validate || checkpoint) terms = ReadLoss();
            double imagesPerSecond = (Step * _o.BatchSize - imagesAtStart) / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
            StepDone?.Invoke(Step, terms, imagesPerSecond);
            lock (loader.Warnings)
                for (; warningsShown < loader.Warnings.Count; warningsShown++) Info?.Invoke("warning: " + loader.Warnings[warningsShown]);

            if (validate)
            {
                var row = ValidateNow(count == 0 ? 0 : sumTotal / count, count == 0 ? 0 : sumColor / count, count == 0 ? 0 : sumClass / count, imagesPerSecond);
                _metrics.Append(row);
                Validated?.Invoke(row);
                sumTotal = sumColor = sumClass = 0; count = 0;
            }
            if (checkpoint) Save(last ? "final" : "periodic");
        }
        if (Step == TotalSteps) ExportModel();

        // Reads the mean loss of the steps since the last read; stops the run if it is not finite.
        JointLoss.Terms? ReadLoss()
        {
            int steps = _step.Loss.PendingBatches;
            if (steps == 0) return null;
            var t = _step.ReadLoss();
            if (!float.IsFinite(t.Total))
                throw new TrainingDivergedException($"loss became {t.Total} within steps {Step - steps + 1}-{Step}; stopped without saving, the last checkpoint in {_o.RunDirectory} is intact.");
            sumTotal += (double)t.Total * steps; sumColor += (double)t.Color * steps; sumClass += (double)t.Class * steps; count += steps;
            return t;
        }
    }

    /// <summary>Inference-mode pass over the validation images: joint loss, PSNR of the colorized crops, top-1.</summary>
    MetricsLog.Row ValidateNow(double trainLoss, double trainColor, double trainClass, double imagesPerSecond)
    {
        var aug = new Augmentation(_o.ResizeTo, _o.CropSize, Random: false);
        int s = _o.CropSize, batchSize = Math.Min(_o.BatchSize, _val.Count);
        using var loader = new BatchLoader(_val, aug, batchSize, _o.Seed, shuffle: false, prefetch: 2);
        int batches = (_val.Count + batchSize - 1) / batchSize;
        using var input = _device.Zeros(batchSize, 1, s, s);
        using var target = _device.Zeros(batchSize, 2, s / 2, s / 2);
        bool useLabels = _o.Classification && _val.HasLabels && _train.HasLabels;
        double loss = 0, color = 0, cls = 0, psnr = 0; int correct = 0, seen = 0;
        for (int b = 0; b < batches; b++)
        {
            var batch = loader.Next();
            int valid = Math.Min(batchSize, _val.Count - b * batchSize); // the last batch wraps around: count only new images
            input.CopyFrom(batch.Inputs);
            target.CopyFrom(batch.Targets);
            var (ab, logits) = _network.Forward(input, null, training: false);
            var terms = _step.Loss.Evaluate(ab, logits, target, useLabels ? batch.Labels : null);
            loss += terms.Total * valid; color += terms.Color * valid; cls += terms.Class * valid;
            var abValues = ab.ToArray();
            var logitValues = useLabels ? logits.ToArray() : null;
            for (int i = 0; i < valid; i++)
            {
                psnr += Metrics.PsnrOfPrediction(batch.Inputs.AsSpan(i * s * s, s * s), abValues.AsSpan(i * 2 * (s / 2) * (s / 2), 2 * (s / 2) * (s / 2)),
                    batch.Rgb!.AsSpan(i * 3 * s * s, 3 * s * s), s, s);
                if (logitValues is not null && Metrics.ArgMax(logitValues.AsSpan(i * _network.Config.Classes, _network.Config.Classes)) == batch.Labels![i]) correct++;
            }
            seen += valid;
        }
        return new MetricsLog.Row(Step, Step * (double)_o.BatchSize / _train.Count, trainLoss, trainColor, trainClass,
            loss / seen, color / seen, cls / seen, psnr / seen, useLabels ? (double)correct / seen : double.NaN, imagesPerSecond, _clock.Elapsed.TotalSeconds);
    }

    /// <summary>Writes checkpoint-STEP.safetensors atomically and deletes all but the newest K.</summary>
    void Save(string why)
    {
        string path = Path.Combine(_o.RunDirectory, $"checkpoint-{Step:D8}.safetensors");
        Checkpoint.Save(path, _network, _step.SquareAverage, _step.AccumulatedDelta, RunMetadata());
        foreach (var old in Checkpoints(_o.RunDirectory).SkipLast(_o.KeepCheckpoints)) File.Delete(old);
        Info?.Invoke($"checkpoint ({why}): {path}");
    }

    /// <summary>The trained weights alone, as a model file (model.safetensors in the run folder).</summary>
    public string ExportModel(string? path = null, SafeTensorDType dtype = SafeTensorDType.F32)
    {
        path ??= Path.Combine(_o.RunDirectory, "model.safetensors");
        ModelFile.Save(_network, path, dtype, RunMetadata(), overwrite: true);
        return path;
    }

    Dictionary<string, string> RunMetadata() => new()
    {
        ["step"] = Step.ToString(CultureInfo.InvariantCulture),
        ["seed"] = _o.Seed.ToString(CultureInfo.InvariantCulture),
        ["batch"] = _o.BatchSize.ToString(CultureInfo.InvariantCulture),
        ["alpha"] = _o.Alpha.ToString("R", CultureInfo.InvariantCulture),
        ["learning_rate"] = (_o.LearningRate ?? 1f).ToString("R", CultureInfo.InvariantCulture),
        ["classes_names"] = JsonSerializer.Serialize(_train.ClassNames),
        ["train_data"] = _o.Data,
        ["train_images"] = _train.Count.ToString(CultureInfo.InvariantCulture),
        ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        ["trained_by"] = "chroma train",
        // Inference enlarges smaller photos to the scale the network was trained at (Colorizer.MinWorkingSide).
        [ModelFile.MinWorkingSideKey] = _o.ResizeTo.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Deletes the temporary files of writes that a crash or kill cut short (checkpoints and the
    /// model go through AtomicFile's hidden ".NAME.GUID.tmp", the metrics log through "NAME.tmp"):
    /// they never hold a usable file, and each interrupted run would otherwise leave one more.
    /// </summary>
    static void RemoveInterruptedWrites(string runDirectory)
    {
        string[] patterns = [".checkpoint-*.safetensors.*.tmp", ".model.safetensors.*.tmp", "metrics.csv.tmp", "curves.png.tmp.png", "run.json.tmp"];
        foreach (var file in patterns.SelectMany(p => Directory.GetFiles(runDirectory, p)))
            File.Delete(file);
    }

    /// <summary>Checkpoint files of a run folder, oldest first.</summary>
    public static List<string> Checkpoints(string runDirectory) =>
        Directory.Exists(runDirectory)
            ? Directory.GetFiles(runDirectory, "checkpoint-*.safetensors").Order(StringComparer.Ordinal).ToList()
            : [];

    public void Dispose()
    {
        _step.Dispose();
        _network.Dispose();
    }
}
