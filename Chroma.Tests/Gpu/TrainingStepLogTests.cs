using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Gpu;

/// <summary>
/// A training step on the GPU path, run (not planned) on the test GPU and read from its execution log:
/// after one warm-up step it allocates nothing, waits for nothing and copies only what it declares
/// (the batch's images, targets and labels up; the loss down, only when it is read).
/// </summary>
public sealed class TrainingStepLogTests
{
    const int Batch = 2, Size = 64, Classes = 3;

    static (float[] Images, float[] Targets, int[] Labels) Data(int seed)
    {
        var images = TestData.ToFloat(TestData.Uniform(seed, Batch * Size * Size, 0, 1));
        var targets = TestData.ToFloat(TestData.Uniform(seed + 1, Batch * 2 * (Size / 2) * (Size / 2), -0.5, 0.5));
        return (images, targets, [2, 0]);
    }

    [Fact]
    public void After_warm_up_a_step_allocates_waits_and_copies_nothing_undeclared()
    {
        var gpu = (GpuDevice)TestDevices.Get("gpu");
        using var net = new ColorizationNetwork(new ColorizerConfig(0.0625, Classes, 1, Size), gpu, seed: 7);
        using var step = new TrainingStep(net, Batch, classification: true);
        var (images, targets, labels) = Data(10);
        step.Run(images, targets, labels);
        step.ReadLoss();

        var log = new GpuLog();
        gpu.Log = log;
        try
        {
            step.Run(images, targets, labels);
            var copies = log.Of(GpuEventKind.Upload, GpuEventKind.Download, GpuEventKind.DeviceCopy, GpuEventKind.Synchronize, GpuEventKind.Allocate)
                .Select(e => $"{e.Kind} {e.Name}").ToList();
            Assert.Equal(["Upload batch images", "Upload batch targets", "Upload batch labels"], copies);
            Assert.InRange(log.Count(GpuEventKind.Launch), 50, 300);

            // Reading the loss is the one declared download.
            log.Clear();
            var terms = step.ReadLoss();
            Assert.Equal(["Download loss readback"], log.Events.Select(e => $"{e.Kind} {e.Name}"));
            Assert.True(float.IsFinite(terms.Total) && terms.Total > 0, $"loss {terms}");
        }
        finally { gpu.Log = null; }
    }

    /// <summary>
    /// The device-side loss equals the CPU path's: same network, same batches, two steps each, the mean
    /// of both steps' terms read once (checks the device sums, their reset and the labels' upload).
    /// </summary>
    [Fact]
    public void Device_side_loss_matches_the_cpu_path()
    {
        JointLoss.Terms Run(Device device)
        {
            using var net = new ColorizationNetwork(new ColorizerConfig(0.0625, Classes, 1, Size), device, seed: 7);
            using var step = new TrainingStep(net, Batch, classification: true);
            var (i1, t1, l1) = Data(20);
            var (i2, t2, l2) = Data(30);
            step.Run(i1, t1, l1);
            step.Run(i2, t2, l2);
            Assert.Equal(2, step.Loss.PendingBatches);
            var terms = step.ReadLoss();
            Assert.Equal(0, step.Loss.PendingBatches);
            Assert.Equal(default, step.ReadLoss());
            return terms;
        }
        var cpu = Run(CpuDevice.Instance);
        var gpu = Run(TestDevices.Get("gpu"));
        Compare.Close("color", [cpu.Color], [gpu.Color], 1e-4, 1e-6);
        Compare.Close("class", [cpu.Class], [gpu.Class], 1e-4, 1e-6);
        Compare.Close("total", [cpu.Total], [gpu.Total], 1e-4, 1e-6);
    }
}
