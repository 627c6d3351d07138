using BenchmarkDotNet.Attributes;
using Chroma.Kernels;
using Chroma.Model;
using Chroma.Training;

namespace Chroma.Benchmarks;

/// <summary>
/// The whole network on the CPU path, as PyTorch is timed by Chroma.Benchmarks/peer/network_torch.py:
/// inference of one 512x512 photo (local path 512x512, global path 224x224, batch norm in
/// inference mode) and one training step at 224x224 (forward, joint loss, backward, ADADELTA).
/// </summary>
[MemoryDiagnoser]
public class NetworkBenchmark
{
    ColorizationNetwork _network = null!;
    Tensor _local = null!, _global = null!, _train = null!, _target = null!, _sq = null!, _acc = null!;
    JointLoss _loss = null!;
    int[] _labels = null!;

    [Params(0.25, 1.0)]
    public double Width;

    /// <summary>Images per training step (as the PyTorch peer's figures in docs/BENCHMARKS.md: 16 at width 0.25, 4 at 1.0).</summary>
    int TrainBatch => Width >= 1.0 ? 4 : 16;

    [GlobalSetup]
    public void Setup()
    {
        var cpu = CpuDevice.Instance;
        _network = new ColorizationNetwork(new ColorizerConfig(Width, 205), cpu, seed: 1);
        var rng = new Random(2);
        float[] Random(int n) { var v = new float[n]; for (int i = 0; i < n; i++) v[i] = (float)rng.NextDouble(); return v; }
        _local = cpu.FromArray(Random(512 * 512), 1, 1, 512, 512);
        _global = cpu.FromArray(Random(224 * 224), 1, 1, 224, 224);
        _train = cpu.FromArray(Random(TrainBatch * 224 * 224), TrainBatch, 1, 224, 224);
        _target = cpu.FromArray(Random(TrainBatch * 2 * 112 * 112), TrainBatch, 2, 112, 112);
        _labels = Enumerable.Range(0, TrainBatch).Select(i => i % 205).ToArray();
        _sq = cpu.Zeros(_network.Parameters.Values.Length);
        _acc = cpu.Zeros(_network.Parameters.Values.Length);
        _loss = new JointLoss();
    }

    [Benchmark(Description = "inference 512x512")]
    public Tensor Inference512() => _network.Forward(_local, _global, training: false).Ab;

    [Benchmark(Description = "training step 224x224")]
    public float TrainingStep()
    {
        _network.Parameters.ZeroGradients();
        var (ab, logits) = _network.Forward(_train, null, training: true);
        var terms = _loss.Backward(_network, ab, logits, _target, _labels);
        Adadelta.Step(_network.Parameters.Values, _network.Parameters.Gradients, _sq, _acc);
        return terms.Total;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _network.Dispose(); _loss.Dispose();
        foreach (var t in new[] { _local, _global, _train, _target, _sq, _acc }) t.Dispose();
    }
}
