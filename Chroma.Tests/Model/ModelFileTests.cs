using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>Saving and loading networks as safetensors model files (ModelFile), and every way a file can be unusable.</summary>
public sealed class ModelFileTests : IDisposable
{
    static readonly ColorizerConfig Tiny = new(0.0625, 3, 1, 64);
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-modelfile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>A tiny network whose running statistics have moved away from 0 and 1 (one training-mode pass).</summary>
    static ColorizationNetwork TrainedOnce(ColorizerConfig config, int seed = 3)
    {
        var device = CpuDevice.Instance;
        var network = new ColorizationNetwork(config, device, seed);
        int s = config.InputSize;
        using var input = TestData.Tensor(device, TestData.Uniform(seed, 4 * s * s, 0, 1), 4, 1, s, s);
        network.Forward(input, null, training: true);
        return network;
    }

    /// <summary>Inference outputs (ab, logits) for a fixed 48x40 image with a separate global input.</summary>
    static (float[] Ab, float[] Logits) Infer(ColorizationNetwork network)
    {
        var device = network.Device;
        int s = network.Config.InputSize;
        using var local = TestData.Tensor(device, TestData.Uniform(11, 2 * 48 * 40, 0, 1), 2, 1, 48, 40);
        using var global = TestData.Tensor(device, TestData.Uniform(12, 2 * s * s, 0, 1), 2, 1, s, s);
        var (ab, logits) = network.Forward(local, global, training: false);
        return (ab.ToArray(), logits.ToArray());
    }

    [Fact]
    public void F32_round_trip_is_exact()
    {
        using var original = TrainedOnce(Tiny);
        string path = PathOf("model.safetensors");
        ModelFile.Save(original, path, extraMetadata: new Dictionary<string, string> { ["note"] = "round trip" });

        using var loaded = ModelFile.Load(path, CpuDevice.Instance);
        Assert.Equal(Tiny, loaded.Config);
        Assert.Equal(original.Parameters.Values.ToArray(), loaded.Parameters.Values.ToArray());
        Assert.Equal(original.Parameters.State.ToArray(), loaded.Parameters.State.ToArray());
        var (ab, logits) = Infer(original);
        var (ab2, logits2) = Infer(loaded);
        Assert.Equal(ab, ab2);
        Assert.Equal(logits, logits2);

        var info = ModelFile.ReadInfo(path);
        Assert.Equal(Tiny, info.Config);
        Assert.Equal(original.Parameters.ParameterCount, info.ParameterCount);
        Assert.Equal(130, info.TensorCount);
        Assert.Equal("round trip", info.Metadata["note"]);
        Assert.Equal(ModelFile.FormatName, info.Metadata["format"]);
    }

    [Fact]
    public void F16_round_trip_is_within_half_precision()
    {
        using var original = TrainedOnce(Tiny);
        string path = PathOf("model-f16.safetensors");
        ModelFile.Save(original, path, SafeTensorDType.F16);
        Assert.True(new FileInfo(path).Length < 0.6 * EstimatedF32Bytes(original), "F16 file should be about half the F32 size");

        using var loaded = ModelFile.Load(path, CpuDevice.Instance);
        foreach (var (a, b) in new[] { (original.Parameters.Values, loaded.Parameters.Values), (original.Parameters.State, loaded.Parameters.State) })
        {
            var expected = a.ToArray();
            var actual = b.ToArray();
            for (int i = 0; i < expected.Length; i++)
            {
                // half: 11 significant bits, so rounding to nearest moves a value by at most half a spacing,
                // 2^-11 of it at worst (at the bottom of a binade); below 2^-14 the spacing is 2^-24
                double bound = Math.Max(Math.Abs(expected[i]) * Math.Pow(2, -11), Math.Pow(2, -25));
                Assert.True(Math.Abs(actual[i] - expected[i]) <= bound, $"value {i}: {actual[i]:R} after F16, was {expected[i]:R}");
            }
        }
        // the network's outputs move by about the weights' relative rounding, amplified a little by depth
        var (ab, logits) = Infer(original);
        var (ab2, logits2) = Infer(loaded);
        Compare.Close("ab after F16", TestData.ToDouble(ab), ab2, 0, 2e-3);
        Compare.Close("logits after F16", TestData.ToDouble(logits), logits2, 1e-2, 1e-2);
        Assert.NotEqual(ab, ab2); // the weights really were rounded
    }

    static long EstimatedF32Bytes(ColorizationNetwork n) => 4L * (n.Parameters.Values.Length + n.Parameters.State.Length);

