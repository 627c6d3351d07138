using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Chroma.Kernels;

namespace Chroma.Benchmarks;

/// <summary>
/// Square float32 product C[N,N] = A[N,N] * B[N,N] on the CPU path (all cores), as in
/// Chroma.Benchmarks/peer/gemm_torch.py. The GFLOP/s column is 2 N^3 / mean time.
/// </summary>
[Config(typeof(GemmConfig))]
public class GemmBenchmark
{
    float[] _a = [], _b = [], _c = [];

    [Params(256, 512, 1024)]
    public int N { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _a = new float[N * N]; _b = new float[N * N]; _c = new float[N * N];
        for (int i = 0; i < _a.Length; i++) { _a[i] = rng.NextSingle() - 0.5f; _b[i] = rng.NextSingle() - 0.5f; }
    }

    [Benchmark]
    public void GemmCpu() => Gemm.Cpu(false, false, N, N, N, 1f, _a, 0, N, _b, 0, N, 0f, _c, 0, N);

    sealed class GemmConfig : ManualConfig
    {
        public GemmConfig() => AddColumn(new GflopsColumn());
    }

    /// <summary>Throughput of a square product of side <c>N</c>: 2 N^3 floating-point operations per call.</summary>
    sealed class GflopsColumn : IColumn
    {
        public string Id => nameof(GflopsColumn);
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "2 N^3 / mean time, in 10^9 floating-point operations per second";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats is null || benchmarkCase.Parameters["N"] is not int n) return "-";
            return (2.0 * n * n * n / stats.Mean).ToString("F1");   // flops per ns = GFLOP/s
        }
    }
}
