using System.CommandLine;
using Chroma.Model;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>`chroma colorize INPUT... [-o OUT]`: colour images, files or folders.</summary>
public static class ColorizeCommand
{
    /// <summary>Extensions read from folders.</summary>
    static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"];

    /// <summary>Extensions an output file may have (formats Chroma writes).</summary>
    static readonly string[] OutputExtensions = [".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"];

    /// <summary>Environment variable naming another default model file.</summary>
    public const string DefaultModelVariable = "CHROMA_DEFAULT_MODEL";

    /// <summary>A model file that replaces the built-in default ($CHROMA_DEFAULT_MODEL), or null.</summary>
    public static string? DefaultModelOverride =>
        Environment.GetEnvironmentVariable(DefaultModelVariable) is { Length: > 0 } custom ? custom : null;

    /// <summary>Name of the built-in default model in messages and reports.</summary>
    public const string BuiltInModelName = "chroma-default (built in)";

    /// <summary>
    /// The colorizer of `--model FILE`, else of $CHROMA_DEFAULT_MODEL, else the default model built
    /// into Chroma.Model (<see cref="Colorizer.LoadDefault(Device, bool, float?, int)"/>), and its name
    /// for messages. Owns <paramref name="device"/>.
    /// </summary>
    public static (Colorizer Colorizer, string Name) OpenColorizer(string? modelPath, Func<Device> device, float? saturation, int maxPixels)
    {
        if (modelPath is not null) CliConventions.ExistingFile("--model", modelPath, "a .safetensors model file");
        else if (DefaultModelOverride is { } custom)
        {
            if (!File.Exists(custom))
                throw new CliException($"no default model: {DefaultModelVariable} names {custom}, which does not exist; pass --model FILE or unset it.");
            modelPath = custom;
        }
        var dev = device();
        return modelPath is null
            ? (Colorizer.LoadDefault(dev, ownsDevice: true, saturation, maxPixels), BuiltInModelName)
            : (Colorizer.Load(modelPath, dev, ownsDevice: true, saturation, maxPixels), modelPath);
    }

    public static Command Create()
    {
        var inputs = new Argument<string[]>("inputs") { Description = "Image files or folders of images (JPEG, PNG, WebP, BMP, GIF, TIFF); a name starting with '-' goes after `--`.", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--output", "-o") { Description = "Output file (one input) or folder: a folder when it ends with / or already is one (input sub-folders are mirrored in it), else a file. Default: beside each input, named NAME-color.EXT." };
        var model = new Option<string?>("--model") { Description = "Model .safetensors file (default: the shipped model)." };
        var globalFrom = new Option<string?>("--global-from") { Description = "Take the global features (scene, colour mood) from this image instead." };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda, opencl, cuda:N or opencl:N.", DefaultValueFactory = _ => "auto" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace existing output files (inputs are never replaced)." };
        var maxPixels = new Option<int>("--max-pixels") { Description = "Largest working size of the local path, in pixels; bigger photos are processed downscaled (full-resolution lightness is kept).", DefaultValueFactory = _ => Colorizer.DefaultMaxWorkingPixels };
        var saturation = SaturationOption();
        var noMirror = NoMirrorOption();
        var cmd = new Command("colorize", "Colorize grayscale (or colour) photos.") { inputs, output, model, globalFrom, device, overwrite, maxPixels, saturation, noMirror };
        cmd.SetAction(r => Run(r.GetValue(inputs)!, r.GetValue(output), r.GetValue(model), r.GetValue(globalFrom), r.GetValue(device), r.GetValue(overwrite), r.GetValue(maxPixels), r.GetValue(saturation), r.GetValue(noMirror)));
        return cmd;
    }

    /// <summary>`--no-mirror`, shared with `chroma eval`.</summary>
    public static Option<bool> NoMirrorOption() => new("--no-mirror")
    {
        Description = "One network pass instead of two: skip the mirrored pass that models marked average_mirrored (the default model) average with (twice as fast, slightly less accurate).",
    };

    /// <summary>`--saturation`, shared with `chroma eval`.</summary>
    public static Option<float?> SaturationOption() => new("--saturation")
    {
        Description = $"Gain on the predicted colour (a*b*): 1 is the network's own output, 0 gray; default: the model's own (metadata '{ModelFile.SaturationKey}', else 1).",
    };

    /// <summary>Rejects `--max-pixels` and `--saturation` values out of range (before anything is opened or created).</summary>
    public static void CheckOptions(int maxPixels, float? saturation)
    {
        if (maxPixels < 64 * 64) throw new CliException($"--max-pixels must be at least {64 * 64}.");
        CheckSaturation(saturation);
    }

    /// <summary>Rejects a `--saturation` out of [0, <see cref="ModelFile.MaxSaturation"/>] (NaN included).</summary>
    public static void CheckSaturation(float? saturation)
    {
        if (saturation is { } s && !ModelFile.IsValidSaturation(s))
            throw new CliException($"--saturation must be between 0 and {ModelFile.MaxSaturation}.");
    }

