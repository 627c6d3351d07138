namespace Chroma.Training.Data;

/// <summary>One image of a dataset and its class (-1 when the dataset has no labels).</summary>
public sealed record Sample(string Path, int Label);

/// <summary>
/// A list of images with optional class labels, from either layout:
/// <list type="bullet">
/// <item>folder per class: <c>root/&lt;class&gt;/.../image.jpg</c> (class = first folder under root, nested folders allowed);
/// images directly under root have no label</item>
/// <item>list file: one <c>relative/path label</c> per line (as Places distributes it), paths relative to the file's folder;
/// an optional <c>classes.txt</c> beside it names the classes, one per line</item>
/// </list>
/// </summary>
public sealed class Dataset
{
    static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".png", ".webp", ".bmp" };

    public Dataset(IReadOnlyList<Sample> samples, IReadOnlyList<string> classNames, string source)
    {
        Samples = samples; ClassNames = classNames; Source = source;
    }

    public IReadOnlyList<Sample> Samples { get; }

    /// <summary>Class names by label; empty when unlabelled.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The folder or list file it came from.</summary>
    public string Source { get; }

    public bool HasLabels => ClassNames.Count > 0 && Samples.All(s => s.Label >= 0);

    public int Count => Samples.Count;

    /// <summary>Opens a folder (folder-per-class) or a list file. <paramref name="classNames"/> fixes the label order (e.g. a model's classes).</summary>
    public static Dataset Open(string path, IReadOnlyList<string>? classNames = null)
    {
        if (File.Exists(path)) return FromListFile(path);
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"{path}: no such folder or list file.");
        return FromFolders(path, classNames);
    }

    static Dataset FromFolders(string root, IReadOnlyList<string>? fixedClasses)
    {
        var classDirs = Directory.GetDirectories(root).Select(d => Path.GetFileName(d)!).Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToList();
        var classes = fixedClasses?.ToList() ?? classDirs;
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        var samples = new List<Sample>();
        foreach (var f in Directory.EnumerateFiles(root).Where(IsImage).Order(StringComparer.Ordinal))
            samples.Add(new Sample(f, -1));
        foreach (var dir in classDirs)
        {
            int label = index.TryGetValue(dir, out var l) ? l : -1;
            foreach (var f in Directory.EnumerateFiles(Path.Combine(root, dir), "*", SearchOption.AllDirectories).Where(IsImage).Order(StringComparer.Ordinal))
                samples.Add(new Sample(f, label));
        }
        if (samples.Count == 0) throw new InvalidDataException($"{root}: no images found (expected root/<class>/image.jpg).");
        bool labelled = classDirs.Count > 0 && samples.All(s => s.Label >= 0);
        return new Dataset(samples, labelled ? classes : [], root);
    }

    static Dataset FromListFile(string file)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
        var samples = new List<Sample>();
        int lineNo = 0, maxLabel = -1;
        foreach (var raw in File.ReadLines(file))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int space = line.LastIndexOfAny([' ', '\t']);
            string rel = space < 0 ? line : line[..space].Trim();
            int label = -1;
            if (space >= 0 && !int.TryParse(line[(space + 1)..], out label))
                throw new InvalidDataException($"{file}:{lineNo}: expected 'relative/path label', got '{raw}'.");
            if (label < -1) throw new InvalidDataException($"{file}:{lineNo}: negative label {label}.");
            maxLabel = Math.Max(maxLabel, label);
            samples.Add(new Sample(Path.Combine(dir, rel.TrimStart('/')), label));
        }
        if (samples.Count == 0) throw new InvalidDataException($"{file}: the list names no images.");
        var classFile = Path.Combine(dir, "classes.txt");
        List<string> classes = File.Exists(classFile)
            ? File.ReadLines(classFile).Select(l => l.Trim()).Where(l => l.Length > 0).ToList()
            : Enumerable.Range(0, maxLabel + 1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        if (maxLabel >= classes.Count) throw new InvalidDataException($"{file}: label {maxLabel} but {classFile} names only {classes.Count} classes.");
        return new Dataset(samples, samples.All(s => s.Label >= 0) ? classes : [], file);
    }

    static bool IsImage(string f) => Extensions.Contains(Path.GetExtension(f));

    /// <summary>Splits off a validation part: every image whose seeded position falls in the last fraction.</summary>
    public (Dataset Train, Dataset Validation) Split(double validationFraction, int seed)
    {
        if (!(validationFraction > 0 && validationFraction < 1)) throw new ArgumentException($"validation fraction must be in (0, 1), got {validationFraction}.");
        var order = Enumerable.Range(0, Count).ToArray();
        new Random(seed).Shuffle(order);
        int nVal = Math.Max(1, (int)Math.Round(Count * validationFraction));
        var val = order.Take(nVal).Order().Select(i => Samples[i]).ToList();
        var train = order.Skip(nVal).Order().Select(i => Samples[i]).ToList();
        return (new Dataset(train, ClassNames, Source), new Dataset(val, ClassNames, Source + $" (validation {validationFraction:P0})"));
    }

    /// <summary>A dataset with only the given samples (same classes).</summary>
    public Dataset With(IReadOnlyList<Sample> samples) => new(samples, ClassNames, Source);
}
