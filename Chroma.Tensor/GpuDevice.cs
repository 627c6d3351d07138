using System.Collections.Concurrent;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Chroma;

/// <summary>
/// An ILGPU accelerator (CUDA, OpenCL, or ILGPU's CPU simulator for tests). Tensors are ILGPU
/// buffers; ops launch C# kernels compiled by ILGPU. Kernels are compiled on first use and cached
/// per device (see <see cref="Kernel{T1}(Action{Index1D, T1})"/> and its overloads).
/// </summary>
/// <remarks>
/// Thread safety: launches go to the accelerator's default stream in call order; use one device
/// from one thread at a time (CUDA binds the accelerator to the calling thread on each launch).
/// </remarks>
public sealed partial class GpuDevice : Device
{
    readonly Context _context;
    readonly ConcurrentDictionary<MethodInfo, Delegate> _kernels = new();
    readonly DeviceKind _kind;

    GpuDevice(Context context, Accelerator accelerator, DeviceKind kind)
    {
        _context = context; Accelerator = accelerator; _kind = kind;
    }

    /// <summary>The ILGPU accelerator that runs this device's kernels.</summary>
    public Accelerator Accelerator { get; }

    public override DeviceKind Kind => _kind;

    public override string Name => _kind switch
    {
        DeviceKind.IlgpuCpu => "ILGPU CPU accelerator (simulated GPU, for tests)",
        _ => $"{_kind}: {Accelerator.Name}",
    };

    /// <summary>Largest group size the accelerator supports (1024 on CUDA, small on the simulator).</summary>
    public int MaxGroupSize => Accelerator.MaxNumThreadsPerGroup;

    /// <summary>
    /// ILGPU's CPU accelerator with a small simulated device (4 threads per warp, 4 warps, 2
    /// multiprocessors): runs every GPU kernel on the CPU, slowly, so tests can check them without a GPU.
    /// </summary>
    public static GpuDevice CreateSimulator()
    {
        var context = Context.Create(b => b.CPU(new CPUDevice(4, 4, 2)).EnableAlgorithms());
        var accelerator = context.CreateCPUAccelerator(0);
        return new GpuDevice(context, accelerator, DeviceKind.IlgpuCpu);
    }

    /// <summary>
    /// Tries to open the first usable device of a GPU kind, or the one at <paramref name="index"/> (0-based,
    /// in the runtime's order); returns it or the reason it could not.
    /// </summary>
    public static (GpuDevice? Device, string Reason) TryOpen(DeviceKind kind, int? index = null)
    {
        if (kind == DeviceKind.IlgpuCpu) return (CreateSimulator(), "ILGPU CPU accelerator");
        Context? context = null;
        try
        {
            context = kind switch
            {
                DeviceKind.Cuda => Context.Create(b => b.Cuda().EnableAlgorithms()),
                DeviceKind.OpenCL => Context.Create(b => b.OpenCL().EnableAlgorithms()),
                _ => throw new ArgumentException($"{kind} is not a GPU kind."),
            };
            var devices = new List<ILGPU.Runtime.Device>();
            if (kind == DeviceKind.Cuda) foreach (var d in context.GetCudaDevices()) devices.Add(d);
            else foreach (var d in context.GetCLDevices()) devices.Add(d);
            if (devices.Count == 0)
            {
                context.Dispose();
                return (null, $"no {kind} device found");
            }
            if (index is int i)
            {
                if (i < 0 || i >= devices.Count)
                {
                    context.Dispose();
                    return (null, $"no {kind} device {i}: {devices.Count} found (0 to {devices.Count - 1})");
                }
                devices = [devices[i]];
            }
            var failures = new List<string>();
            foreach (var d in devices)
            {
                try
                {
                    var acc = d.CreateAccelerator(context);
                    return (new GpuDevice(context, acc, kind), $"{kind} device '{d.Name}' opened");
                }
                catch (Exception e) { failures.Add($"'{d.Name}': {e.Message}"); }
            }
            context.Dispose();
            return (null, $"{kind} devices found but none opened ({string.Join("; ", failures)})");
        }
        catch (Exception e)
        {
            context?.Dispose();
            return (null, $"{kind} unavailable ({e.GetType().Name}: {e.Message})");
        }
    }

    [ThreadStatic] static Accelerator? s_bound;

