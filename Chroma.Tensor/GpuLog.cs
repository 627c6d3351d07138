using ILGPU;
using ILGPU.Runtime;

namespace Chroma;

/// <summary>What a <see cref="GpuDevice"/> did: one entry per launch, copy, synchronization or allocation.</summary>
public enum GpuEventKind
{
    /// <summary>A kernel launch (<see cref="GpuEvent.Grid"/>, <see cref="GpuEvent.Group"/>, <see cref="GpuEvent.Work"/>).</summary>
    Launch,
    /// <summary>Host to device copy of <see cref="GpuEvent.Bytes"/> bytes.</summary>
    Upload,
    /// <summary>Device to host copy of <see cref="GpuEvent.Bytes"/> bytes (waits for the device).</summary>
    Download,
    /// <summary>Device to device copy (no host round trip; listed so that it can be counted).</summary>
    DeviceCopy,
    /// <summary>An explicit wait for the device (<see cref="Device.Synchronize"/>).</summary>
    Synchronize,
    /// <summary>A device allocation of <see cref="GpuEvent.Bytes"/> bytes (on CUDA, cudaMalloc; freeing may wait).</summary>
    Allocate,
}

/// <summary>
/// One event of the execution log. For a launch: <see cref="Name"/> is "Type.Method" of the kernel;
/// <see cref="Grid"/> and <see cref="Group"/> are the numbers of groups and threads per group for
/// an explicitly grouped kernel; for an implicitly grouped one (ILGPU picks the group size)
/// <see cref="Grid"/> is the number of threads and <see cref="Group"/> is 0.
/// <see cref="Work"/> is the plan's estimate of multiply-adds (or element operations), -1 when
/// the launch had no plan.
/// </summary>
public readonly record struct GpuEvent(GpuEventKind Kind, string Name, Index3D Grid, Index3D Group, long Work, long Bytes)
{
    /// <summary>Groups of a launch (threads for an implicitly grouped one).</summary>
    public long Groups => (long)Grid.X * Grid.Y * Grid.Z;

    public override string ToString() => Kind switch
    {
        GpuEventKind.Launch when Group.Size == 0 => $"launch {Name} threads={Grid.X} work={Work}",
        GpuEventKind.Launch => $"launch {Name} grid=({Grid.X},{Grid.Y},{Grid.Z}) group=({Group.X},{Group.Y},{Group.Z}) work={Work}",
        _ => $"{Kind.ToString().ToLowerInvariant()} {Name} {Bytes} B",
    };
}

/// <summary>
/// Execution log of a <see cref="GpuDevice"/>: set <see cref="GpuDevice.Log"/> to an instance to
/// record, null (the default) to record nothing. Off, it costs one null check per launch.
/// Copies and allocations are recorded with the name their caller gave (see
/// <see cref="GpuDevice.NameNextTransfer"/>), so a test can check that a training step makes only
/// the copies it declares.
/// </summary>
public sealed class GpuLog
{
    readonly List<GpuEvent> _events = [];

    /// <summary>Every event since the last <see cref="Clear"/>, in order.</summary>
    public IReadOnlyList<GpuEvent> Events => _events;

    public IEnumerable<GpuEvent> Launches => _events.Where(e => e.Kind == GpuEventKind.Launch);

    /// <summary>Events of the given kinds.</summary>
    public IEnumerable<GpuEvent> Of(params GpuEventKind[] kinds) => _events.Where(e => kinds.Contains(e.Kind));

    public int Count(GpuEventKind kind) => _events.Count(e => e.Kind == kind);

    public void Clear() => _events.Clear();

    internal void Add(in GpuEvent e) => _events.Add(e);

    /// <summary>One line per event, for a failing test's message or `chroma bench --log`.</summary>
    public override string ToString() => string.Join(Environment.NewLine, _events);
}

