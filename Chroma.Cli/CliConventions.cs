using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;
using Chroma.Model;
using Spectre.Console;

namespace Chroma.Cli;

/// <summary>
/// Where `chroma` writes: results on <see cref="Out"/> (stdout), errors, warnings and progress on
/// <see cref="Error"/> (stderr), so `chroma eval ... > report.txt` keeps only the results. Tests
/// point both at buffers.
/// </summary>
public static class CliConsole
{
    static IAnsiConsole? s_error;

    public static IAnsiConsole Out => AnsiConsole.Console;

    public static IAnsiConsole Error
    {
        get
        {
            if (s_error is null)
            {
                s_error = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
                // Redirected, Spectre wraps at 80 columns; an error stays one line for scripts and logs.
                if (Console.IsErrorRedirected) s_error.Profile.Width = 1000;
            }
            return s_error;
        }
        set => s_error = value;
    }

    /// <summary>"error: MESSAGE" on stderr.</summary>
    public static void WriteError(string message) => Error.MarkupLineInterpolated($"[red]error:[/] {message}");

    /// <summary>"warning: MESSAGE" on stderr.</summary>
    public static void WriteWarning(string message) => Error.MarkupLineInterpolated($"[yellow]warning:[/] {message}");
}

/// <summary>
/// The conventions every `chroma` command follows, applied once to the whole command tree
/// (<see cref="Apply"/>) and checked on every parse (<see cref="UsageError"/>), so that a new command
/// or option gets them without code of its own:
/// <list type="bullet">
/// <item>numbers are parsed with a decimal point only ("1,5" is an error, not 15) and a value that does
/// not parse is one line naming the option, the value and the form expected;</item>
/// <item>`--device` takes auto, cpu, cuda, opencl, cuda:N or opencl:N, checked before anything is done,
/// and completes in shells;</item>
/// <item>an unknown option is a usage error even where an argument could take it as a value
/// (`chroma colorize --overwirte x.jpg`); a path starting with '-' goes after `--`.</item>
/// </list>
/// Exit codes: <see cref="ExitCodes"/>.
/// </summary>
public static class CliConventions
{
    /// <summary>The exit codes, as `chroma --help` and the README give them.</summary>
    public const string ExitCodes = "Exit codes: 0 all done; 1 some inputs failed (the others were done) or the run failed while working; 2 usage error (bad option, value or input; nothing was done); 130 interrupted.";

    public const int Done = 0, SomeFailed = 1, Usage = 2, Interrupted = 130;

    /// <summary>Device names `--device` accepts (and completes).</summary>
    public static readonly string[] DeviceNames = ["auto", "cpu", "cuda", "opencl"];

    /// <summary>Sets number parsers, the device check and completions on every option of the tree.</summary>
    public static void Apply(Command command)
    {
        foreach (var option in command.Options) ApplyTo(option);
        foreach (var sub in command.Subcommands) Apply(sub);
    }

