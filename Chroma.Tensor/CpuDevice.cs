using System.Runtime.Intrinsics;

namespace Chroma;

/// <summary>
/// The managed CPU path: tensors are float arrays, ops run SIMD C# (Vector512 / Vector256 with a
/// scalar fallback) split over all cores. One shared instance; it holds no native resources.
/// </summary>
public sealed class CpuDevice : Device
{
    /// <summary>The process-wide CPU device.</summary>
    public static CpuDevice Instance { get; } = new();

    CpuDevice() { }

    public override DeviceKind Kind => DeviceKind.Cpu;

    public override string Name => $"CPU ({SimdLevel}, {Environment.ProcessorCount} cores)";

    /// <summary>The widest vector instructions the CPU path uses on this machine.</summary>
    public static string SimdLevel =>
        Vector512.IsHardwareAccelerated ? "AVX-512" :
        Vector256.IsHardwareAccelerated ? "AVX2" :
        Vector128.IsHardwareAccelerated ? "128-bit SIMD" : "scalar";

    public override Tensor Zeros(params int[] shape) =>
        new(this, (int[])shape.Clone(), new float[Tensor.ShapeLength(shape)], 0, owner: true);

    public override void Fill(Tensor t, float value) => t.Span.Fill(value);

    public override void Copy(Tensor src, Tensor dst)
    {
        if (src.Length != dst.Length) throw new ArgumentException($"Copy: {src.ShapeString} and {dst.ShapeString} differ in length.");
        src.Span.CopyTo(dst.Span);
    }

    internal override void Upload(ReadOnlySpan<float> data, Tensor dst) => data.CopyTo(dst.Span);
    internal override void Download(Tensor src, Span<float> data) => src.Span.CopyTo(data);

    public override void Dispose() { /* shared instance: nothing to free */ }
}
