using Chroma.Kernels.Harness;
using Chroma.Model;
using Chroma.Training;
using Chroma.Tests.Training;
using Xunit;

namespace Chroma.Tests.Cli;

/// <summary>`chroma init`, `info`, `forward`, `train` and `eval`, run in-process.</summary>
public sealed class OtherCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string PathOf(string name) => Path.Combine(_dir, name);

    [Fact]
    public void Init_paper_model_then_info_reports_42_37_M_parameters()
    {
        string model = PathOf("paper.safetensors");
        var r = Cli.Run("init", "--width", "1", "--classes", "205", "--fp16", "-o", model);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("42.37 M parameters", r.Output);

        r = Cli.Run("info", model);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("(42.37 M)", r.Output);
        Assert.Contains("cpu", r.Output);
        Assert.Contains("chroma-colorizer", r.Output);

        using var net = ModelFile.Load(model, CpuDevice.Instance);
        Assert.Equal(new ColorizerConfig(1.0, 205, 1, 224), net.Config);
        Assert.InRange(net.Parameters.ParameterCount, 42_365_000, 42_375_000);
    }

    [Fact]
    public void Init_writes_a_loadable_model_and_refuses_to_overwrite()
    {
        string model = PathOf("tiny.safetensors");
        var r = Cli.Run("init", "--width", "0.0625", "--classes", "3", "--seed", "5", "-o", model);
        Assert.True(r.ExitCode == 0, r.ToString());
        byte[] first = File.ReadAllBytes(model);
        using (var net = ModelFile.Load(model, CpuDevice.Instance))
        {
            Assert.Equal(0.0625, net.Config.Width);
            Assert.Equal(3, net.Config.Classes);
            // Seeded: the same as the network built in code with that seed.
            using var same = new ColorizationNetwork(new ColorizerConfig(0.0625, 3), CpuDevice.Instance, seed: 5);
            Assert.Equal(same.Parameters.Values.ToArray(), net.Parameters.Values.ToArray());
        }

        r = Cli.Run("init", "--width", "0.0625", "--classes", "3", "--seed", "6", "-o", model);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("already exists", r.Output);
        Assert.Equal(first, File.ReadAllBytes(model));

        r = Cli.Run("init", "--width", "0.0625", "--classes", "3", "--seed", "6", "-o", model, "--overwrite");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.NotEqual(first, File.ReadAllBytes(model));

        r = Cli.Run("init", "--width", "0", "-o", PathOf("zero.safetensors"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("width", r.Output);
        Assert.False(File.Exists(PathOf("zero.safetensors")));
        Assert.Empty(Fixtures.TempFiles(_dir));
    }

    [Fact]
    public void Export_averages_checkpoints_weights_and_statistics_and_refuses_another_configuration()
    {
        using var a = Fixtures.TinyNetwork(seed: 3);
        using var b = Fixtures.TinyNetwork(seed: 4);
        using var c = Fixtures.TinyNetwork(seed: 5);
        // running statistics that differ too
        b.Parameters.State.CopyFrom(b.Parameters.State.ToArray().Select((v, i) => v + 0.01f * i).ToArray());
        string pa = PathOf("a.safetensors"), pb = PathOf("b.safetensors"), pc = PathOf("c.safetensors"), avg = PathOf("avg.safetensors");
        ModelFile.Save(a, pa); ModelFile.Save(b, pb); ModelFile.Save(c, pc);
        var r = Cli.Run("export", pa, "--average", pb, pc, "-o", avg);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var averaged = ModelFile.Load(avg, CpuDevice.Instance, out var metadata);
        Assert.Equal("b.safetensors, c.safetensors", metadata["averaged_with"]);
        foreach (var (get, what) in new (Func<ColorizationNetwork, float[]>, string)[] { (n => n.Parameters.Values.ToArray(), "weights"), (n => n.Parameters.State.ToArray(), "statistics") })
        {
            double[] expected = get(a).Zip(get(b), (x, y) => (double)x + y).Zip(get(c), (s, z) => (s + z) / 3).ToArray();
            var got = get(averaged);
            for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-6 * (1 + Math.Abs(expected[i])), $"{what}[{i}]: {got[i]} vs {expected[i]}");
        }
        using var other = new ColorizationNetwork(new ColorizerConfig(0.0625, 7, 1, 64), CpuDevice.Instance, seed: 1);
        ModelFile.Save(other, PathOf("other.safetensors"));
        r = Cli.Run("export", pa, "--average", PathOf("other.safetensors"), "-o", PathOf("x.safetensors"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("other.safetensors", r.Stderr);
        Assert.Contains("configuration", r.Stderr);
        Assert.False(File.Exists(PathOf("x.safetensors")));
    }

    [Fact]
    public void Export_drops_the_optimizer_state_converts_to_float16_and_sets_metadata()
    {
        // a checkpoint: the model's tensors, its metadata and ADADELTA's two accumulators
        using var network = Fixtures.TinyNetwork(seed: 9);
        int n = network.Parameters.Values.Length;
        using var squareAverage = CpuDevice.Instance.FromArray(Enumerable.Repeat(0.5f, n).ToArray(), n);
        using var accumulatedDelta = CpuDevice.Instance.FromArray(Enumerable.Repeat(0.25f, n).ToArray(), n);
        string checkpoint = PathOf("checkpoint.safetensors");
        Checkpoint.Save(checkpoint, network, squareAverage, accumulatedDelta, new Dictionary<string, string> { ["step"] = "12", ["date"] = "2026-11-27" });

        string shipped = PathOf("shipped.safetensors");
        var r = Cli.Run("export", checkpoint, "-o", shipped, "--fp16", "--saturation", "1.3", "--set", "name=tiny", "--set", "note=a=b");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("float16", r.Output);
        var info = ModelFile.ReadInfo(shipped);
        Assert.Equal(130, info.TensorCount);
        Assert.Equal(("12", "2026-11-27", "tiny", "a=b", "1.3"),
            (info.Metadata["step"], info.Metadata["date"], info.Metadata["name"], info.Metadata["note"], info.Metadata[ModelFile.SaturationKey]));
        Assert.True(new FileInfo(shipped).Length < 0.6 * new FileInfo(checkpoint).Length / 3, "float16 without the optimizer state should be under a sixth of the checkpoint");
        using (var loaded = ModelFile.Load(shipped, CpuDevice.Instance))
        {
            var expected = network.Parameters.Values.ToArray();
            var actual = loaded.Parameters.Values.ToArray();
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-3 * Math.Abs(expected[i]) + 1e-7, $"value {i}: {actual[i]} vs {expected[i]}");
        }

        // refusals: existing output, the input itself, keys that follow from the weights, bad entries
        File.WriteAllText(PathOf("taken.safetensors"), "precious");
        foreach (var (args, problem) in new (string[], string)[]
        {
            ([checkpoint, "-o", PathOf("taken.safetensors")], "already exists"),
            ([checkpoint, "-o", checkpoint, "--overwrite"], "would replace the input"),
            ([checkpoint, "-o", PathOf("x.safetensors"), "--set", "width=2"], "follows from the weights"),
            ([checkpoint, "-o", PathOf("x.safetensors"), "--set", "novalue"], "expected key=value"),
            ([checkpoint, "-o", PathOf("x.safetensors"), "--saturation", "7"], "--saturation must be between 0 and 4"),
            ([PathOf("absent.safetensors"), "-o", PathOf("x.safetensors")], "absent.safetensors"),
        })
        {
            r = Cli.Run(["export", .. args]);
            Assert.True(r.ExitCode != 0, r.ToString());
            Assert.Contains(problem, r.Output);
            Assert.DoesNotContain("   at ", r.Output);
        }
        Assert.Equal("precious", File.ReadAllText(PathOf("taken.safetensors")));
        Assert.False(File.Exists(PathOf("x.safetensors")));
        Assert.Equal(130 + 2, ModelFile.ReadInfo(checkpoint).TensorCount);
    }

    [Fact]
    public void Bench_json_prints_one_object_with_every_timing()
    {
        var r = Cli.Run("bench", "--device", "cpu", "--json", "--width", "0.0625", "--gemm", "64", "--repeats", "1");
        Assert.True(r.ExitCode == 0, r.ToString());
        // Nothing but the JSON object: no table, no device line.
        using var doc = System.Text.Json.JsonDocument.Parse(r.Output);
        var root = doc.RootElement;
        Assert.StartsWith("CPU", root.GetProperty("device").GetString());
        Assert.False(string.IsNullOrWhiteSpace(root.GetProperty("processor").GetString()));
        Assert.Equal(Environment.ProcessorCount, root.GetProperty("cores").GetInt32());
        var entries = root.GetProperty("entries").EnumerateArray().ToList();
        Assert.Equal(["gemm", "inference 512x512", "training step 224x224"], entries.Select(e => e.GetProperty("what").GetString()));
        foreach (var e in entries)
        {
            Assert.True(e.GetProperty("median_ms").GetDouble() > 0, e.ToString());
            Assert.InRange(e.GetProperty("best_ms").GetDouble(), 1e-6, e.GetProperty("median_ms").GetDouble());
        }
        Assert.Equal(64, entries[0].GetProperty("size").GetInt32());
        Assert.True(entries[0].GetProperty("gflops").GetDouble() > 0);
        Assert.Equal(0.0625, entries[1].GetProperty("width").GetDouble());
        Assert.Equal(1, entries[1].GetProperty("batch").GetInt32());
        Assert.Equal(0.0625, entries[2].GetProperty("width").GetDouble());
        Assert.Equal(16, entries[2].GetProperty("batch").GetInt32());
        Assert.True(entries[2].GetProperty("images_per_s").GetDouble() > 0);

        r = Cli.Run("bench", "--json", "--no-such-option");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--no-such-option", r.Output);
    }

    /// <summary>`chroma bench --op`: the op harness's time mode on op_shapes.json's cases; errors name the known ops and cases.</summary>
    [Fact]
    public void Bench_op_times_one_op_and_names_the_known_ops()
    {
        var r = Cli.Run("bench", "--op", "list");
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var op in Ops.All) Assert.Contains(op.Name, r.Stdout);

        r = Cli.Run("bench", "--device", "cpu", "--op", "nope");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--op: unknown op 'nope'; known ops: conv2d, linear, batchnorm, sigmoid, relu, gemm, mse_loss, cross_entropy, " +
            "bilinear_resize, upsample_nearest, fusion, adadelta", r.Stderr);
        Assert.Equal("", r.Stdout);
        r = Cli.Run("bench", "--device", "cpu", "--op", "conv2d", "--case", "w3.low1");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--case: conv2d has no case 'w3.low1'; cases: w0.25.low1, ", r.Stderr);

        // The smallest conv of the list (8 -> 2 channels at 112x112, batch 4), once, as JSON.
        r = Cli.Run("bench", "--device", "cpu", "--op", "conv2d", "--case", "w0.25.color5", "--repeats", "1", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using (var doc = System.Text.Json.JsonDocument.Parse(r.Stdout))
        {
            var root = doc.RootElement;
            Assert.Equal("conv2d", root.GetProperty("op").GetString());
            Assert.Equal(System.Text.Json.JsonValueKind.Null, root.GetProperty("peer").ValueKind);
            var e = Assert.Single(root.GetProperty("entries").EnumerateArray());
            Assert.Equal("w0.25.color5", e.GetProperty("name").GetString());
            Assert.Equal(2, e.GetProperty("sizes").GetProperty("Cout").GetInt32());
            Assert.InRange(e.GetProperty("forward_best_ms").GetDouble(), 1e-6, e.GetProperty("forward_median_ms").GetDouble());
            Assert.True(e.GetProperty("train_median_ms").GetDouble() > 0);
            Assert.True(e.GetProperty("forward_gflops").GetDouble() > 0);
            Assert.False(e.TryGetProperty("forward_ratio", out _));
        }

        // A forward-only op (an optimizer step) is timed forward alone: its entries have no forward+backward.
        r = Cli.Run("bench", "--device", "cpu", "--op", "adadelta", "--case", "w0.25", "--repeats", "1", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using (var doc = System.Text.Json.JsonDocument.Parse(r.Stdout))
        {
            var e = Assert.Single(doc.RootElement.GetProperty("entries").EnumerateArray());
            Assert.True(e.GetProperty("forward_median_ms").GetDouble() > 0);
            Assert.False(e.TryGetProperty("train_median_ms", out _));
        }

        // A peer that cannot run is a failure of the run (exit 1) naming it; the peer is for the CPU path only.
        r = Cli.Run("bench", "--device", "cpu", "--op", "sigmoid", "--repeats", "1", "--peer", "--python", "/bin/false");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--peer: /bin/false ops_torch.py failed (exit 1)", r.Stderr);

        if (!OperatingSystem.IsLinux()) return;
        // A stand-in for Python that answers as ops_torch.py does: forward 1, 2, 3 s and forward+backward 2 s per round.
        string fake = PathOf("fake-python.sh");
        File.WriteAllText(fake, """
            #!/bin/sh
            while [ $# -gt 0 ]; do if [ "$1" = --cases ]; then cases=$2; fi; shift; done
            printf '{"device": "fake torch", "entries": ['
            sep=''
            for c in $(echo "$cases" | tr ',' ' '); do printf '%s{"name": "%s", "forward_ms": [1000, 2000, 3000], "train_ms": [2000]}' "$sep" "$c"; sep=','; done
            printf ']}\n'
            """.Replace("\r", ""));
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        r = Cli.Run("bench", "--device", "cpu", "--op", "conv2d", "--case", "w0.25.color5", "--repeats", "1", "--rounds", "2",
            "--peer", "--python", fake, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("round 2/2: PyTorch", r.Stderr);
        using (var doc = System.Text.Json.JsonDocument.Parse(r.Stdout))
        {
            Assert.Equal("fake torch", doc.RootElement.GetProperty("peer").GetString());
            var e = Assert.Single(doc.RootElement.GetProperty("entries").EnumerateArray());
            // Both rounds pooled: forward samples 1, 1, 2, 2, 3, 3 s -> median 2 s, best 1 s.
            Assert.Equal(2000, e.GetProperty("torch_forward_median_ms").GetDouble());
            Assert.Equal(1000, e.GetProperty("torch_forward_best_ms").GetDouble());
            Assert.Equal(2000, e.GetProperty("torch_train_median_ms").GetDouble());
            Assert.Equal(e.GetProperty("forward_median_ms").GetDouble() / 2000, e.GetProperty("forward_ratio").GetDouble(), 3);
        }
    }

    [Fact]
    public void Info_on_a_bad_file_names_it()
    {
        string bad = PathOf("bad.safetensors");
        File.WriteAllBytes(bad, [1, 2, 3]);
        var r = Cli.Run("info", bad);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("bad.safetensors", r.Output);
        Assert.DoesNotContain("   at ", r.Output);
    }

    static SafeTensor Random(string name, int seed, params int[] shape) =>
        new(name, shape, TestData.ToFloat(TestData.Uniform(seed, Tensor.ShapeLength(shape), 0, 1)));

    [Fact]
    public void Forward_inference_and_training_write_the_expected_tensors()
    {
        string model = Fixtures.SaveTinyModel(PathOf("tiny.safetensors"));
        string input = PathOf("in.safetensors");
        SafeTensorsFile.Write(input, [Random("local", 1, 2, 1, 64, 64), Random("target_ab", 2, 2, 2, 32, 32)],
            new Dictionary<string, string>(), intTensors: [new SafeTensorI64("label", [2], [2, 0])]);

        string output = PathOf("out.safetensors");
        var r = Cli.Run("forward", "--model", model, "--input", input, "-o", output);
        Assert.True(r.ExitCode == 0, r.ToString());
        var result = SafeTensorsFile.Read(output);
        Assert.Equal(["ab", "logits"], result.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.Equal([2, 2, 32, 32], result["ab"].Shape);
        Assert.Equal([2, 3], result["logits"].Shape);
        Assert.All(result["ab"].Data, v => Assert.InRange(v, 0f, 1f)); // sigmoid outputs

        // Existing output: refused without --overwrite.
        r = Cli.Run("forward", "--model", model, "--input", input, "-o", output, "--train");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("already exists", r.Output);

        r = Cli.Run("forward", "--model", model, "--input", input, "-o", output, "--train", "--overwrite");
        Assert.True(r.ExitCode == 0, r.ToString());
        result = SafeTensorsFile.Read(output);
        using var net = ModelFile.Load(model, CpuDevice.Instance);
        var trained = net.Parameters.Entries.Where(e => e.Trained).ToList();
        var expected = new[] { "ab", "logits", "loss", "loss_color", "loss_class" }.Concat(trained.Select(e => "grad." + e.Name)).Order(StringComparer.Ordinal);
        Assert.Equal(expected, result.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (var e in trained) Assert.Equal(e.Shape, result["grad." + e.Name].Shape);
        Assert.Equal([1], result["loss"].Shape);
        float loss = result["loss"].Data[0], color = result["loss_color"].Data[0], cls = result["loss_class"].Data[0];
        Assert.True(float.IsFinite(loss) && color > 0 && cls > 0);
        Assert.Equal(color + cls / 300f, loss, 1e-6f); // default alpha 1/300
        Assert.Contains(result.Tensors.Where(t => t.Name.StartsWith("grad.", StringComparison.Ordinal)), t => t.Data.Any(v => v != 0));
    }

    [Fact]
    public void Forward_with_missing_or_misshapen_inputs_is_a_clear_error()
    {
        string model = Fixtures.SaveTinyModel(PathOf("tiny.safetensors"));
        void Expect(string name, IEnumerable<SafeTensor> tensors, string message, params string[] extra)
        {
            string input = PathOf(name + ".safetensors"), output = PathOf(name + "-out.safetensors");
            SafeTensorsFile.Write(input, tensors, new Dictionary<string, string>());
            var r = Cli.Run(["forward", "--model", model, "--input", input, "-o", output, .. extra]);
            Assert.True(r.ExitCode != 0, $"{name}: {r}");
            Assert.Contains(message, r.Output);
            Assert.DoesNotContain("   at ", r.Output);
            Assert.False(File.Exists(output), $"{name}: output written");
        }
        Expect("no-local", [Random("image", 1, 1, 1, 64, 64)], "no tensor 'local'");
        Expect("rank3", [Random("local", 1, 1, 64, 64)], "'local' must be [N,1,H,W]");
        Expect("rgb", [Random("local", 1, 1, 3, 64, 64)], "local");
        Expect("odd-size", [Random("local", 1, 1, 1, 60, 60)], "local");
        Expect("no-target", [Random("local", 1, 2, 1, 64, 64)], "no tensor 'target_ab'", "--train");
        Expect("bad-target", [Random("local", 1, 2, 1, 64, 64), Random("target_ab", 2, 2, 2, 16, 16)], "'target_ab' must be [2, 2, 32, 32]", "--train");
    }

    [Fact]
    public void Train_then_eval_through_the_command_line()
    {
        string data = Fixtures.ClassFolders(PathOf("data"), perClass: 3);
        string run = PathOf("run");
        var r = Cli.Run("train", "--data", data, "--out", run, "--width", "0.0625", "--batch", "2", "--steps", "3", "--resize", "64", "--crop", "64",
            "--validate-every", "2", "--checkpoint-every", "2", "--device", "cpu", "--val-fraction", "0.3");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("done:", r.Output);
        Assert.Contains("val PSNR", r.Output);
        string model = Path.Combine(run, "model.safetensors");
        using (ModelFile.Load(model, CpuDevice.Instance)) { }

        // The run folder is not silently reused.
        r = Cli.Run("train", "--data", data, "--out", run, "--width", "0.0625", "--batch", "2", "--steps", "3", "--resize", "64", "--crop", "64", "--device", "cpu");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--resume", r.Output);

        // Fine-tuning from the trained model: every tensor matches, and the report says so.
        r = Cli.Run("train", "--data", data, "--out", PathOf("tuned"), "--init", model, "--width", "0.0625", "--batch", "2", "--steps", "1",
            "--resize", "64", "--crop", "64", "--device", "cpu", "--val-fraction", "0.3");
        Assert.True(r.ExitCode == 0, r.ToString());
        int tensors = ModelFile.ReadInfo(model).TensorCount;
        Assert.Contains($"init from {model}: took {tensors} of this network's {tensors} tensors", r.Output);
        // A failed start is a usage error on stderr and leaves no run folder behind.
        r = Cli.Run("train", "--data", data, "-o", PathOf("tuned2"), "--init", PathOf("missing.safetensors"), "--width", "0.0625", "--device", "cpu");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("missing.safetensors", r.Stderr);
        Assert.DoesNotContain("   at ", r.Output);
        Assert.False(Directory.Exists(PathOf("tuned2")), "a failed start left its run folder");

        // --resume continues with the run's own settings: a different one given explicitly is refused, by name.
        r = Cli.Run("train", "--data", data, "--output", run, "--resume", "--width", "0.125", "--batch", "2", "--device", "cpu");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--width (the run has 0.0625, given 0.125)", r.Stderr);
        Assert.DoesNotContain("--batch", r.Stderr); // the same value as the run's is no change

        string report = PathOf("report");
        r = Cli.Run("eval", "--model", model, "--data", data, "--report", report, "--device", "cpu", "--limit", "4");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("4 images", r.Stdout);
        Assert.Contains("PSNR", r.Stdout);
        Assert.Contains($"model {model}", r.Stdout);
        Assert.Contains("top-1", r.Stdout);
        Assert.DoesNotContain("top-5", r.Stdout); // 3 classes: top-5 would always be 100%
        string html = File.ReadAllText(Path.Combine(report, "index.html"));
        Assert.Contains(model, html);
        Assert.DoesNotContain("top-5", html);

        // An existing report is not replaced without --overwrite.
        File.WriteAllText(Path.Combine(report, "notes.txt"), "mine");
        r = Cli.Run("eval", "--model", model, "--data", data, "--report", report, "--device", "cpu", "--limit", "2");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("already exists (pass --overwrite", r.Stderr);
        Assert.Contains("4 images", File.ReadAllText(Path.Combine(report, "index.html")));
        r = Cli.Run("eval", "--model", model, "--data", data, "--report", report, "--device", "cpu", "--limit", "2", "--overwrite");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("2 images", File.ReadAllText(Path.Combine(report, "index.html")));

        // --json: one JSON object on stdout, nothing else there.
        r = Cli.Run("eval", "--model", model, "--data", data, "--device", "cpu", "--limit", "3", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using (var doc = System.Text.Json.JsonDocument.Parse(r.Stdout))
        {
            Assert.Equal(3, doc.RootElement.GetProperty("images").GetInt32());
            Assert.Equal(model, doc.RootElement.GetProperty("model").GetString());
            Assert.True(doc.RootElement.GetProperty("psnr").GetDouble() > 0);
            Assert.Equal(System.Text.Json.JsonValueKind.Null, doc.RootElement.GetProperty("top5").ValueKind);
        }

        // a random sample, at saturation 0: the prediction is the gray baseline
        r = Cli.Run("eval", "--model", model, "--data", data, "--device", "cpu", "--sample", "5", "--seed", "3", "--saturation", "0");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("5 images", r.Output);
        Assert.Contains("saturation 0", r.Output);
        Assert.Matches(@"colourfulness\W+0\.0\W+0\.0\W", r.Output);
        r = Cli.Run("eval", "--model", model, "--data", data, "--device", "cpu", "--sample", "0");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("--sample must be at least 1", r.Output);
    }

    [Fact]
    public void Numbers_are_read_with_a_decimal_point_in_any_locale()
    {
        string model = PathOf("tiny.safetensors");
        string input = PathOf("in.safetensors");
        var before = System.Globalization.CultureInfo.CurrentCulture;
        // German-style numbers (decimal comma, '.' groups thousands), built from the invariant culture
        // so the test also runs where the suite is published with InvariantGlobalization (no "de-DE").
        var german = (System.Globalization.CultureInfo)System.Globalization.CultureInfo.InvariantCulture.Clone();
        german.NumberFormat.NumberDecimalSeparator = ",";
        german.NumberFormat.NumberGroupSeparator = ".";
        System.Globalization.CultureInfo.CurrentCulture = german;
        try
        {
            var r = Cli.Run("init", "--width", "0.0625", "--classes", "3", "-o", model);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Same(german, System.Globalization.CultureInfo.CurrentCulture); // restored after the run
            Assert.Equal(0.0625, ModelFile.ReadInfo(model).Config.Width);

            SafeTensorsFile.Write(input, [Random("local", 1, 2, 1, 224, 224), Random("target_ab", 2, 2, 2, 112, 112)],
                new Dictionary<string, string>(), intTensors: [new SafeTensorI64("label", [2], [1, 2])]);
            r = Cli.Run("forward", "--model", model, "--input", input, "-o", PathOf("out.safetensors"), "--train", "--alpha", "0.5");
            Assert.True(r.ExitCode == 0, r.ToString());
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = before;
        }
        var result = SafeTensorsFile.Read(PathOf("out.safetensors"));
        Assert.Equal(result["loss_color"].Data[0] + 0.5f * result["loss_class"].Data[0], result["loss"].Data[0], 1e-6f);
    }

    [Fact]
    public void Unusable_data_and_run_folders_are_clear_errors()
    {
        void Expect(string message, params string[] args)
        {
            var r = Cli.Run(args);
            Assert.True(r.ExitCode != 0, r.ToString());
            Assert.Contains(message, r.Output);
            Assert.DoesNotContain("   at ", r.Output); // an expected error, not a crash
        }
        string[] small = ["--width", "0.0625", "--batch", "2", "--resize", "64", "--crop", "64", "--device", "cpu"];

        string empty = PathOf("empty");
        Directory.CreateDirectory(Path.Combine(empty, "cats"));
        Expect("no images found", ["train", "--data", empty, "--out", PathOf("run0"), .. small]);

        string list = PathOf("list.txt");
        File.WriteAllLines(list, ["a.png 0", "b.png one"]);
        Expect("list.txt:2", ["train", "--data", list, "--out", PathOf("run1"), .. small]);

        // Every image unreadable: nothing to train on, and nothing to evaluate.
        string broken = PathOf("broken");
        Directory.CreateDirectory(Path.Combine(broken, "x"));
        File.WriteAllText(Path.Combine(broken, "x", "a.jpg"), "not a JPEG");
        File.WriteAllText(Path.Combine(broken, "x", "b.png"), "not a PNG");
        Expect("no usable", ["train", "--data", broken, "--out", PathOf("run2"), .. small]);
        string model = Fixtures.SaveTinyModel(PathOf("tiny.safetensors"));
        Expect("no image could be evaluated", "eval", "--model", model, "--data", broken, "--device", "cpu");

        // A run folder without a checkpoint yet (stopped during start-up), and a missing one.
        string data = Fixtures.ClassFolders(PathOf("data"), perClass: 2);
        var options = new Chroma.Training.TrainOptions
        {
            Data = data, RunDirectory = PathOf("run3"), Width = 0.0625, BatchSize = 2, ResizeTo = 64, CropSize = 64, Steps = 2, ValidationFraction = 0.3,
        };
        new Chroma.Training.Trainer(options, CpuDevice.Instance).Dispose();
        Expect("no checkpoint to resume from", ["train", "--data", data, "--out", PathOf("run3"), "--resume", .. small]);
        Expect("nothing to resume", ["train", "--data", data, "--out", PathOf("run4"), "--resume", .. small]);

        // Resuming with fewer steps than reached: refused rather than "done" without a model.
        using (var trainer = new Chroma.Training.Trainer(options with { RunDirectory = PathOf("run5") }, CpuDevice.Instance))
            trainer.Run(CancellationToken.None);
        File.Delete(Path.Combine(PathOf("run5"), "model.safetensors"));
        Expect("already at step 2", ["train", "--data", data, "--out", PathOf("run5"), "--resume", "--steps", "1", .. small]);
        Assert.False(File.Exists(Path.Combine(PathOf("run5"), "model.safetensors")));
        // The same length again only re-exports the model.
        var again = Cli.Run(["train", "--data", data, "--out", PathOf("run5"), "--resume", "--steps", "2", .. small]);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.True(File.Exists(Path.Combine(PathOf("run5"), "model.safetensors")));
    }
}
