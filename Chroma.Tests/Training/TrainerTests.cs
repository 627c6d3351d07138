using System.Globalization;
using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Training;

public sealed class TrainerTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-trainer-").FullName;
    readonly string _data;

    public TrainerTests() => _data = Fixtures.ClassFolders(Path.Combine(_dir, "data"), perClass: 4);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    TrainOptions Options(string run) => new()
    {
        Data = _data, RunDirectory = Path.Combine(_dir, run), Width = 0.0625, BatchSize = 4, ResizeTo = 72, CropSize = 64,
        ValidationFraction = 0.25, Seed = 2, ValidateEvery = 1000, CheckpointEvery = 1000,
    };

    [Fact]
    public void Writes_metrics_curves_the_last_k_checkpoints_and_the_model()
    {
        var options = Options("run") with { Steps = 5, ValidateEvery = 2, CheckpointEvery = 1, KeepCheckpoints = 2 };
        var validated = new List<MetricsLog.Row>();
        using (var trainer = new Trainer(options, CpuDevice.Instance))
        {
            trainer.Validated += validated.Add;
            trainer.Run(CancellationToken.None);
        }
        string run = options.RunDirectory;

        var lines = File.ReadAllLines(Path.Combine(run, "metrics.csv"));
        Assert.StartsWith("step,epoch,train_loss,", lines[0]);
        Assert.Equal(["2", "4", "5"], lines.Skip(1).Select(l => l.Split(',')[0])); // every 2 steps, and the last
        Assert.Equal([2L, 4, 5], validated.Select(r => r.Step));
        foreach (var line in lines.Skip(1))
        {
            var fields = line.Split(',');
            Assert.Equal(lines[0].Split(',').Length, fields.Length);
            foreach (int i in new[] { 2, 5, 8 }) // train loss, val loss, val PSNR
                Assert.True(double.TryParse(fields[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v), line);
        }
        Assert.All(validated, r => Assert.InRange(r.ValTop1, 0, 1)); // labelled data: accuracy is reported

        var png = File.ReadAllBytes(Path.Combine(run, "curves.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        var curves = ImageFile.Load(Path.Combine(run, "curves.png"));
        Assert.True(curves.Width > 100 && curves.Height > 100);

        Assert.Equal(["checkpoint-00000004.safetensors", "checkpoint-00000005.safetensors"], Trainer.Checkpoints(run).Select(Path.GetFileName));
        Assert.Equal(5, Checkpoint.Load(Trainer.Checkpoints(run)[^1]).Step);
        using var model = ModelFile.Load(Path.Combine(run, "model.safetensors"), CpuDevice.Instance);
        Assert.Equal(3, model.Config.Classes);
        Assert.Equal(Fixtures.ClassNames, Evaluation.ClassNames(ModelFile.ReadInfo(Path.Combine(run, "model.safetensors")).Metadata));
        Assert.Empty(Fixtures.TempFiles(run));
    }

    [Fact]
    public void Nan_loss_stops_training_and_leaves_the_last_checkpoint_intact()
    {
        var options = Options("nan") with { Steps = 10, CheckpointEvery = 2 };
        using var trainer = new Trainer(options, CpuDevice.Instance);
        byte[]? savedBytes = null;
        string checkpoint = Path.Combine(options.RunDirectory, "checkpoint-00000002.safetensors");
        trainer.StepDone += (step, _, _) =>
        {
            if (step != 3) return;
            savedBytes = File.ReadAllBytes(checkpoint);
            // Poison the weights: the next forward pass gives a NaN loss.
            var values = trainer.Network.Parameters.Values.ToArray();
            values.AsSpan().Fill(float.NaN);
            trainer.Network.Parameters.Values.CopyFrom(values);
            trainer.Network.Parameters.MarkChanged();
        };
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Run(CancellationToken.None));
        // The loss is read back at step 4 (a checkpoint step): the mean of steps 3 and 4, step 4's NaN in it.
        Assert.Contains("steps 3-4", e.Message);
        Assert.Equal(4, trainer.Step);

        Assert.Equal([checkpoint], Trainer.Checkpoints(options.RunDirectory));
        Assert.Equal(savedBytes, File.ReadAllBytes(checkpoint));
        var loaded = Checkpoint.Load(checkpoint);
        Assert.Equal(2, loaded.Step);
        using (ModelFile.Load(loaded.File, checkpoint, CpuDevice.Instance)) { }
        Assert.False(File.Exists(Path.Combine(options.RunDirectory, "model.safetensors")));

        // And the run resumes from it.
        using var resumed = new Trainer(options with { Resume = true, Steps = 3 }, CpuDevice.Instance);
        Assert.Equal(2, resumed.Step);
        resumed.Run(CancellationToken.None);
        Assert.Equal(3, resumed.Step);
    }

    [Fact]
    public void Cancellation_saves_a_checkpoint_and_resume_continues_from_it()
    {
        var options = Options("stop") with { Steps = 50 };
        using var cancel = new CancellationTokenSource();
        using (var trainer = new Trainer(options, CpuDevice.Instance))
        {
            trainer.StepDone += (step, _, _) => { if (step == 2) cancel.Cancel(); };
            trainer.Run(cancel.Token);
            Assert.Equal(2, trainer.Step);
        }
        Assert.Equal(["checkpoint-00000002.safetensors"], Trainer.Checkpoints(options.RunDirectory).Select(Path.GetFileName));
        Assert.Throws<IOException>(() => new Trainer(options, CpuDevice.Instance)); // the folder holds a run: not silently restarted
        using var resumed = new Trainer(options with { Resume = true, Steps = 3 }, CpuDevice.Instance);
        Assert.Equal(2, resumed.Step);
    }

    [Fact]
    public void Learning_rate_scales_the_step_and_a_resume_may_lower_it()
    {
        // The first ADADELTA step does not depend on the rate (its accumulators start at 0), so with
        // the same start and batch a rate of 0.25 moves every parameter exactly a quarter as far.
        float[] Moved(float lr)
        {
            using var network = new ColorizationNetwork(new ColorizerConfig(0.0625, 3, 1, 64), CpuDevice.Instance, seed: 5);
            var before = network.Parameters.Values.ToArray();
            using var step = new TrainingStep(network, 2, classification: true) { LearningRate = lr };
            var rng = new Random(9);
            var images = Enumerable.Range(0, 2 * 64 * 64).Select(_ => (float)rng.NextDouble()).ToArray();
            var targets = Enumerable.Range(0, 2 * 2 * 32 * 32).Select(_ => (float)rng.NextDouble()).ToArray();
            step.Run(images, targets, [0, 2]);
            var after = network.Parameters.Values.ToArray();
            return after.Select((a, i) => a - before[i]).ToArray();
        }
        var full = Moved(1f);
        var quarter = Moved(0.25f);
        Assert.Contains(full, d => d != 0);
        for (int i = 0; i < full.Length; i++)
            Assert.True(Math.Abs(quarter[i] - 0.25 * full[i]) <= 1e-6 + 1e-4 * Math.Abs(full[i]), $"parameter {i}: moved {quarter[i]} at 0.25, {full[i]} at 1");

        // A run starts at 1 unless told; --resume may lower it, and run.json keeps the new rate.
        var options = Options("anneal") with { Steps = 2 };
        using (var trainer = new Trainer(options, CpuDevice.Instance)) trainer.Run(CancellationToken.None);
        using (var trainer = new Trainer(new TrainOptions { Data = options.Data, RunDirectory = options.RunDirectory, Resume = true, Steps = 3, LearningRate = 0.2f }, CpuDevice.Instance))
        {
            Assert.Equal(0.2f, trainer.Options.LearningRate);
            trainer.Run(CancellationToken.None);
        }
        using (var trainer = new Trainer(new TrainOptions { Data = options.Data, RunDirectory = options.RunDirectory, Resume = true }, CpuDevice.Instance))
            Assert.Equal(0.2f, trainer.Options.LearningRate);
        Assert.Throws<ArgumentException>(() => new Trainer(Options("bad-lr") with { LearningRate = 0f }, CpuDevice.Instance));
        Assert.False(Directory.Exists(Path.Combine(_dir, "bad-lr")), "a failed start left its run folder");
    }

    [Fact]
    public void An_extended_length_is_kept_by_later_resumes()
    {
        var options = Options("extend") with { Steps = 2 };
        using (var trainer = new Trainer(options, CpuDevice.Instance)) trainer.Run(CancellationToken.None);

        // Extend to 4, interrupted at 3.
        using var cancel = new CancellationTokenSource();
        using (var trainer = new Trainer(options with { Resume = true, Steps = 4 }, CpuDevice.Instance))
        {
            Assert.Equal(4, trainer.TotalSteps);
            trainer.StepDone += (step, _, _) => { if (step == 3) cancel.Cancel(); };
            trainer.Run(cancel.Token);
            Assert.Equal(3, trainer.Step);
        }
        // A plain resume continues to 4 (not the original 2, which it has passed).
        using (var trainer = new Trainer(new TrainOptions { Data = "ignored", RunDirectory = options.RunDirectory, Resume = true }, CpuDevice.Instance))
        {
            Assert.Equal(4, trainer.TotalSteps);
            Assert.Equal(options.Data, trainer.Options.Data); // the run's settings, not the caller's
            trainer.Run(CancellationToken.None);
            Assert.Equal(4, trainer.Step);
        }
        // --epochs replaces --steps: 12 images with a quarter held out leave 9, so 2 epochs of batches of 4 are 5 steps.
        using (var trainer = new Trainer(new TrainOptions { Data = options.Data, RunDirectory = options.RunDirectory, Resume = true, Epochs = 2 }, CpuDevice.Instance))
            Assert.Equal((long)Math.Ceiling(2.0 * trainer.TrainData.Count / 4), trainer.TotalSteps);
        // Shorter than the step reached: refused, and run.json keeps its length.
        Assert.Throws<ArgumentException>(() => new Trainer(options with { Resume = true, Steps = 3 }, CpuDevice.Instance));
        using (var trainer = new Trainer(new TrainOptions { Data = options.Data, RunDirectory = options.RunDirectory, Resume = true }, CpuDevice.Instance))
            Assert.Equal(5, trainer.TotalSteps);
    }

    [Fact]
    public void Metrics_log_drops_rows_after_the_resumed_step()
    {
        string csv = Path.Combine(_dir, "metrics.csv"), png = Path.Combine(_dir, "curves.png");
        var log = new MetricsLog(csv, png, truncateAfterStep: 0);
        for (int step = 1; step <= 5; step++)
            log.Append(new MetricsLog.Row(step, step / 10.0, 1.0 / step, 0.9 / step, 0.1, 1.1 / step, 1.0 / step, 0.1, 20 + step, double.NaN, 8, step));
        var reopened = new MetricsLog(csv, png, truncateAfterStep: 3);
        Assert.Equal([1L, 2, 3], reopened.Rows.Select(r => r.Step));
        Assert.Equal(4, File.ReadAllLines(csv).Length);
        Assert.Equal(23, reopened.Rows[^1].ValPsnr, 6);
    }
}