    static int Run(string[] inputs, string? output, string? modelPath, string? globalFrom, string? deviceName, bool overwrite, int maxPixels, float? saturation, bool noMirror)
    {
        CheckOptions(maxPixels, saturation);
        // Inputs, output and model first: planning the outputs creates the -o folder, which an error must not leave behind.
        if (globalFrom is not null) CliConventions.ExistingFile("--global-from", globalFrom, "an image file");
        var files = ExpandInputs(inputs);
        CheckOutput(files, output);
        var (colorizer, _) = OpenColorizer(modelPath, () => CliRunner.OpenDevice(deviceName), saturation, maxPixels);
        using var owned = colorizer;
        if (noMirror) colorizer.AverageMirrored = false;
        LoadedImage? global = globalFrom is null ? null : ImageFile.Load(globalFrom);
        var jobs = PlanOutputs(files, output);

        var failures = new List<string>();
        var notes = new List<string>();
        void Process((string Input, string Output) job)
        {
            try
            {
                if (Path.GetFullPath(job.Input) == Path.GetFullPath(job.Output))
                    throw new CliException($"{job.Input}: output would replace the input; choose another -o.");
                if (File.Exists(job.Output) && !overwrite)
                    throw new CliException($"{job.Output}: already exists (pass --overwrite to replace it).");
                if (!File.Exists(job.Input)) throw new CliException($"{job.Input}: not found.");
                if (new FileInfo(job.Input).Length == 0) throw new CliException($"{job.Input}: the file is empty.");
                var image = ImageFile.Load(job.Input);
                if (image.Pages > 1) lock (failures) notes.Add($"{job.Input}: {image.Pages} pages, only the first is colorized");
                string? dir = Path.GetDirectoryName(Path.GetFullPath(job.Output));
                if (dir is not null) Directory.CreateDirectory(dir);
                colorizer.Colorize(image, global).Save(job.Output, overwrite);
            }
            catch (Exception e) when (e is CliException or ImageFormatException or IOException or UnauthorizedAccessException or OutOfMemoryException)
            {
                lock (failures) failures.Add(e is ImageFormatException or CliException ? e.Message : $"{job.Input}: {e.Message}");
            }
        }

        if (jobs.Count == 1)
        {
            Process(jobs[0]);
            if (failures.Count == 0) CliConsole.Out.MarkupLineInterpolated($"{jobs[0].Input} -> {jobs[0].Output}");
        }
        else
        {
            CliConsole.Error.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask($"colorizing {jobs.Count} images", maxValue: jobs.Count);
                    foreach (var job in jobs) { Process(job); task.Increment(1); }
                });
            CliConsole.Out.MarkupLineInterpolated($"colorized {jobs.Count - failures.Count} of {jobs.Count} images");
        }
        foreach (var n in notes) CliConsole.WriteWarning(n);
        foreach (var f in failures) CliConsole.Error.MarkupLineInterpolated($"[red]skipped:[/] {f}");
        return failures.Count == 0 ? CliConventions.Done : CliConventions.SomeFailed;
    }

    /// <summary>An input file and the sub-folder it was found in below its input folder ("" for a file given directly).</summary>
    readonly record struct InputFile(string Path, string SubFolder);

    /// <summary>Files as given; folders expanded to the images inside (recursively, sorted), with their sub-folders.</summary>
    static List<InputFile> ExpandInputs(string[] inputs)
    {
        var files = new List<InputFile>();
        foreach (var input in inputs)
        {
            if (Directory.Exists(input))
            {
                var found = Directory.EnumerateFiles(input, "*", SearchOption.AllDirectories)
                    .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                    .Where(f => !Path.GetFileNameWithoutExtension(f).EndsWith("-color", StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal).ToList();
                if (found.Count == 0) throw new CliException($"{input}: no images found in this folder.");
                files.AddRange(found.Select(f => new InputFile(f, Path.GetDirectoryName(Path.GetRelativePath(input, f)) ?? "")));
            }
            else files.Add(new InputFile(input, "")); // a missing file is reported per file, with the others still done
        }
        return files;
    }

    /// <summary>Whether -o names a folder: it ends with a separator or already is one.</summary>
    static bool IsFolder(string output) =>
        output.EndsWith(Path.DirectorySeparatorChar) || output.EndsWith(Path.AltDirectorySeparatorChar) || Directory.Exists(output);

    /// <summary>Rejects an -o that cannot take the inputs, before anything is loaded or created.</summary>
    static void CheckOutput(List<InputFile> files, string? output)
    {
        if (output is null || IsFolder(output)) return;
        if (files.Count != 1)
            throw new CliException($"-o {output}: names one file, but there are {files.Count} inputs; for a folder, end it with '/'.");
        string ext = Path.GetExtension(output).ToLowerInvariant();
        if (!OutputExtensions.Contains(ext))
            throw new CliException($"-o {output}: {(ext.Length == 0 ? "no extension" : $"'{ext}' is not an image format Chroma writes")}; use .png, .jpg, .webp or .tif (or end -o with '/' for a folder).");
    }

    /// <summary>Pairs each input with its output path; -o DIR mirrors the input sub-folders.</summary>
    static List<(string Input, string Output)> PlanOutputs(List<InputFile> files, string? output)
    {
        static string ColorName(string file)
        {
            string ext = Path.GetExtension(file).ToLowerInvariant();
            if (ext is ".gif" or ".bmp" or "") ext = ".png"; // formats written as PNG
            return Path.GetFileNameWithoutExtension(file) + "-color" + ext;
        }
        if (output is null)
            return files.Select(f => (f.Path, Path.Combine(Path.GetDirectoryName(f.Path) ?? ".", ColorName(f.Path)))).ToList();
        if (!IsFolder(output)) return [(files[0].Path, output)];
        Directory.CreateDirectory(output);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<(string, string)>();
        foreach (var f in files)
        {
            string name = ColorName(f.Path), folder = Path.Combine(output, f.SubFolder), candidate = Path.Combine(folder, name);
            for (int i = 2; !used.Add(candidate); i++) // the same file name given twice from two folders
                candidate = Path.Combine(folder, Path.GetFileNameWithoutExtension(name) + $"-{i}" + Path.GetExtension(name));
            result.Add((f.Path, candidate));
        }
        return result;
    }
}
