using System.Globalization;

namespace Chroma.Model;

/// <summary>
/// Saving and loading a <see cref="ColorizationNetwork"/> as safetensors, with PyTorch-compatible
/// tensor names and the configuration in <c>__metadata__</c> (see spec MODEL.md).
/// </summary>
public static class ModelFile
{
    public const string FormatName = "chroma-colorizer";

    /// <summary>
    /// Optional metadata key: the a*b* gain <see cref="Colorizer.Saturation"/> applies by default
    /// (absent = 1, the network's own output).
    /// </summary>
    public const string SaturationKey = "saturation";

    /// <summary>Largest accepted <see cref="SaturationKey"/> value (and `--saturation`).</summary>
    public const float MaxSaturation = 4f;

    /// <summary>
    /// Optional metadata key: the shorter side, in pixels, that the local path works at for smaller
    /// photos (<see cref="Colorizer.MinWorkingSide"/>); `chroma train` writes its resize size here.
    /// Absent = 0 (photos are never enlarged).
    /// </summary>
    public const string MinWorkingSideKey = "working_min_side";

    /// <summary>
    /// Optional metadata key: "true" to average each prediction with that of the mirrored photo
    /// (<see cref="Colorizer.AverageMirrored"/>); absent = false.
    /// </summary>
    public const string AverageMirroredKey = "average_mirrored";

    /// <summary>Largest accepted <see cref="MinWorkingSideKey"/> value.</summary>
    public const int MaxMinWorkingSide = 4096;

    /// <summary>Whether <paramref name="s"/> is an accepted saturation: 0 to <see cref="MaxSaturation"/> (NaN is not).</summary>
    public static bool IsValidSaturation(double s) => s >= 0 && s <= MaxSaturation;

    /// <summary>Configuration and metadata of a model file, read without building the network.</summary>
    public sealed record Info(ColorizerConfig Config, IReadOnlyDictionary<string, string> Metadata, long ParameterCount, int TensorCount);

    /// <summary>Writes every parameter and running statistic (atomically: temporary file, then rename).</summary>
    public static void Save(ColorizationNetwork network, string path, SafeTensorDType dtype = SafeTensorDType.F32,
        IReadOnlyDictionary<string, string>? extraMetadata = null, bool overwrite = true, IEnumerable<SafeTensor>? extraTensors = null)
    {
        var (tensors, meta) = Contents(network, extraMetadata, extraTensors);
        SafeTensorsFile.Write(path, tensors, meta, dtype, overwrite);
    }

    /// <summary>As <see cref="Save(ColorizationNetwork, string, SafeTensorDType, IReadOnlyDictionary{string, string}?, bool, IEnumerable{SafeTensor}?)"/>, to <paramref name="stream"/> at its current position (the same bytes a file gets).</summary>
    public static void Save(ColorizationNetwork network, Stream stream, SafeTensorDType dtype = SafeTensorDType.F32,
        IReadOnlyDictionary<string, string>? extraMetadata = null, IEnumerable<SafeTensor>? extraTensors = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (tensors, meta) = Contents(network, extraMetadata, extraTensors);
        SafeTensorsFile.Write(stream, tensors, meta, dtype);
    }

    /// <summary>What a model file holds: the network's tensors (then <paramref name="extraTensors"/>) and its configuration's metadata with <paramref name="extraMetadata"/> over it.</summary>
    static (List<SafeTensor> Tensors, Dictionary<string, string> Metadata) Contents(ColorizationNetwork network,
        IReadOnlyDictionary<string, string>? extraMetadata, IEnumerable<SafeTensor>? extraTensors)
    {
        ArgumentNullException.ThrowIfNull(network);
        var meta = new Dictionary<string, string>(ConfigMetadata(network.Config));
        if (extraMetadata is not null)
            foreach (var (k, v) in extraMetadata) meta[k] = v;
        var tensors = Tensors(network);
        if (extraTensors is not null) tensors.AddRange(extraTensors);
        return (tensors, meta);
    }