    /// <summary>Saves a tiny model, then rewrites it with <paramref name="edit"/> applied to its tensors and metadata.</summary>
    string Edited(string name, Action<List<SafeTensor>, Dictionary<string, string>> edit)
    {
        using var network = TrainedOnce(Tiny);
        string original = PathOf("original.safetensors");
        ModelFile.Save(network, original);
        var file = SafeTensorsFile.Read(original);
        var tensors = file.Tensors.ToList();
        var metadata = new Dictionary<string, string>(file.Metadata);
        edit(tensors, metadata);
        string path = PathOf(name);
        SafeTensorsFile.Write(path, tensors, metadata);
        return path;
    }

    static void Replace(List<SafeTensor> tensors, string name, Func<SafeTensor, SafeTensor> change)
    {
        int i = tensors.FindIndex(t => t.Name == name);
        Assert.True(i >= 0, $"no tensor {name}");
        tensors[i] = change(tensors[i]);
    }

    /// <summary>Case, the problem the message must name, and whether the problem is in the metadata.</summary>
    public static TheoryData<string, string, bool> BrokenFiles => new()
    {
        { "missing tensor", "missing tensor(s): low.bn3.running_var", false },
        { "unexpected tensor", "unexpected tensor(s): extra.weight", false },
        { "wrong shape", "tensor 'fusion.conv.weight' has shape [16, 32, 3, 3], the configuration needs [16, 32, 1, 1]", false },
        { "NaN weight", "tensor 'mid.conv2.weight' contains NaN or infinite values", false },
        { "infinite weight", "tensor 'class.fc2.bias' contains NaN or infinite values", false },
        { "negative variance", "tensor 'color.bn2.running_var' has negative variances", false },
        { "no width", "metadata has no 'width'", true },
        { "width not a number", "metadata 'width' is 'wide', not a number", true },
        { "fusion kernel 2", "invalid configuration: fusion kernel must be 1 or 3, got 2", true },
        { "classes not an integer", "metadata 'classes' is '3.5', not an integer", true },
        { "other format version", "format version 2 is not supported", true },
        { "classes do not match the weights", "tensor 'class.fc2.weight' has shape [3, 16], the configuration needs [4, 16]", false },
        { "saturation not a number", "metadata 'saturation' is 'vivid', not a number", true },
        { "saturation too large", "metadata 'saturation' is 9; it must be between 0 and 4", true },
        { "saturation negative", "metadata 'saturation' is -0.5; it must be between 0 and 4", true },
        { "saturation NaN", "metadata 'saturation' is NaN; it must be between 0 and 4", true },
    };

    [Theory, MemberData(nameof(BrokenFiles))]
    public void Broken_model_file_is_a_ModelFileException_naming_file_and_problem(string broken, string problem, bool inMetadata)
    {
        string path = Edited(broken.Replace(' ', '-') + ".safetensors", (tensors, meta) =>
        {
            switch (broken)
            {
                case "missing tensor": tensors.RemoveAll(t => t.Name == "low.bn3.running_var"); break;
                case "unexpected tensor": tensors.Add(new SafeTensor("extra.weight", [2], [1f, 2f])); break;
                case "wrong shape":
                    Replace(tensors, "fusion.conv.weight", t => new SafeTensor(t.Name, [16, 32, 3, 3], new float[16 * 32 * 9]));
                    break;
                case "NaN weight": Replace(tensors, "mid.conv2.weight", t => { var d = (float[])t.Data.Clone(); d[5] = float.NaN; return t with { Data = d }; }); break;
                case "infinite weight": Replace(tensors, "class.fc2.bias", t => { var d = (float[])t.Data.Clone(); d[0] = float.NegativeInfinity; return t with { Data = d }; }); break;
                case "negative variance": Replace(tensors, "color.bn2.running_var", t => { var d = (float[])t.Data.Clone(); d[1] = -0.5f; return t with { Data = d }; }); break;
                case "no width": meta.Remove("width"); break;
                case "width not a number": meta["width"] = "wide"; break;
                case "fusion kernel 2": meta["fusion_kernel"] = "2"; break;
                case "classes not an integer": meta["classes"] = "3.5"; break;
                case "other format version": meta["format_version"] = "2"; break;
                case "classes do not match the weights": meta["classes"] = "4"; break;
                case "saturation not a number": meta["saturation"] = "vivid"; break;
                case "saturation too large": meta["saturation"] = "9"; break;
                case "saturation negative": meta["saturation"] = "-0.5"; break;
                case "saturation NaN": meta["saturation"] = "NaN"; break;
                default: throw new ArgumentException(broken);
            }
        });
        AssertModelFileError(path, problem, infoFails: inMetadata);
    }

