using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Training;

/// <summary>A run interrupted at a checkpoint and resumed must end bit-for-bit where the straight run ends.</summary>
public sealed class ResumeTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-resume-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    TrainOptions Options(string run, long steps) => new()
    {
        Data = Path.Combine(_dir, "data"),
        RunDirectory = Path.Combine(_dir, run),
        Width = 0.0625, BatchSize = 4, ResizeTo = 72, CropSize = 64,
        ValidationFraction = 0.125, ValidateEvery = 1000, CheckpointEvery = 3, KeepCheckpoints = 5,
        Steps = steps, Seed = 7,
    };

    static (float[] Values, float[] State, float[] Square, float[] Delta) Final(string runDirectory)
    {
        var last = Checkpoint.Load(Trainer.Checkpoints(runDirectory).Last());
        return (Flatten(last, trained: true), Flatten(last, trained: false), last.File[Checkpoint.SquareAverage].Data, last.File[Checkpoint.AccumulatedDelta].Data);
    }

    static float[] Flatten(Checkpoint.Loaded c, bool trained)
    {
        using var net = ModelFile.Load(c.File, c.Path, CpuDevice.Instance);
        return (trained ? net.Parameters.Values : net.Parameters.State).ToArray();
    }

    static void AssertBitwiseEqual(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int differing = 0, first = -1;
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i])) { differing++; if (first < 0) first = i; }
        Assert.True(differing == 0, $"{what}: {differing} of {expected.Length} values differ (first at {first}: {(first >= 0 ? expected[first] : 0)} vs {(first >= 0 ? actual[first] : 0)}).");
    }

    [Fact]
    public void Resumed_run_matches_the_straight_run_bitwise()
    {
        Fixtures.ClassFolders(Path.Combine(_dir, "data"));
        const int n = 3;

        float[] straightValues;
        using (var straight = new Trainer(Options("a", 2 * n), CpuDevice.Instance))
        {
            straight.Run(CancellationToken.None);
            Assert.Equal(2 * n, straight.Step);
            straightValues = straight.Network.Parameters.Values.ToArray();
        }
        var a = Final(Path.Combine(_dir, "a"));

        using (var first = new Trainer(Options("b", n), CpuDevice.Instance))
        {
            first.Run(CancellationToken.None);
            Assert.Equal(n, first.Step);
        }
        float[] resumedValues;
        using (var resumed = new Trainer(Options("b", 2 * n) with { Resume = true }, CpuDevice.Instance))
        {
            Assert.Equal(n, resumed.Step);
            resumed.Run(CancellationToken.None);
            Assert.Equal(2 * n, resumed.Step);
            resumedValues = resumed.Network.Parameters.Values.ToArray();
        }
        var b = Final(Path.Combine(_dir, "b"));

        AssertBitwiseEqual(straightValues, resumedValues, "weights in memory");
        AssertBitwiseEqual(a.Values, b.Values, "checkpointed weights");
        AssertBitwiseEqual(a.State, b.State, "batch-norm running statistics");
        AssertBitwiseEqual(a.Square, b.Square, Checkpoint.SquareAverage);
        AssertBitwiseEqual(a.Delta, b.Delta, Checkpoint.AccumulatedDelta);
    }
}
