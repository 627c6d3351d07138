using Chroma;
using Xunit;


namespace Chroma.Tests;

/// <summary>
/// The two execution paths every op test runs on, by name: "cpu" (the managed SIMD path) and
/// "gpu" (the ILGPU kernels). In CI "gpu" is ILGPU's CPU accelerator, which runs the same
/// kernels on small shapes; with CHROMA_TEST_GPU=cuda (or opencl) it is a real GPU.
/// </summary>
/// <remarks>
/// One accelerator is shared by the whole run: kernels compile once per accelerator, and the
/// simulator runs one kernel at a time, so xunit.runner.json turns test parallelization off.
/// </remarks>
public static class TestDevices
{
    public const string GpuVariable = "CHROMA_TEST_GPU";

    static readonly Lazy<GpuDevice> s_gpu = new(OpenGpu);

    /// <summary>Both paths, as xunit theory data.</summary>
    public static TheoryData<string> Paths => new() { "cpu", "gpu" };

    public static Device Get(string path) => path switch
    {
        "cpu" => CpuDevice.Instance,
        "gpu" => s_gpu.Value,
        _ => throw new ArgumentException($"unknown path '{path}'"),
    };

    static GpuDevice OpenGpu()
    {
        string? want = Environment.GetEnvironmentVariable(GpuVariable);
        if (string.IsNullOrWhiteSpace(want) || want == "ilgpu-cpu") return GpuDevice.CreateSimulator();
        if (!Device.TryParseKind(want, out var kind) || kind is DeviceKind.Auto or DeviceKind.Cpu)
            throw new InvalidOperationException($"{GpuVariable}='{want}': expected cuda, opencl or ilgpu-cpu.");
        var (device, reason) = GpuDevice.TryOpen(kind);
        return device ?? throw new InvalidOperationException($"{GpuVariable}={want}: {reason}");
    }
}
