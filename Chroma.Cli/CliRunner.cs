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
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("Chroma: automatic photo colorization (Iizuka et al., SIGGRAPH 2016) on a pure C# engine.\n" + CliConventions.ExitCodes)
        {
            Commands.ColorizeCommand.Create(),
            Commands.InitCommand.Create(),
            Commands.InfoCommand.Create(),
            Commands.ForwardCommand.Create(),
            Commands.TrainCommand.Create(),
            Commands.EvalCommand.Create(),
            Commands.ExportCommand.Create(),
            Commands.BenchCommand.Create(),
            Commands.ServeCommand.Create(),
        };
        foreach (var command in root.Subcommands) command.Description += "\n" + CliConventions.ExitCodes;
        CliConventions.Apply(root);
        return root;
    }

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
            // Redirected, Spectre wraps at 80 columns; a result line ("a.jpg -> a-color.jpg") stays one line for scripts.
            if (Console.IsOutputRedirected && CliConsole.Out.Profile.Width < 1000) CliConsole.Out.Profile.Width = 1000;
            var parse = root.Parse(args);
            if (CliConventions.UsageError(parse) is { } usage)
            {
                CliConsole.WriteError(usage);
                string command = string.Join(' ', parse.CommandResult.Command is RootCommand ? ["chroma"] : new[] { "chroma", parse.CommandResult.Command.Name });
                CliConsole.Error.MarkupLineInterpolated($"see `{command} --help`");
                return CliConventions.Usage;
            }
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (Describe(e) is { } message)
        {
            CliConsole.WriteError(message);
            return ExitCode(e);
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

    /// <summary>
    /// Exit code of an error that stopped a command: a <see cref="CliException"/> carries its own;
    /// problems with what the user gave (files, models, data, values) stop the command before it
    /// does anything and are usage errors (2); failures while working (I/O, memory) are 1.
    /// </summary>
    static int ExitCode(Exception e) => e switch
    {
        CliException c => c.ExitCode,
        ModelFileException or ImageFormatException or SafeTensorsException or FileNotFoundException or DirectoryNotFoundException
            or InvalidDataException or ArgumentException or InvalidOperationException => CliConventions.Usage,
        _ => CliConventions.SomeFailed,
    };

    /// <summary>Parses --device text into a device (auto, cpu, cuda, opencl, cuda:N, opencl:N).</summary>
    public static Device OpenDevice(string? text)
    {
        if (!Device.TryParse(text ?? "auto", out var kind, out int? index))
            throw new CliException($"--device: \"{text}\" is not a device; use auto, cpu, cuda, opencl, cuda:N or opencl:N");
        return Device.Open(kind, index);
    }
}
