using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// Split reductions on the GPU, shared by the ops that sum over a batch: convolution bias gradients,
/// batch-norm statistics and backward sums, the squared error of the loss.
/// <code>
/// values of channel c: x[n, c, s] over n &lt; N, s &lt; S   (m = N*S of them, layout [N, C, S])
/// pass 1: grid (splits, C), group g: group (z, c) sums values [z*chunk, (z+1)*chunk) of channel c
///         (threads stride by g, then a tree in shared memory) into partials[(c*splits + z)*q + k]
/// pass 2: one thread per channel adds its splits' partials in split order
/// </code>
/// One group per channel leaves a 132-SM GPU mostly idle when C is 16-64 (the first layers at
/// width 0.25) and makes each group walk m = N*H*W values (800 000 for 16 x 112 x 112): the split
/// gives every launch at least <see cref="GpuTarget.GroupsToFill"/> groups when there are values
/// for them. Both passes add in a fixed order: the same result on every run, no atomics.
/// </summary>
public static class Reductions
{
    /// <summary>
    /// Most threads per group (a power of two); also the shared-memory array of <see cref="GroupSum"/>.
    /// Every kernel that calls GroupSum gets its group size from <see cref="GpuTarget.PowerOfTwoGroup"/>(MaxGroup).
    /// </summary>
    public const int MaxGroup = 256;

    /// <summary>Fewest values one thread of pass 1 handles, so that splitting does not outgrow the work.</summary>
    const int MinValuesPerThread = 4;

    /// <summary>Most splits per channel (bounds pass 2's loop).</summary>
    const int MaxSplits = 1024;

    /// <summary>How a per-channel reduction is split: pass 1 has Splits x Channels groups of GroupSize threads.</summary>
    public readonly record struct Split(int Channels, int Splits, int Chunk, int GroupSize)
    {
        public Index3D Grid => new(Splits, Channels, 1);
        public Index3D Group => new(GroupSize, 1, 1);
    }

    /// <summary>Plans the split of <paramref name="channels"/> sums of <paramref name="values"/> values each.</summary>
    public static Split PlanChannels(GpuTarget target, int channels, long values)
    {
        int group = target.PowerOfTwoGroup(MaxGroup, values);
        long fill = target.GroupsToFill;
        long wanted = (fill + channels - 1) / Math.Max(1, channels);
        long possible = Math.Max(1, values / ((long)group * MinValuesPerThread));
        int splits = (int)Math.Clamp(Math.Min(wanted, possible), 1, MaxSplits);
        int chunk = (int)((values + splits - 1) / splits);
        splits = (int)((values + chunk - 1) / Math.Max(1, chunk));
        return new Split(channels, Math.Max(1, splits), Math.Max(1, chunk), group);
    }

    /// <summary>
    /// Sum of <paramref name="value"/> over the group by a tree in shared memory (group size a power of
    /// two, at most <see cref="MaxGroup"/>); every thread gets the total. Ends with a barrier, so
    /// <paramref name="shared"/> can be reused.
    /// </summary>
    public static float GroupSum(ArrayView<float> shared, float value)
    {
        int t = Group.IdxX;
        shared[t] = value;
        Group.Barrier();
        for (int stride = Group.DimX / 2; stride > 0; stride /= 2)
        {
            if (t < stride) shared[t] += shared[t + stride];
            Group.Barrier();
        }
        float total = shared[0];
        Group.Barrier();
        return total;
    }

    /// <summary>Index in x [N, C, S] of the i-th of channel c's N*S values.</summary>
    public static long ChannelElement(int channels, int s, int c, long i)
    {
        long n = i / s;
        return (n * channels + c) * s + (i - n * s);
    }
}
