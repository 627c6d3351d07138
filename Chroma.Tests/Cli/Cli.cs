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
    public sealed record Result(int ExitCode, string Output)
    {
        public override string ToString() => $"exit {ExitCode}:\n{Output}";
    }

    static readonly Lock Gate = new();

    public static Result Run(params string[] args)
    {
        lock (Gate)
        {
            var buffer = new StringWriter(new StringBuilder());
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(buffer),
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
            });
            console.Profile.Width = 240;
            var (oldConsole, oldOut, oldError) = (AnsiConsole.Console, Console.Out, Console.Error);
            AnsiConsole.Console = console;
            Console.SetOut(buffer);
            Console.SetError(buffer);
            try
            {
                int code = CliRunner.Run(CliRunner.CreateRoot(), args);
                return new Result(code, buffer.ToString());
            }
            finally
            {
                AnsiConsole.Console = oldConsole;
                Console.SetOut(oldOut);
                Console.SetError(oldError);
            }
        }
    }
}
