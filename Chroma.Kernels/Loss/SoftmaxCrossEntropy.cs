using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// Softmax cross-entropy averaged over the batch (the scene-classification loss), numerically stable.
/// Shapes: logits, probabilities, dLogits [N, C]; labels N class indices in [0, C), either on the host
/// (int) or on the device as a tensor [N] of indices stored as floats (exact below 2^24; written by
/// <see cref="CopyLabels"/>, which checks them), so that a training step uploads them once with the images.
/// <code>
/// forward:  q_n = softmax(z_n) = exp(z_n - m_n) / sum_c exp(z_nc - m_n),   m_n = max_c z_nc
///           L   = mean_n( logsumexp(z_n) - z_n[label_n] ) = mean_n( log sum_c exp(z_nc - m_n) - (z_n[label_n] - m_n) )
/// backward: dz += scale * (q - onehot(labels)) / N
/// </code>
/// </summary>
public static class SoftmaxCrossEntropy
{
    /// <summary>
    /// Logit count from which the CPU path splits rows over cores (<see cref="CpuLoop.For"/>; 2^16, chosen
    /// with the op, no measurement recorded). A training batch (16 x 205 classes) stays on the calling thread.
    /// </summary>
    const int ParallelThreshold = 1 << 16;

    /// <summary>
    /// Returns L and writes softmax(logits) to <paramref name="probabilities"/> for <see cref="Backward(Tensor, ReadOnlySpan{int}, Tensor, float)"/>
    /// (<paramref name="probabilities"/> may be <paramref name="logits"/>).
    /// </summary>
    /// <param name="logits">[N, C] class scores.</param>
    /// <param name="labels">N class indices in [0, C); one outside gives an ArgumentException naming it.</param>
    /// <param name="probabilities">[N, C] output.</param>
    public static float Forward(Tensor logits, ReadOnlySpan<int> labels, Tensor probabilities)
    {
        const string op = "SoftmaxCrossEntropy.Forward";
        Check.SameDevice(op, logits, probabilities);
        var (n, c) = CheckShapes(op, "logits", logits, labels);
        Check.Shape(op, "probabilities", probabilities, n, c);
        if (logits.Device is GpuDevice gpu)
        {
            // The device path on a copy of the labels, then one 4-byte readback.
            var deviceLabels = gpu.Workspace("softmax.labels", n).Slice(0, n);
            CopyLabels(labels, c, deviceLabels);
            var loss = gpu.Workspace("softmax.loss", 1);
            ForwardGpu(gpu, logits, deviceLabels, probabilities, loss, n, c, accumulate: false);
            gpu.NameNextTransfer("loss readback");
            return loss.ToArray()[0];
        }
        return (float)(ForwardCpu(logits, labels, probabilities, n, c) / n);
    }

    /// <summary>
    /// As <see cref="Forward(Tensor, ReadOnlySpan{int}, Tensor)"/> with the labels on the device: writes
    /// L into <paramref name="loss"/> (one element), or adds it there with <paramref name="accumulate"/>,
    /// without a host round trip. On the GPU a label outside [0, C) (which <see cref="CopyLabels"/>
    /// never writes) makes that row's loss NaN rather than reading outside the row.
    /// </summary>
    /// <param name="labels">[N] class indices as floats, e.g. from <see cref="CopyLabels"/>.</param>
    public static void Forward(Tensor logits, Tensor labels, Tensor probabilities, Tensor loss, bool accumulate = false)
    {
        const string op = "SoftmaxCrossEntropy.Forward";
        Check.SameDevice(op, logits, labels, probabilities, loss);
        var (n, c) = CheckShapes(op, "logits", logits, labels);
        Check.Shape(op, "probabilities", probabilities, n, c);
        if (loss.Length != 1) throw new ArgumentException($"{op}: loss {loss.ShapeString} must have one element.");
        if (logits.Device is GpuDevice gpu) { ForwardGpu(gpu, logits, labels, probabilities, loss, n, c, accumulate); return; }
        var host = HostLabels(op, labels, c, stackalloc int[Math.Min(n, 256)]);
        float mean = (float)(ForwardCpu(logits, host, probabilities, n, c) / n);
        loss.Span[0] = accumulate ? loss.Span[0] + mean : mean;
    }