    /// <summary>Every parameter and running statistic of the network, by name, copied to the host.</summary>
    public static List<SafeTensor> Tensors(ColorizationNetwork network)
    {
        var store = network.Parameters;
        var values = store.Values.ToArray();
        var state = store.State.ToArray();
        return store.Entries.Select(e =>
        {
            var src = e.Trained ? values : state;
            int offset = e.Value.Offset - (e.Trained ? store.Values.Offset : store.State.Offset);
            return new SafeTensor(e.Name, e.Shape, src.AsSpan(offset, e.Length).ToArray());
        }).ToList();
    }

    /// <summary>The configuration as metadata strings.</summary>
    public static Dictionary<string, string> ConfigMetadata(ColorizerConfig c) => new()
    {
        ["format"] = FormatName,
        ["format_version"] = ColorizerConfig.FormatVersion.ToString(CultureInfo.InvariantCulture),
        ["width"] = c.Width.ToString("R", CultureInfo.InvariantCulture),
        ["classes"] = c.Classes.ToString(CultureInfo.InvariantCulture),
        ["fusion_kernel"] = c.FusionKernel.ToString(CultureInfo.InvariantCulture),
        ["input_size"] = c.InputSize.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>Reads the configuration from metadata, naming the file and the field on any problem.</summary>
    public static ColorizerConfig ConfigFromMetadata(IReadOnlyDictionary<string, string> meta, string file)
    {
        string Get(string key) => meta.TryGetValue(key, out var v) ? v
            : throw new ModelFileException(file, $"metadata has no '{key}' (is this a Chroma model file?)");
        if (meta.TryGetValue("format", out var format) && format != FormatName)
            throw new ModelFileException(file, $"metadata format is '{format}', expected '{FormatName}'");
        var version = Get("format_version");
        if (version != ColorizerConfig.FormatVersion.ToString(CultureInfo.InvariantCulture))
            throw new ModelFileException(file, $"format version {version} is not supported (this build reads version {ColorizerConfig.FormatVersion})");
        double width = ParseDouble(file, "width", Get("width"));
        int classes = ParseInt(file, "classes", Get("classes"));
        int fusion = ParseInt(file, "fusion_kernel", Get("fusion_kernel"));
        int input = meta.TryGetValue("input_size", out var s) ? ParseInt(file, "input_size", s) : 224;
        SaturationFromMetadata(meta, file); // checked here so that a bad value fails every load, not only colorizing
        MinWorkingSideFromMetadata(meta, file);
        AverageMirroredFromMetadata(meta, file);
        var config = new ColorizerConfig(width, classes, fusion, input);
        try { config.Validate(); }
        catch (ArgumentException e) { throw new ModelFileException(file, "invalid configuration: " + e.Message); }
        return config;
    }

    /// <summary>The default a*b* gain stored in a model's metadata (1 when absent), checked to be in [0, <see cref="MaxSaturation"/>].</summary>
    public static float SaturationFromMetadata(IReadOnlyDictionary<string, string> meta, string file)
    {
        if (!meta.TryGetValue(SaturationKey, out var text)) return 1f;
        double s = ParseDouble(file, SaturationKey, text);
        if (!IsValidSaturation(s))
            throw new ModelFileException(file, $"metadata '{SaturationKey}' is {text}; it must be between 0 and {MaxSaturation}");
        return (float)s;
    }

    /// <summary>Whether a model's metadata asks for mirror averaging (false when absent; "true" or "false" otherwise).</summary>
    public static bool AverageMirroredFromMetadata(IReadOnlyDictionary<string, string> meta, string file)
    {
        if (!meta.TryGetValue(AverageMirroredKey, out var text)) return false;
        return text switch
        {
            "true" => true,
            "false" => false,
            _ => throw new ModelFileException(file, $"metadata '{AverageMirroredKey}' is '{text}'; it must be true or false"),
        };
    }

    /// <summary>The local path's minimum working side stored in a model's metadata (0 when absent), checked to be in [0, <see cref="MaxMinWorkingSide"/>].</summary>
    public static int MinWorkingSideFromMetadata(IReadOnlyDictionary<string, string> meta, string file)
    {
        if (!meta.TryGetValue(MinWorkingSideKey, out var text)) return 0;
        int side = ParseInt(file, MinWorkingSideKey, text);
        if (side < 0 || side > MaxMinWorkingSide)
            throw new ModelFileException(file, $"metadata '{MinWorkingSideKey}' is {text}; it must be between 0 and {MaxMinWorkingSide}");
        return side;
    }

    /// <summary>
    /// Replaces every weight and running statistic of <paramref name="network"/> by its mean with
    /// those of <paramref name="others"/> (model or checkpoint files of the same configuration):
    /// averaging the last checkpoints of a run that has reached its noisy plateau (Izmailov et al.,
    /// "Averaging Weights Leads to Wider Optima", 2018). The batch-norm running statistics are
    /// averaged too, which is close to recomputing them when the checkpoints are near each other.
    /// </summary>
    public static void AverageWith(ColorizationNetwork network, IReadOnlyList<string> others)
    {
        var store = network.Parameters;
        var values = Array.ConvertAll(store.Values.ToArray(), v => (double)v);
        var state = Array.ConvertAll(store.State.ToArray(), v => (double)v);
        foreach (var path in others)
        {
            using var other = Load(path, CpuDevice.Instance);
            if (other.Config != network.Config)
                throw new ModelFileException(path, $"its configuration ({other.Config}) differs from the model being averaged ({network.Config})");
            var v = other.Parameters.Values.ToArray();
            var st = other.Parameters.State.ToArray();
            for (int i = 0; i < values.Length; i++) values[i] += v[i];
            for (int i = 0; i < state.Length; i++) state[i] += st[i];
        }
        double k = 1.0 / (others.Count + 1);
        store.Values.CopyFrom(Array.ConvertAll(values, v => (float)(v * k)));
        store.State.CopyFrom(Array.ConvertAll(state, v => (float)(v * k)));
        store.MarkChanged();
    }

    /// <summary>Configuration, metadata and parameter count of a model file (the whole file is validated).</summary>
    public static Info ReadInfo(string path)
    {
        var file = ReadFile(path);
        var config = ConfigFromMetadata(file.Metadata, path);
        long count = file.Tensors.Where(t => !t.Name.StartsWith("optim.", StringComparison.Ordinal) && !t.Name.EndsWith(".running_mean", StringComparison.Ordinal) && !t.Name.EndsWith(".running_var", StringComparison.Ordinal))
                                 .Sum(t => (long)t.Data.Length);
        return new Info(config, file.Metadata, count, file.Tensors.Count);
    }

    /// <summary>Loads a network onto <paramref name="device"/>, checking every name, shape and value.</summary>
    public static ColorizationNetwork Load(string path, Device device) => Load(ReadFile(path), path, device);

    /// <summary>As <see cref="Load(string, Device)"/>, also returning the file's metadata (the file is read once).</summary>
    public static ColorizationNetwork Load(string path, Device device, out IReadOnlyDictionary<string, string> metadata)
    {
        var file = ReadFile(path);
        metadata = file.Metadata;
        return Load(file, path, device);
    }

    /// <summary>
    /// As <see cref="Load(string, Device)"/>, reading a model file's bytes from the current position of
    /// <paramref name="stream"/> to its end (the stream is not disposed); <paramref name="name"/> names
    /// it in errors, as a path does.
    /// </summary>
    public static ColorizationNetwork Load(Stream stream, string name, Device device) => Load(ReadFile(stream, name), name, device);

    /// <summary>As <see cref="Load(Stream, string, Device)"/>, also returning the file's metadata.</summary>
    public static ColorizationNetwork Load(Stream stream, string name, Device device, out IReadOnlyDictionary<string, string> metadata)
    {
        var file = ReadFile(stream, name);
        metadata = file.Metadata;
        return Load(file, name, device);
    }

    /// <summary>Loads from an already-read safetensors file (a training checkpoint's optimizer state is ignored).</summary>
    public static ColorizationNetwork Load(SafeTensorsFile file, string path, Device device)
    {
        var config = ConfigFromMetadata(file.Metadata, path);
        var network = new ColorizationNetwork(config, device, initialize: false);
        try
        {
            CopyInto(network, file, path, ignorePrefix: "optim.");
            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies the file's tensors into an existing network of the same configuration. Tensors whose
    /// name starts with <paramref name="ignorePrefix"/> (e.g. a checkpoint's optimizer state) are skipped.
    /// </summary>
    public static void CopyInto(ColorizationNetwork network, SafeTensorsFile file, string path, string? ignorePrefix = null)
    {
        var store = network.Parameters;
        var expected = store.Entries.Select(e => e.Name).ToHashSet();
        var unexpected = file.Tensors.Select(t => t.Name).Concat(file.IntTensors.Select(t => t.Name))
            .Where(n => !expected.Contains(n) && !(ignorePrefix is not null && n.StartsWith(ignorePrefix, StringComparison.Ordinal))).ToList();
        if (unexpected.Count > 0)
            throw new ModelFileException(path, $"unexpected tensor(s): {string.Join(", ", unexpected.Take(5))}{(unexpected.Count > 5 ? $" and {unexpected.Count - 5} more" : "")}");
        var values = new float[store.Values.Length];
        var state = new float[store.State.Length];
        var missing = new List<string>();
        foreach (var e in store.Entries)
        {
            if (!file.TryGet(e.Name, out var t)) { missing.Add(e.Name); continue; }
            if (!t.Shape.SequenceEqual(e.Shape))
                throw new ModelFileException(path, $"tensor '{e.Name}' has shape [{string.Join(", ", t.Shape)}], the configuration needs [{string.Join(", ", e.Shape)}]");
            CopyChecked(store, e, t, values, state, path);
        }
        if (missing.Count > 0)
            throw new ModelFileException(path, $"missing tensor(s): {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? $" and {missing.Count - 5} more" : "")}");
        store.Values.CopyFrom(values);
        store.State.CopyFrom(state);
        store.MarkChanged();
    }

    /// <summary>What <see cref="InitializeFrom"/> took from a model file and what it did not.</summary>
    /// <param name="Taken">Tensors copied (name and shape matched).</param>
    /// <param name="TakenParameters">Trained values among them.</param>
    /// <param name="ShapeMismatch">Tensors of both with other shapes: "name: [file shape] in the file, [shape] here".</param>
    /// <param name="NotInFile">This network's tensors the file lacks (they keep their initialization).</param>
    /// <param name="OnlyInFile">The file's tensors this network has no place for (ignored).</param>
    public sealed record InitReport(IReadOnlyList<string> Taken, long TakenParameters, IReadOnlyList<string> ShapeMismatch,
        IReadOnlyList<string> NotInFile, IReadOnlyList<string> OnlyInFile)
    {
        /// <summary>The report as lines for the user: a summary, then what was not taken and why.</summary>
        public IEnumerable<string> Lines(string path, int networkTensors)
        {
            yield return $"init from {path}: took {Taken.Count} of this network's {networkTensors} tensors ({TakenParameters:N0} trained values)";
            foreach (var m in ShapeMismatch) yield return $"  not taken, other shape: {m}";
            foreach (var n in NotInFile) yield return $"  not in the file, initialized as usual: {n}";
            foreach (var n in OnlyInFile) yield return $"  only in the file, ignored: {n}";
        }
    }

    /// <summary>
    /// Starts a network from a model file's weights (fine-tuning): every tensor whose name and shape
    /// match is copied (running statistics too), the rest keep their initialization. A training
    /// checkpoint's optimizer state ("optim.*") is ignored. Values are validated as <see cref="Load(string, Device)"/> does.
    /// </summary>
    public static InitReport InitializeFrom(ColorizationNetwork network, string path)
    {
        var file = ReadFile(path);
        var store = network.Parameters;
        var values = store.Values.ToArray();
        var state = store.State.ToArray();
        var taken = new List<string>(); var mismatch = new List<string>(); var notInFile = new List<string>();
        long parameters = 0;
        foreach (var e in store.Entries)
        {
            if (!file.TryGet(e.Name, out var t)) { notInFile.Add(e.Name); continue; }
            if (!t.Shape.SequenceEqual(e.Shape))
            {
                mismatch.Add($"{e.Name}: [{string.Join(", ", t.Shape)}] in the file, [{string.Join(", ", e.Shape)}] here");
                continue;
            }
            CopyChecked(store, e, t, values, state, path);
            taken.Add(e.Name);
            if (e.Trained) parameters += e.Length;
        }
        var names = store.Entries.Select(e => e.Name).ToHashSet();
        var onlyInFile = file.Tensors.Select(t => t.Name).Concat(file.IntTensors.Select(t => t.Name))
            .Where(n => !names.Contains(n) && !n.StartsWith("optim.", StringComparison.Ordinal)).ToList();
        if (taken.Count == 0)
            throw new ModelFileException(path, "no tensor matches this network by name and shape; nothing to start from");
        store.Values.CopyFrom(values);
        store.State.CopyFrom(state);
        store.MarkChanged();
        return new InitReport(taken, parameters, mismatch, notInFile, onlyInFile);
    }

    /// <summary>
    /// Checks a file tensor's values (finite; variances not negative) and copies it into the host copy
    /// of the store's parameter (<paramref name="values"/>) or state (<paramref name="state"/>) buffer.
    /// </summary>
    static void CopyChecked(ParameterStore store, ParameterStore.Entry e, SafeTensor t, float[] values, float[] state, string path)
    {
        foreach (var v in t.Data)
            if (!float.IsFinite(v)) throw new ModelFileException(path, $"tensor '{e.Name}' contains NaN or infinite values");
        if (!e.Trained && e.Name.EndsWith(".running_var", StringComparison.Ordinal) && t.Data.Any(v => v < 0))
            throw new ModelFileException(path, $"tensor '{e.Name}' has negative variances");
        var dst = e.Trained ? values : state;
        int offset = e.Trained ? e.Value.Offset - store.Values.Offset : e.Value.Offset - store.State.Offset;
        t.Data.CopyTo(dst.AsSpan(offset, e.Length));
    }

    static SafeTensorsFile ReadFile(string path) => ReadFile(path, () => SafeTensorsFile.Read(path));

    static SafeTensorsFile ReadFile(Stream stream, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(name);
        return ReadFile(name, () => SafeTensorsFile.Read(stream, name));
    }

    static SafeTensorsFile ReadFile(string path, Func<SafeTensorsFile> read)
    {
        try { return read(); }
        catch (SafeTensorsException e) { throw new ModelFileException(path, e.Problem, e); } // e.Message repeats the path
        catch (FileNotFoundException) { throw new ModelFileException(path, "file not found"); }
        catch (DirectoryNotFoundException) { throw new ModelFileException(path, "folder not found"); }
        catch (UnauthorizedAccessException) { throw new ModelFileException(path, "permission denied"); }
    }

    static double ParseDouble(string file, string key, string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
            : throw new ModelFileException(file, $"metadata '{key}' is '{s}', not a number");

    static int ParseInt(string file, string key, string s) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
            : throw new ModelFileException(file, $"metadata '{key}' is '{s}', not an integer");
}

/// <summary>A model file that cannot be used; the message names the file and the problem.</summary>
public sealed class ModelFileException : Exception
{
    public ModelFileException(string file, string problem, Exception? inner = null)
        : base($"{file}: {problem}", inner) { File = file; Problem = problem; }
    public string File { get; }
    public string Problem { get; }
}
