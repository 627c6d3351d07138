using BenchmarkDotNet.Running;

// Entry point for every benchmark in this assembly, e.g.
//   dotnet run -c Release --project Chroma.Benchmarks -- --filter '*Gemm*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