/// <summary>
/// A GPU as launch planning sees it. Plans are plain functions of shapes and a target, so a test
/// can check the launches of the real workloads on an H100 without one.
/// </summary>
/// <param name="Multiprocessors">Streaming multiprocessors (132 on an H100 SXM / H200).</param>
/// <param name="MaxGroupSize">Most threads per group (1024 on CUDA).</param>
/// <param name="WarpSize">Threads per warp (32 on NVIDIA).</param>
public readonly record struct GpuTarget(string Name, int Multiprocessors, int MaxGroupSize, int WarpSize)
{
    /// <summary>An NVIDIA H100 / H200 (Hopper, 132 SMs), the GPUs this project is measured on.</summary>
    public static GpuTarget Hopper => new("NVIDIA H100/H200", 132, 1024, 32);

    /// <summary>The target a device's launches are planned for.</summary>
    public static GpuTarget Of(GpuDevice gpu) =>
        new(gpu.Accelerator.Name, Math.Max(1, gpu.Accelerator.NumMultiprocessors), gpu.MaxGroupSize, Math.Max(1, gpu.Accelerator.WarpSize));

    /// <summary>Groups a launch should have to keep every multiprocessor busy: two per multiprocessor.</summary>
    public int GroupsToFill => 2 * Multiprocessors;

    // The group sizes of explicitly grouped kernels, in one place: a 1-D group of a power of two
    // threads (the reductions: a tree in shared memory halves it) and a square S x S group (the
    // tiled products). Both are plain functions of the target, so plans stay pure.

    /// <summary>
    /// Threads of a 1-D group that reduces by a tree in shared memory: the largest power of two no larger
    /// than <paramref name="limit"/> (the kernel's shared array, e.g. <c>Reductions.MaxGroup</c> = 256) and
    /// <see cref="MaxGroupSize"/>, and no larger than the first power of two covering <paramref name="items"/>
    /// (a group of 8 for 5 values). 256 on CUDA (1024 threads); 16 on ILGPU's CPU accelerator.
    /// </summary>
    public int PowerOfTwoGroup(int limit, long items = long.MaxValue)
    {
        int most = Math.Min(limit, MaxGroupSize), group = 1;
        while (group <= most / 2 && group < items) group *= 2;
        return group;
    }

    /// <summary>
    /// Side S of a square S x S group of a tiled product: the largest power of two no larger than
    /// <paramref name="maxSide"/> (the kernel's shared tiles are sized for it) with S*S &lt;= <see cref="MaxGroupSize"/>.
    /// 16 on CUDA (16 x 16 = 256 threads of 1024); 4 on ILGPU's CPU accelerator (16 threads).
    /// </summary>
    public int SquareGroupSide(int maxSide)
    {
        int side = 1;
        while (side <= maxSide / 2) side *= 2;
        while (side > 1 && side * side > MaxGroupSize) side /= 2;
        return side;
    }
}

/// <summary>
/// One planned launch of an explicitly grouped kernel: which kernel, its grid and group, and an
/// estimate of its work (multiply-adds). Ops compute their plans with pure functions, announce them
/// with <see cref="GpuDevice.Launching"/> and launch with <see cref="Config"/>.
/// </summary>
public readonly record struct LaunchPlan(string Kernel, Index3D Grid, Index3D Group, long Work, int SharedFloats = 0)
{
    public long Groups => (long)Grid.X * Grid.Y * Grid.Z;

    /// <summary>The ILGPU launch configuration (dynamic shared memory of <see cref="SharedFloats"/> floats when non-zero).</summary>
    public KernelConfig Config => SharedFloats > 0
        ? new KernelConfig(Grid, Group, SharedMemoryConfig.RequestDynamic<float>(SharedFloats))
        : new KernelConfig(Grid, Group);

    public override string ToString() =>
        $"{Kernel} grid=({Grid.X},{Grid.Y},{Grid.Z}) group=({Group.X},{Group.Y},{Group.Z}) work={Work}";
}