    /// <summary>Makes this accelerator current on the calling thread (CUDA needs it on worker threads).</summary>
    public void Bind()
    {
        if (!ReferenceEquals(s_bound, Accelerator)) { Accelerator.Bind(); s_bound = Accelerator; }
    }

    /// <summary>
    /// Execution log: when set, every launch, host&lt;-&gt;device copy, synchronization and allocation
    /// of this device is recorded in it; null (the default) records nothing.
    /// </summary>
    public GpuLog? Log { get; set; }

    LaunchPlan _planned;
    string? _transferName;
    GpuTarget? _target;

    /// <summary>
    /// The GPU that ops plan their launches for (group sizes, tile and split choices): this
    /// device's own, except inside <see cref="PlanFor"/>.
    /// </summary>
    public GpuTarget Target => _target ??= GpuTarget.Of(this);

    /// <summary>True inside <see cref="PlanFor"/>: launches and copies are logged, not run.</summary>
    public bool PlanOnly { get; private set; }

    /// <summary>
    /// Plans instead of running until the returned scope is disposed: ops choose their launches for
    /// <paramref name="target"/> (e.g. <see cref="GpuTarget.Hopper"/> on a machine without a GPU) and
    /// every launch, copy, synchronization and allocation goes to <paramref name="log"/>, but no kernel
    /// runs and no data moves (buffers are still allocated, so a whole training step can be planned at
    /// its real shapes). Tensor contents are meaningless afterwards. Tests use it to check the launches
    /// of the real workloads without a GPU.
    /// </summary>
    public IDisposable PlanFor(GpuTarget target, GpuLog log)
    {
        if (PlanOnly) throw new InvalidOperationException("GpuDevice.PlanFor: already planning.");
        var (oldTarget, oldLog) = (_target, Log);
        _target = target; Log = log; PlanOnly = true;
        return new Scope(() => { _target = oldTarget; Log = oldLog; PlanOnly = false; });
    }

    /// <summary>
    /// Runs as usual, but ops plan their launches for <paramref name="target"/> until the returned scope
    /// is disposed. Tests use a target with this device's group size and many multiprocessors (e.g. 132,
    /// as on an H100) so that the simulator runs the split-K products and split reductions that a real
    /// GPU's plans contain.
    /// </summary>
    public IDisposable PlanAs(GpuTarget target)
    {
        if (target.MaxGroupSize > MaxGroupSize)
            throw new ArgumentException($"GpuDevice.PlanAs: target '{target.Name}' has groups of {target.MaxGroupSize} threads; this device runs at most {MaxGroupSize}.");
        var old = _target;
        _target = target;
        return new Scope(() => _target = old);
    }

    sealed class Scope(Action end) : IDisposable
    {
        Action? _end = end;
        public void Dispose() { _end?.Invoke(); _end = null; }
    }

    /// <summary>
    /// Announces the next launch's plan, so that the log records its work estimate (a launch whose
    /// kernel, grid and group do not match the announced plan is logged with work -1, "unplanned").
    /// </summary>
    public void Launching(in LaunchPlan plan) { if (Log is not null) _planned = plan; }

    public override void NameNextTransfer(string name) { if (Log is not null) _transferName = name; }

    static string KernelName(Delegate kernel) =>
        kernel.Method.DeclaringType is { } t ? $"{(t.IsNested ? t.DeclaringType!.Name + "." : "")}{t.Name}.{kernel.Method.Name}" : kernel.Method.Name;

    GpuEvent AutoLaunch(string name, Index1D threads)
    {
        long work = _planned.Kernel == name && _planned.Grid.X == threads.X && _planned.Group.Size == 0 ? _planned.Work : -1;
        _planned = default;
        return new GpuEvent(GpuEventKind.Launch, name, new Index3D(threads.X, 1, 1), new Index3D(0, 0, 0), work, 0);
    }

    GpuEvent GroupedLaunch(string name, KernelConfig config)
    {
        long work = _planned.Kernel == name && _planned.Grid == config.GridDim && _planned.Group == config.GroupDim ? _planned.Work : -1;
        _planned = default;
        return new GpuEvent(GpuEventKind.Launch, name, config.GridDim, config.GroupDim, work, 0);
    }

