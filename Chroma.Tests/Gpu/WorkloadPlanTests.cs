using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Gpu;

/// <summary>
/// Structural checks of the GPU path on the real workloads, without a GPU: the network runs under
/// <see cref="GpuDevice.PlanFor"/> with <see cref="GpuTarget.Hopper"/> (132 SMs), so every op chooses its
/// launches for an H100/H200 and the execution log records them without running a kernel.
/// </summary>
/// <remarks>
/// The rule checked: every launch of more than 10^6 multiply-adds (or element operations) has at least
/// 2 groups per SM (264). Work is the plan's estimate; a launch without one is an implicitly grouped
/// element-wise kernel (one thread per element), counted as one operation per thread and as
/// threads / 1024 groups (the fewest CUDA can use).
/// </remarks>
public sealed class WorkloadPlanTests(ITestOutputHelper output)
{
    const long BigLaunch = 1_000_000;

    public static TheoryData<string, double, int> Workloads => new()
    {
        { "training", 0.25, 16 },
        { "training", 1.0, 4 },
        { "inference", 0.25, 1 },
        { "inference", 1.0, 1 },
    };

    /// <summary>
    /// Upper bounds of launches per pass. Counted when the test was written (2026-12-06): a training step
    /// 287 launches at width 0.25 batch 16 and 276 at width 1 batch 4 (the weight gradients' split-K
    /// reductions differ); an inference 59 and 52. The same after backward came to be derived from the
    /// forward's tape (Tape.cs) instead of written by hand. At a few microseconds a launch, 300 launches cost
    /// about 1 ms of the step. The test prints the counts.
    /// </summary>
    static int LaunchBound(string what) => what == "training" ? 300 : 64;

    [Theory, MemberData(nameof(Workloads))]
    public void Every_large_launch_fills_a_132_SM_GPU(string what, double width, int batch)
    {
        var log = Plan(what, width, batch);
        var target = GpuTarget.Hopper;
        var launches = log.Launches.ToList();
        Assert.NotEmpty(launches);
        var starved = launches
            .Select(e => (Event: e, Work: Work(e), Groups: Groups(e, target)))
            .Where(l => l.Work > BigLaunch && l.Groups < target.GroupsToFill)
            .Select(l => $"{l.Event} ({l.Groups} groups)")
            .ToList();
        Assert.True(starved.Count == 0,
            $"{what} width {width} batch {batch}: {starved.Count} launches of > 10^6 operations with < {target.GroupsToFill} groups:\n{string.Join("\n", starved)}");
        // Every explicitly grouped launch announces its plan, so its work is known.
        var unplanned = launches.Where(e => e.Group.Size > 0 && e.Work < 0).Select(e => e.ToString()).ToList();
        Assert.True(unplanned.Count == 0, $"grouped launches without a plan:\n{string.Join("\n", unplanned)}");
        output.WriteLine($"{what} width {width} batch {batch}: {launches.Count} launches");
        Assert.InRange(launches.Count, 10, LaunchBound(what));
    }

    [Theory, MemberData(nameof(Workloads))]
    public void Planning_copies_only_what_the_pass_declares(string what, double width, int batch)
    {
        var log = Plan(what, width, batch);
        var copies = log.Of(GpuEventKind.Upload, GpuEventKind.Download, GpuEventKind.Synchronize).Select(e => e.Name).ToList();
        if (what == "training")
            Assert.Equal(["batch images", "batch targets", "batch labels"], copies);
        else
            Assert.Empty(copies);
    }

    /// <summary>
    /// One pass planned for Hopper after a warm-up pass (which allocates the buffers): a training step
    /// (224x224 crops, batch <paramref name="batch"/>, with labels) or the inference of a 512x512 photo.
    /// </summary>
    static GpuLog Plan(string what, double width, int batch)
    {
        using var gpu = GpuDevice.CreateSimulator();
        using var net = new ColorizationNetwork(new ColorizerConfig(width, 205), gpu, seed: 1);
        var warmUp = new GpuLog();
        var log = new GpuLog();
        if (what == "training")
        {
            using var step = new TrainingStep(net, batch, classification: true);
            var images = new float[batch * 224 * 224];
            var targets = new float[batch * 2 * 112 * 112];
            var labels = Enumerable.Range(0, batch).ToArray();
            using (gpu.PlanFor(GpuTarget.Hopper, warmUp)) step.Run(images, targets, labels);
            using (gpu.PlanFor(GpuTarget.Hopper, log)) step.Run(images, targets, labels);
        }
        else
        {
            using var local = gpu.Zeros(1, 1, 512, 512);
            using var global = gpu.Zeros(1, 1, 224, 224);
            using (gpu.PlanFor(GpuTarget.Hopper, warmUp)) net.Forward(local, global, training: false);
            using (gpu.PlanFor(GpuTarget.Hopper, log)) net.Forward(local, global, training: false);
        }
        return log;
    }

    static long Work(GpuEvent e) => e.Work >= 0 ? e.Work : e.Grid.X;

    static long Groups(GpuEvent e, GpuTarget target) =>
        e.Group.Size > 0 ? e.Groups : (e.Grid.X + target.MaxGroupSize - 1) / target.MaxGroupSize;
}