    static void ApplyTo(Option option)
    {
        switch (option)
        {
            case Option<int> o: o.CustomParser = r => Number<int>(r); break;
            case Option<int?> o: o.CustomParser = r => Number<int>(r); break;
            case Option<long> o: o.CustomParser = r => Number<long>(r); break;
            case Option<long?> o: o.CustomParser = r => Number<long>(r); break;
            case Option<float> o: o.CustomParser = r => Number<float>(r); break;
            case Option<float?> o: o.CustomParser = r => Number<float>(r); break;
            case Option<double> o: o.CustomParser = r => Number<double>(r); break;
            case Option<double?> o: o.CustomParser = r => Number<double>(r); break;
            case Option<double[]> o: o.CustomParser = r => r.Tokens.Select(t => Number<double>(r, t.Value)).ToArray(); break;
        }
        if (option is Option<string> device && option.Name == "--device")
        {
            device.CompletionSources.Add(DeviceNames.Concat(["cuda:0", "opencl:0"]).ToArray());
            device.Validators.Add(r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "auto";
                if (!Device.TryParse(text, out _, out _))
                    r.AddError($"--device: \"{text}\" is not a device; use auto, cpu, cuda, opencl, cuda:N or opencl:N");
            });
        }
    }

    /// <summary>
    /// Parses an option's number with the invariant culture and no thousands separators; on failure
    /// adds one error naming the option, the value and the form expected.
    /// </summary>
    static T Number<T>(ArgumentResult r, string? text = null) where T : INumber<T>
    {
        text ??= r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
        string name = r.Parent is OptionResult o ? o.Option.Name : r.Argument.Name;
        bool whole = typeof(T) == typeof(int) || typeof(T) == typeof(long);
        var style = whole ? NumberStyles.AllowLeadingSign : NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent;
        if (T.TryParse(text, style, CultureInfo.InvariantCulture, out var value)) return value;
        string expected = whole ? "a whole number" : "a number";
        string hint = !whole && text.Count(c => c == ',') == 1 && T.TryParse(text.Replace(',', '.'), style, CultureInfo.InvariantCulture, out _)
            ? $"; use a dot: {text.Replace(',', '.')}"
            : whole && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _) ? $"; {name} takes whole numbers only"
            : "";
        r.AddError($"{name}: \"{text}\" is not {expected}{hint}");
        return T.Zero;
    }

    /// <summary>
    /// The usage error of a parse, as one line, or null: unknown options (also those an argument
    /// would have taken as a value), unexpected arguments, missing required options and values that
    /// do not parse.
    /// </summary>
    public static string? UsageError(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        Token? previous = null;
        foreach (var token in parse.Tokens)
        {
            if (token.Type == TokenType.DoubleDash) break;
            bool takesValue = previous is { Type: TokenType.Option } p && FindOption(command, p.Value) is { } o
                && o.Arity.MaximumNumberOfValues > 0 && o.ValueType != typeof(bool);
            if (token.Type == TokenType.Argument && token.Value.Length > 1 && token.Value[0] == '-' && !takesValue)
                return UnknownOption(command, token.Value);
            previous = token;
        }
        foreach (var token in parse.UnmatchedTokens)
            return token.StartsWith('-') ? UnknownOption(command, token) : $"{CommandPath(command)}: unexpected argument '{token}'";
        if (parse.Errors.Count > 0)
        {
            string message = parse.Errors[0].Message;
            // System.CommandLine's wording for a missing required option, in the form of the others.
            var required = System.Text.RegularExpressions.Regex.Match(message, "^Option '(.+)' is required\\.$");
            return required.Success ? $"{CommandPath(command)}: {required.Groups[1].Value} is required" : message;
        }
        return null;
    }

    static string UnknownOption(Command command, string token)
    {
        string name = token.Split('=', 2)[0];
        var known = AllOptions(command).SelectMany(o => o.Aliases.Prepend(o.Name)).Distinct().ToList();
        string? closest = known.Select(k => (k, d: Distance(k, name))).Where(x => x.d <= Math.Max(2, name.Length / 4)).OrderBy(x => x.d).Select(x => x.k).FirstOrDefault();
        string suggestion = closest is null ? "" : $" (did you mean {closest}?)";
        return $"{CommandPath(command)}: unknown option '{name}'{suggestion}; a file name starting with '-' goes after `--`";
    }

    static Option? FindOption(Command command, string name) =>
        AllOptions(command).FirstOrDefault(o => o.Name == name || o.Aliases.Contains(name));

    static IEnumerable<Option> AllOptions(Command command)
    {
        for (Symbol? s = command; s is Command c; s = c.Parents.FirstOrDefault())
            foreach (var o in c.Options) yield return o;
    }

    static string CommandPath(Command command) => command.Parents.FirstOrDefault() is Command parent ? CommandPath(parent) + " " + command.Name : "chroma";

    /// <summary>Levenshtein distance (option names are short).</summary>
    static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    /// <summary>Rejects a path that is a folder where a file is expected, with the option's name.</summary>
    public static string ExistingFile(string option, string path, string what = "a file")
    {
        if (Directory.Exists(path)) throw new CliException($"{option} {path}: is a folder; give {what}.");
        if (!File.Exists(path)) throw new CliException($"{option} {path}: not found.");
        if (new FileInfo(path).Length == 0) throw new CliException($"{option} {path}: the file is empty.");
        return path;
    }
}