    /// <summary>Checks <paramref name="labels"/> against <paramref name="classes"/> and writes them to the device tensor [N] as floats.</summary>
    public static void CopyLabels(ReadOnlySpan<int> labels, int classes, Tensor destination)
    {
        if (destination.Length != labels.Length)
            throw new ArgumentException($"SoftmaxCrossEntropy.CopyLabels: {labels.Length} labels for a destination {destination.ShapeString}.");
        Span<float> values = labels.Length <= 1024 ? stackalloc float[labels.Length] : new float[labels.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classes)
                throw new ArgumentException($"SoftmaxCrossEntropy.CopyLabels: labels[{i}] = {labels[i]} is outside [0, {classes}).");
            values[i] = labels[i];
        }
        destination.CopyFrom(values);
    }

    /// <summary>dLogits += scale * (probabilities - onehot(labels)) / N.</summary>
    /// <param name="probabilities">[N, C] as written by <see cref="Forward(Tensor, ReadOnlySpan{int}, Tensor)"/>.</param>
    public static void Backward(Tensor probabilities, ReadOnlySpan<int> labels, Tensor dLogits, float scale = 1f)
    {
        const string op = "SoftmaxCrossEntropy.Backward";
        Check.SameDevice(op, probabilities, dLogits);
        var (n, c) = CheckShapes(op, "probabilities", probabilities, labels);
        Check.Shape(op, "dLogits", dLogits, n, c);
        float coefficient = (float)((double)scale / n);
        if (probabilities.Device is GpuDevice gpu)
        {
            var deviceLabels = gpu.Workspace("softmax.labels", n).Slice(0, n);
            CopyLabels(labels, c, deviceLabels);
            BackwardGpu(gpu, probabilities, deviceLabels, dLogits, c, coefficient);
        }
        else BackwardCpu(probabilities, labels, dLogits, n, c, coefficient);
    }

    /// <summary>As <see cref="Backward(Tensor, ReadOnlySpan{int}, Tensor, float)"/> with the labels on the device ([N] floats).</summary>
    public static void Backward(Tensor probabilities, Tensor labels, Tensor dLogits, float scale = 1f)
    {
        const string op = "SoftmaxCrossEntropy.Backward";
        Check.SameDevice(op, probabilities, labels, dLogits);
        var (n, c) = CheckShapes(op, "probabilities", probabilities, labels);
        Check.Shape(op, "dLogits", dLogits, n, c);
        float coefficient = (float)((double)scale / n);
        if (probabilities.Device is GpuDevice gpu) BackwardGpu(gpu, probabilities, labels, dLogits, c, coefficient);
        else BackwardCpu(probabilities, HostLabels(op, labels, c, stackalloc int[Math.Min(n, 256)]), dLogits, n, c, coefficient);
    }

    /// <summary>Checks a [N, C] tensor against a device label tensor [N]; returns (N, C).</summary>
    static (int N, int C) CheckShapes(string op, string name, Tensor scores, Tensor labels)
    {
        Check.Rank(op, name, scores, 2);
        int n = scores.Dim(0), c = scores.Dim(1);
        if (n == 0 || c == 0) throw new ArgumentException($"{op}: {name} {scores.ShapeString} is empty; need at least one row and one class.");
        if (labels.Length != n) throw new ArgumentException($"{op}: labels {labels.ShapeString} for {n} rows of {name} {scores.ShapeString}.");
        return (n, c);
    }

    /// <summary>CPU path: the float labels as checked integers.</summary>
    static ReadOnlySpan<int> HostLabels(string op, Tensor labels, int classes, Span<int> buffer)
    {
        var values = labels.Span;
        var result = buffer.Length >= values.Length ? buffer[..values.Length] : new int[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (!(v >= 0 && v < classes) || v != MathF.Floor(v))
                throw new ArgumentException($"{op}: labels[{i}] = {v} is not a class index in [0, {classes}).");
            result[i] = (int)v;
        }
        return result;
    }

    /// <summary>Checks a [N, C] tensor (N, C >= 1) and N labels in [0, C); returns (N, C).</summary>
    static (int N, int C) CheckShapes(string op, string name, Tensor scores, ReadOnlySpan<int> labels)
    {
        Check.Rank(op, name, scores, 2);
        int n = scores.Dim(0), c = scores.Dim(1);
        if (n == 0 || c == 0) throw new ArgumentException($"{op}: {name} {scores.ShapeString} is empty; need at least one row and one class.");
        if (labels.Length != n)
            throw new ArgumentException($"{op}: {labels.Length} labels for {n} rows of {name} {scores.ShapeString}.");
        for (int i = 0; i < n; i++)
            if ((uint)labels[i] >= (uint)c)
                throw new ArgumentException($"{op}: labels[{i}] = {labels[i]} is outside [0, {c}) for {name} {scores.ShapeString}.");
        return (n, c);
    }

    // ---- CPU path ----

    static double ForwardCpu(Tensor logits, ReadOnlySpan<int> labels, Tensor probabilities, int n, int c)
    {
        if (!CpuLoop.RunsParallel(n, c, ParallelThreshold))
        {
            // in order here, without the per-row array and the copy of the labels
            double total = 0;
            for (int row = 0; row < n; row++)
                total += SoftmaxRow(logits.Span.Slice(row * c, c), labels[row], probabilities.Span.Slice(row * c, c));
            return total;
        }
        float[] za = logits.HostArray, qa = probabilities.HostArray;
        int zo = logits.Offset, qo = probabilities.Offset;
        int[] labelArray = labels.ToArray();
        var losses = new double[n];
        CpuLoop.For(n, c, row => losses[row] = SoftmaxRow(za.AsSpan(zo + row * c, c), labelArray[row], qa.AsSpan(qo + row * c, c)),
            threshold: ParallelThreshold);
        double sum = 0;
        foreach (double l in losses) sum += l; // in row order: independent of scheduling
        return sum;
    }

    /// <summary>Writes softmax(z) to q (q may alias z) and returns logsumexp(z) - z[label].</summary>
    static double SoftmaxRow(ReadOnlySpan<float> z, int label, Span<float> q)
    {
        float max = TensorPrimitives.Max(z);
        double labelMargin = (double)z[label] - max; // read before q overwrites an aliased z
        TensorPrimitives.Subtract(z, max, q);
        TensorPrimitives.Exp(q, q); // every term in (0, 1], the largest exactly 1: no overflow
        double sum = 0;
        foreach (float e in q) sum += e;
        TensorPrimitives.Multiply(q, (float)(1.0 / sum), q);
        return Math.Log(sum) - labelMargin;
    }

    static void BackwardCpu(Tensor probabilities, ReadOnlySpan<int> labels, Tensor dLogits, int n, int c, float coefficient)
    {
        var q = probabilities.Span;
        var dz = dLogits.Span;
        for (int row = 0; row < n; row++)
        {
            var dRow = dz.Slice(row * c, c);
            TensorPrimitives.MultiplyAdd(q.Slice(row * c, c), coefficient, dRow, dRow);
            dRow[labels[row]] -= coefficient;
        }
    }

    // ---- GPU path ----

    static void ForwardGpu(GpuDevice gpu, Tensor logits, Tensor labels, Tensor probabilities, Tensor loss, int n, int c, bool accumulate)
    {
        var losses = gpu.Workspace("softmax.losses", n).View;
        gpu.Kernel<int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ForwardKernel)(
            n, c, logits.View, labels.View, probabilities.View, losses);
        gpu.Kernel<int, float, int, ArrayView<float>, ArrayView<float>>(FinishKernel)(1, n, 1f / n, accumulate ? 1 : 0, losses, loss.View);
    }

    static void BackwardGpu(GpuDevice gpu, Tensor probabilities, Tensor labels, Tensor dLogits, int c, float coefficient) =>
        gpu.Kernel<int, float, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardKernel)(
            probabilities.Length, c, coefficient, probabilities.View, labels.View, dLogits.View);

    /// <summary>The row's label, or -1 when the stored value is not an index in [0, c).</summary>
    static int Label(ArrayView<float> labels, int row, int c)
    {
        float v = labels[row];
        int label = (int)v;
        return v >= 0f && label < c && label == v ? label : -1;
    }

    // One thread per row (C is at most a few hundred; N is the batch). logits, probabilities [N, C];
    // labels, losses [N].
    static void ForwardKernel(Index1D row, int c, ArrayView<float> logits, ArrayView<float> labels, ArrayView<float> probabilities, ArrayView<float> losses)
    {
        long start = (long)(int)row * c;
        int label = Label(labels, row, c);
        float max = logits[start];
        for (int j = 1; j < c; j++) max = XMath.Max(max, logits[start + j]);
        float labelMargin = label >= 0 ? logits[start + label] - max : float.NaN;
        float sum = 0f;
        for (int j = 0; j < c; j++)
        {
            float e = XMath.Exp(logits[start + j] - max);
            probabilities[start + j] = e;
            sum += e;
        }
        float inverse = 1f / sum;
        for (int j = 0; j < c; j++) probabilities[start + j] *= inverse;
        losses[row] = XMath.Log(sum) - labelMargin;
    }

    // One thread: loss[0] (+)= (sum of the rows' losses in row order) * scale.
    static void FinishKernel(Index1D index, int n, float scale, int accumulate, ArrayView<float> losses, ArrayView<float> loss)
    {
        float sum = 0f;
        for (int row = 0; row < n; row++) sum += losses[row];
        loss[0] = (accumulate != 0 ? loss[0] : 0f) + sum * scale;
    }

    // One thread per logit: dLogits[i] += coefficient * (q[i] - [column == label of its row]).
    static void BackwardKernel(Index1D i, int c, float coefficient, ArrayView<float> probabilities, ArrayView<float> labels, ArrayView<float> dLogits)
    {
        int row = i / c, column = i - row * c;
        float target = Label(labels, row, c) == column ? 1f : 0f;
        dLogits[i] += coefficient * (probabilities[i] - target);
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        /// <summary>L for row-major [n, c] logits.</summary>
        public static double Forward(double[] logits, int n, int c, int[] labels)
        {
            if (logits.Length != n * c || labels.Length != n)
                throw new ArgumentException($"SoftmaxCrossEntropy.Reference.Forward: {logits.Length} logits and {labels.Length} labels for [{n}, {c}].");
            double total = 0;
            for (int row = 0; row < n; row++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < c; j++) max = Math.Max(max, logits[row * c + j]);
                double sum = 0;
                for (int j = 0; j < c; j++) sum += Math.Exp(logits[row * c + j] - max);
                total += max + Math.Log(sum) - logits[row * c + labels[row]];
            }
            return total / n;
        }
    }
}