    [Fact]
    public void Saturation_comes_from_the_metadata_and_defaults_to_one()
    {
        using var network = TrainedOnce(Tiny);
        string plain = PathOf("plain.safetensors"), vivid = PathOf("vivid.safetensors");
        ModelFile.Save(network, plain);
        ModelFile.Save(network, vivid, extraMetadata: new Dictionary<string, string> { [ModelFile.SaturationKey] = "1.35" });
        using (var colorizer = Colorizer.Load(plain, CpuDevice.Instance)) Assert.Equal(1f, colorizer.Saturation);
        using (var colorizer = Colorizer.Load(vivid, CpuDevice.Instance)) Assert.Equal(1.35f, colorizer.Saturation);
        Assert.Equal("1.35", ModelFile.ReadInfo(vivid).Metadata[ModelFile.SaturationKey]);
    }

    [Fact]
    public void Safetensors_file_that_is_not_a_Chroma_model_is_rejected()
    {
        var weights = new[] { new SafeTensor("embeddings.weight", [4, 2], [1, 2, 3, 4, 5, 6, 7, 8]) };
        string bare = PathOf("bare.safetensors");
        SafeTensorsFile.Write(bare, weights, new Dictionary<string, string>());
        AssertModelFileError(bare, "metadata has no 'format_version' (is this a Chroma model file?)");

        // what safetensors.torch.save_file writes
        string torch = PathOf("torch.safetensors");
        SafeTensorsFile.Write(torch, weights, new Dictionary<string, string> { ["format"] = "pt" });
        AssertModelFileError(torch, "metadata format is 'pt', expected 'chroma-colorizer'");
    }

    [Fact]
    public void Truncated_empty_and_missing_files_are_rejected()
    {
        using var network = TrainedOnce(Tiny);
        string whole = PathOf("whole.safetensors");
        ModelFile.Save(network, whole);
        var bytes = File.ReadAllBytes(whole);

        string truncated = PathOf("truncated.safetensors");
        File.WriteAllBytes(truncated, bytes.AsSpan(0, bytes.Length - 1000).ToArray());
        AssertModelFileError(truncated, "file truncated or offsets wrong");

        string headerCut = PathOf("header-cut.safetensors");
        File.WriteAllBytes(headerCut, bytes.AsSpan(0, 100).ToArray());
        AssertModelFileError(headerCut, "exceeds the file size");

        string empty = PathOf("empty.safetensors");
        File.WriteAllBytes(empty, []);
        AssertModelFileError(empty, "file too short (0 bytes)");

        AssertModelFileError(PathOf("absent.safetensors"), "file not found");
        AssertModelFileError(Path.Combine(_dir, "no-such-folder", "model.safetensors"), "folder not found");
    }

    [Fact]
    public void Checkpoint_optimizer_tensors_are_ignored_when_loading_a_model()
    {
        using var network = TrainedOnce(Tiny);
        var device = CpuDevice.Instance;
        using var squareAverage = TestData.Tensor(device, TestData.Uniform(4, network.Parameters.Values.Length, 0, 1), network.Parameters.Values.Length);
        using var accumulatedDelta = TestData.Tensor(device, TestData.Uniform(5, network.Parameters.Values.Length, 0, 1), network.Parameters.Values.Length);
        string path = PathOf("checkpoint.safetensors");
        Checkpoint.Save(path, network, squareAverage, accumulatedDelta, new Dictionary<string, string> { ["step"] = "7" });
        Assert.True(SafeTensorsFile.Read(path).TryGet(Checkpoint.SquareAverage, out _));

        using var loaded = ModelFile.Load(path, device);
        Assert.Equal(network.Parameters.Values.ToArray(), loaded.Parameters.Values.ToArray());
        Assert.Equal(network.Parameters.State.ToArray(), loaded.Parameters.State.ToArray());
        Assert.Equal(130 + 2, ModelFile.ReadInfo(path).TensorCount);
        Assert.Equal(network.Parameters.ParameterCount, ModelFile.ReadInfo(path).ParameterCount);

        // a damaged checkpoint names itself once, like a damaged model file
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        var e = Assert.Throws<ModelFileException>(() => Checkpoint.Load(path));
        Assert.Equal($"{path}: {e.Problem}", e.Message);
        Assert.Contains("file truncated or offsets wrong", e.Problem);
        Assert.DoesNotContain(path, e.Problem);
    }

    /// <summary>
    /// Load fails with "{path}: {problem}", the file named once; so does ReadInfo, unless the problem
    /// is in the tensors (ReadInfo reads the file and its configuration, not the tensors' names and values).
    /// </summary>
    static void AssertModelFileError(string path, string problem, bool infoFails = true)
    {
        var reads = new List<Action> { () => ModelFile.Load(path, CpuDevice.Instance).Dispose() };
        if (infoFails) reads.Add(() => ModelFile.ReadInfo(path));
        foreach (var read in reads)
        {
            var e = Assert.Throws<ModelFileException>(read);
            Assert.Equal(path, e.File);
            Assert.Contains(problem, e.Problem);
            Assert.Equal($"{path}: {e.Problem}", e.Message);
            Assert.DoesNotContain(path, e.Problem);
        }
    }
}
