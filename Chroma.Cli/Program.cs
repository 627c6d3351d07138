using Chroma.Cli;

// `chroma`: colorize photos, train and evaluate models, inspect devices and weight files.
return CliRunner.Run(CliRunner.CreateRoot(), args);
