using System.CommandLine;
using System.Globalization;
using Chroma.Model;
using Spectre.Console;

namespace Chroma.Cli;

/// <summary>An error the user can fix: printed as one line, no stack trace.</summary>
public sealed class CliException(string message, int exitCode = 2) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Runs the parsed command and turns expected failures into one clear line and an exit code.</summary>
public static class CliRunner
{
    /// <summary>The `chroma` command and its sub-commands.</summary>
    public static RootCommand CreateRoot() => new("Chroma: automatic photo colorization (Iizuka et al., SIGGRAPH 2016) on a pure C# engine.")
    {
        Commands.ColorizeCommand.Create(),
        Commands.InitCommand.Create(),
        Commands.InfoCommand.Create(),
        Commands.ForwardCommand.Create(),
        Commands.TrainCommand.Create(),
        Commands.EvalCommand.Create(),
        Commands.ExportCommand.Create(),
        Commands.BenchCommand.Create(),
    };

    /// <summary>
    /// Parses and runs <paramref name="args"/> under the invariant culture: numbers on the command
    /// line are written with a decimal point whatever the user's locale (System.CommandLine parses
    /// with the current culture, where "--width 0.25" would read as 25 in, e.g., German), and printed
    /// figures and files look the same everywhere. The caller's culture is restored afterwards.
    /// </summary>
    public static int Run(RootCommand root, string[] args)
    {
        var culture = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        try
        {
            var parse = root.Parse(args);
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (Describe(e) is { } message)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {message}");
            return e is CliException c ? c.ExitCode : 1;
        }
        finally
        {
            CultureInfo.CurrentCulture = culture;
        }
    }

    /// <summary>Expected errors and how to word them; null for bugs, which keep their stack trace.</summary>
    static string? Describe(Exception e) => e switch
    {
        CliException or ModelFileException or ImageFormatException or SafeTensorsException => e.Message,
        // The runtime's own message ("Could not find file 'NAME'.") is shortened; one of ours, which says
        // more (a run with no checkpoint to resume from), is kept.
        FileNotFoundException f => f.FileName is not null && f.Message.Contains(f.FileName, StringComparison.Ordinal) ? $"{f.FileName}: not found" : f.Message,
        DirectoryNotFoundException => e.Message,
        InvalidDataException => e.Message, // datasets and run folders that cannot be used (no images, a bad list file line)
        UnauthorizedAccessException => e.Message,
        IOException => e.Message,
        ArgumentException => e.Message,
        InvalidOperationException when e.Message.StartsWith("Cannot open a", StringComparison.Ordinal) => e.Message,
        OutOfMemoryException => "out of memory: try a smaller --max-pixels, a smaller model or the CPU device",
        _ => null,
    };

    /// <summary>Parses --device text into a device (auto, cpu, cuda, opencl).</summary>
    public static Device OpenDevice(string? text)
    {
        if (!Device.TryParseKind(text ?? "auto", out var kind))
            throw new CliException($"--device '{text}' is not one of auto, cpu, cuda, opencl.");
        return Device.Open(kind);
    }
}