    void LogTransfer(GpuEventKind kind, long bytes, string fallback)
    {
        if (Log is null) return;
        Log.Add(new GpuEvent(kind, _transferName ?? fallback, default, default, -1, bytes));
        _transferName = null;
    }

    MemoryBuffer1D<float, Stride1D.Dense> Allocate(long length, string what)
    {
        LogTransfer(GpuEventKind.Allocate, length * sizeof(float), what);
        return Accelerator.Allocate1D<float>(Math.Max(length, 1));
    }

    public override Tensor Zeros(params int[] shape)
    {
        Bind();
        int n = Tensor.ShapeLength(shape);
        var buffer = Allocate(n, "tensor");
        buffer.MemSetToZero();
        return new Tensor(this, (int[])shape.Clone(), buffer, 0, owner: true);
    }

    public override void Fill(Tensor t, float value)
    {
        Bind();
        if (t.Length == 0) return;
        if (value == 0f) { if (!PlanOnly) t.View.MemSetToZero(); return; }
        Kernel<ArrayView<float>, float>(FillKernel)(t.Length, t.View, value);
    }

    static void FillKernel(Index1D i, ArrayView<float> data, float value) => data[i] = value;

    public override void Copy(Tensor src, Tensor dst)
    {
        if (src.Length != dst.Length) throw new ArgumentException($"Copy: {src.ShapeString} and {dst.ShapeString} differ in length.");
        Bind();
        if (src.Length == 0) return;
        LogTransfer(GpuEventKind.DeviceCopy, src.Length * sizeof(float), "copy");
        if (!PlanOnly) src.View.CopyTo(dst.View);
    }

    public override void Synchronize()
    {
        Bind();
        LogTransfer(GpuEventKind.Synchronize, 0, "synchronize");
        if (!PlanOnly) Accelerator.Synchronize();
    }

    // The span overloads copy straight from / to the caller's memory (no managed temporary).
    internal override void Upload(ReadOnlySpan<float> data, Tensor dst)
    {
        Bind();
        if (data.Length == 0) return;
        LogTransfer(GpuEventKind.Upload, data.Length * sizeof(float), "upload");
        if (!PlanOnly) dst.View.SubView(0, data.Length).CopyFromCPU(data);
    }

    internal override void Download(Tensor src, Span<float> data)
    {
        Bind();
        if (src.Length == 0) return;
        LogTransfer(GpuEventKind.Download, src.Length * sizeof(float), "download");
        if (PlanOnly) data[..(int)src.Length].Clear();
        else src.View.CopyToCPU(data[..(int)src.Length]);
    }

    /// <summary>Copies integers (e.g. class labels) into a device buffer; the log records an upload.</summary>
    public void Upload(ReadOnlySpan<int> data, ArrayView<int> dst)
    {
        Bind();
        if (data.Length == 0) return;
        LogTransfer(GpuEventKind.Upload, data.Length * sizeof(int), "upload");
        if (!PlanOnly) dst.SubView(0, data.Length).CopyFromCPU(data);
    }

    readonly Dictionary<string, MemoryBuffer1D<float, Stride1D.Dense>> _workspaces = [];

    /// <summary>
    /// Scratch memory for an op's temporaries (e.g. convolution columns), kept per
    /// <paramref name="name"/> and grown when needed, so ops neither allocate nor synchronize per
    /// call: launches on the default stream run in order, so a later use of the buffer waits for the
    /// earlier one by construction. Contents are undefined (ops must write before they read); the
    /// returned view is valid until the next request with the same name.
    /// </summary>
    public Tensor Workspace(string name, int length)
    {
        Bind();
        if (!_workspaces.TryGetValue(name, out var buffer) || buffer.Length < length)
        {
            buffer?.Dispose(); // cudaFree waits for pending work on the old buffer
            buffer = Allocate(length, "workspace " + name);
            _workspaces[name] = buffer;
        }
        return new Tensor(this, [length], buffer, 0, owner: false);
    }

    T Cached<T>(Delegate kernel, Func<T> load) where T : Delegate
    {
        Bind();
        return (T)_kernels.GetOrAdd(kernel.Method, _ => load());
    }

    public override void Dispose()
    {
        foreach (var buffer in _workspaces.Values) buffer.Dispose();
        _workspaces.Clear();
        Accelerator.Dispose();
        _context.Dispose();
        base.Dispose();
    }
}
