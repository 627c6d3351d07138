using System.CommandLine;
using Chroma.Cli;
using Chroma.Cli.Commands;

// `chroma`: colorize photos, train and evaluate models, inspect devices and weight files.
var root = new RootCommand("Chroma: automatic photo colorization (Iizuka et al., SIGGRAPH 2016) on a pure C# engine.")
{
    ColorizeCommand.Create(),
    InitCommand.Create(),
    InfoCommand.Create(),
    ForwardCommand.Create(),
    TrainCommand.Create(),
    EvalCommand.Create(),
};
return CliRunner.Run(root, args);
