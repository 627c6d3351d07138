namespace Chroma;

/// <summary>Which execution path a <see cref="Device"/> runs on.</summary>
public enum DeviceKind
{
    /// <summary>Pick the best available: CUDA, then OpenCL, then the CPU path.</summary>
    Auto,
    /// <summary>The managed SIMD CPU path (fast; what apps without a GPU use).</summary>
    Cpu,
    /// <summary>ILGPU kernels on an NVIDIA GPU.</summary>
    Cuda,
    /// <summary>ILGPU kernels on an OpenCL GPU (AMD, Intel).</summary>
    OpenCL,
    /// <summary>ILGPU kernels on ILGPU's CPU accelerator: slow, for testing the GPU kernels without a GPU.</summary>
    IlgpuCpu,
}

/// <summary>
/// Where tensors live and ops run. Ops look at their inputs' device and run the matching
/// implementation: <see cref="CpuDevice"/> (managed SIMD) or <see cref="GpuDevice"/> (ILGPU kernels).
/// </summary>
public abstract class Device : IDisposable
{
    /// <summary>Environment variable that forces a device when <see cref="DeviceKind.Auto"/> is asked for.</summary>
    public const string EnvironmentVariable = "CHROMA_DEVICE";

    public abstract DeviceKind Kind { get; }

    /// <summary>Human-readable name, e.g. "CPU (AVX2, 2 cores)" or "CUDA: NVIDIA H100".</summary>
    public abstract string Name { get; }

    /// <summary>Why this device was chosen (filled by <see cref="Open"/>).</summary>
    public string SelectionReason { get; internal set; } = "";

    /// <summary>A new zero-filled tensor.</summary>
    public abstract Tensor Zeros(params int[] shape);

    /// <summary>A new tensor holding a copy of <paramref name="data"/>.</summary>
    public Tensor FromArray(ReadOnlySpan<float> data, params int[] shape)
    {
        var t = Zeros(shape);
        t.CopyFrom(data);
        return t;
    }

    /// <summary>Sets every element of <paramref name="t"/> to <paramref name="value"/>.</summary>
    public abstract void Fill(Tensor t, float value);

    /// <summary>Copies <paramref name="src"/> into <paramref name="dst"/> (same length, same device).</summary>
    public abstract void Copy(Tensor src, Tensor dst);

    /// <summary>Waits until all queued work has finished.</summary>
    public virtual void Synchronize() { }

    /// <summary>
    /// Names the next host&lt;-&gt;device copy or allocation in a GPU's execution log (e.g. "batch images",
    /// "loss readback"), so tests can tell declared copies from stray ones; nothing on the CPU path.
    /// </summary>
    public virtual void NameNextTransfer(string name) { }

    internal abstract void Upload(ReadOnlySpan<float> data, Tensor dst);
    internal abstract void Download(Tensor src, Span<float> data);

    public virtual void Dispose() { GC.SuppressFinalize(this); }

    public override string ToString() => Name;

    /// <summary>Parses "auto", "cpu", "cuda", "opencl" or "ilgpu-cpu" (case-insensitive).</summary>
    public static bool TryParseKind(string? text, out DeviceKind kind)
    {
        kind = DeviceKind.Auto;
        switch (text?.Trim().ToLowerInvariant())
        {
            case "auto": kind = DeviceKind.Auto; return true;
            case "cpu": kind = DeviceKind.Cpu; return true;
            case "cuda": kind = DeviceKind.Cuda; return true;
            case "opencl": kind = DeviceKind.OpenCL; return true;
            case "ilgpu-cpu": kind = DeviceKind.IlgpuCpu; return true;
            default: return false;
        }
    }

    /// <summary>
    /// Parses a device name: a kind (<see cref="TryParseKind"/>), or "cuda:N" / "opencl:N" for the N-th
    /// device of that kind (0-based).
    /// </summary>
    public static bool TryParse(string? text, out DeviceKind kind, out int? index)
    {
        index = null;
        string t = text?.Trim() ?? "";
        int colon = t.IndexOf(':');
        if (colon < 0) return TryParseKind(t, out kind);
        if (!TryParseKind(t[..colon], out kind) || kind is not (DeviceKind.Cuda or DeviceKind.OpenCL)) return false;
        if (!int.TryParse(t[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n)) return false;
        index = n;
        return true;
    }

    /// <summary>
    /// Opens a device. <see cref="DeviceKind.Auto"/> honours <c>CHROMA_DEVICE</c> if set, else tries CUDA,
    /// then OpenCL, then falls back to the CPU path; <see cref="SelectionReason"/> says what was tried.
    /// Asking for a specific GPU kind that cannot be opened throws with the reason.
    /// </summary>
    public static Device Open(DeviceKind kind = DeviceKind.Auto, int? index = null)
    {
        if (kind == DeviceKind.Auto)
        {
            string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(env))
            {
                if (!TryParseKind(env, out var forced))
                    throw new ArgumentException($"{EnvironmentVariable}='{env}' is not one of auto, cpu, cuda, opencl, ilgpu-cpu.");
                if (forced != DeviceKind.Auto)
                {
                    var d = Open(forced);
                    d.SelectionReason = $"forced by {EnvironmentVariable}={env}";
                    return d;
                }
            }
            var notes = new List<string>();
            foreach (var gpuKind in new[] { DeviceKind.Cuda, DeviceKind.OpenCL })
            {
                var (gpu, why) = GpuDevice.TryOpen(gpuKind);
                if (gpu is not null) { gpu.SelectionReason = $"auto: {why}"; return gpu; }
                notes.Add(why);
            }
            var cpu = CpuDevice.Instance;
            cpu.SelectionReason = "auto: no usable GPU (" + string.Join("; ", notes) + "), using the CPU path";
            return cpu;
        }
        if (kind == DeviceKind.Cpu)
        {
            var cpu = CpuDevice.Instance;
            cpu.SelectionReason = "requested";
            return cpu;
        }
        var (device, reason) = GpuDevice.TryOpen(kind, index);
        if (device is null) throw new InvalidOperationException($"Cannot open a {kind} device: {reason}");
        device.SelectionReason = "requested: " + reason;
        return device;
    }
}
