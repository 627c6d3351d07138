using System.Text;
using Chroma.Cli;
using Spectre.Console;

namespace Chroma.Tests.Cli;

/// <summary>
/// Runs `chroma` in-process and captures what it prints: Spectre.Console's AnsiConsole is pointed
/// at a non-interactive, colourless console writing to a buffer (as when output is redirected to a
/// file), Console.Out and Console.Error too; both are restored afterwards, so no state leaks
/// between tests. Tests do not run in parallel (xunit.runner.json), which the global redirection needs.
/// </summary>
static class Cli
{
    /// <summary>What a run printed: <see cref="Stdout"/> (results), <see cref="Stderr"/> (errors, warnings, progress); <see cref="Output"/> is both.</summary>
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;

        public override string ToString() => $"exit {ExitCode}:\n--- stdout\n{Stdout}--- stderr\n{Stderr}";
    }

    static readonly Lock Gate = new();

    public static Result Run(params string[] args)
    {
        lock (Gate)
        {
            var stdout = new StringWriter(new StringBuilder());
            var stderr = new StringWriter(new StringBuilder());
            static IAnsiConsole Plain(TextWriter writer)
            {
                var console = AnsiConsole.Create(new AnsiConsoleSettings
                {
                    Out = new AnsiConsoleOutput(writer),
                    Ansi = AnsiSupport.No,
                    ColorSystem = ColorSystemSupport.NoColors,
                    Interactive = InteractionSupport.No,
                });
                console.Profile.Width = 240;
                return console;
            }
            var (oldConsole, oldErrorConsole, oldOut, oldError) = (AnsiConsole.Console, CliConsole.Error, Console.Out, Console.Error);
            AnsiConsole.Console = Plain(stdout);
            CliConsole.Error = Plain(stderr);
            Console.SetOut(stdout);
            Console.SetError(stderr);
            try
            {
                int code = CliRunner.Run(CliRunner.CreateRoot(), args);
                return new Result(code, stdout.ToString(), stderr.ToString());
            }
            finally
            {
                AnsiConsole.Console = oldConsole;
                CliConsole.Error = oldErrorConsole;
                Console.SetOut(oldOut);
                Console.SetError(oldError);
            }
        }
    }
}
