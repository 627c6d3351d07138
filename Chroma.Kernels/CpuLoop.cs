namespace Chroma.Kernels;

/// <summary>
/// The CPU paths' one loop over independent items, and its rule for when to go parallel. Two shapes:
/// <code>
/// For(count, workPerItem, body(i))                       one call per item: a channel, an image's plane, a row
/// Chunks(count, workPerItem, workPerChunk, body(i0, i1)) one call per range of items: a flat buffer's elements,
///                                                        a plane's rows; each range about workPerChunk of work
/// </code>
/// The rule: <see cref="Parallel.For(int, int, Action{int})"/> over the items (ranges) when there are at
/// least two, more than one core, and (For) at least a threshold of work in all; otherwise in order on the
/// calling thread, where starting tasks would cost more than the work. Work is counted in floats read or
/// written (or multiply-adds), whatever the caller's loop is bound by; bodies must not depend on which
/// thread runs them (results are the same either way).
/// The GEMM's and Winograd's tuned blocking schedules (<c>Gemm.Cpu.cs</c>, <c>Conv2d.Winograd.cs</c>)
/// partition their own work and call Parallel.For directly; their per-phase loops use <see cref="For"/>.
/// </summary>
public static class CpuLoop
{
    /// <summary>
    /// Default work below which <see cref="For"/> stays on the calling thread: 2^15 floats (128 KB). Chosen
    /// with the first CPU convolution (im2col, col2im and bias loops) and batch norm's channel blocks; no
    /// measurement of the crossover was recorded. Callers with their own figure pass <c>threshold</c>.
    /// </summary>
    public const long ParallelThreshold = 1 << 15;

    /// <summary>
    /// Whether <paramref name="count"/> items of <paramref name="workPerItem"/> each go to Parallel.For:
    /// at least two items, more than one core, and at least <paramref name="threshold"/> work in all.
    /// </summary>
    public static bool RunsParallel(int count, long workPerItem, long threshold = ParallelThreshold) =>
        count > 1 && (long)count * workPerItem >= threshold && Environment.ProcessorCount > 1;

    /// <summary>
    /// body(i) for i in [0, count): over all cores when <see cref="RunsParallel"/>, else in order here.
    /// <paramref name="inline"/>: the caller is already one item of a parallel loop (a Winograd thread
    /// chunk), so this runs in order here whatever the work.
    /// </summary>
    public static void For(int count, long workPerItem, Action<int> body, bool inline = false, long threshold = ParallelThreshold)
    {
        if (!inline && RunsParallel(count, workPerItem, threshold)) Parallel.For(0, count, body);
        else for (int i = 0; i < count; i++) body(i);
    }

    /// <summary>
    /// body(start, end) over [0, count) cut into ranges of max(1, workPerChunk / workPerItem) items (the
    /// last shorter), range k = [k * size, min(count, (k + 1) * size)). One range: body(0, count) here.
    /// Several: one Parallel.For item per range (in order here on a one-core machine). A caller that keeps
    /// a partial result per range gets the same ranges on every machine, so its sum does not change.
    /// </summary>
    public static void Chunks(int count, long workPerItem, long workPerChunk, Action<int, int> body)
    {
        int size = ChunkSize(workPerItem, workPerChunk);
        int chunks = ChunkCount(count, size);
        if (chunks <= 1) { body(0, count); return; }
        void Range(int k) => body(k * size, (int)Math.Min(count, (long)(k + 1) * size));
        if (Environment.ProcessorCount > 1) Parallel.For(0, chunks, Range);
        else for (int k = 0; k < chunks; k++) Range(k);
    }

    /// <summary>Items per range of <see cref="Chunks"/>: max(1, workPerChunk / workPerItem).</summary>
    public static int ChunkSize(long workPerItem, long workPerChunk) =>
        (int)Math.Clamp(workPerChunk / Math.Max(1, workPerItem), 1, int.MaxValue);

    /// <summary>Ranges of <paramref name="size"/> items covering <paramref name="count"/>.</summary>
    public static int ChunkCount(int count, int size) => (int)(((long)count + size - 1) / size);
}
