using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// ADADELTA (Zeiler 2012, arXiv:1212.5701) with Torch's semantics (Lua <c>optim.adadelta</c>,
/// <c>torch.optim.Adadelta</c>), element-wise over one flat parameter buffer in one fused pass:
/// <code>
/// g     = g + weightDecay * p                      (only when weightDecay != 0; the gradient tensor is not changed)
/// v     = rho * v + (1 - rho) * g^2                (squareAverage, E[g^2])
/// delta = sqrt(u + eps) / sqrt(v + eps) * g        (u of the previous step)
/// u     = rho * u + (1 - rho) * delta^2            (accumulatedDelta, E[delta^2])
/// p     = p - learningRate * delta
/// </code>
/// </summary>
/// <remarks>
/// The paper and Lua Torch have no learning rate (it is 1); PyTorch scales only the parameter
/// update by it, not the delta that enters u, and so does this. Lua Torch adds the weight decay
/// into the gradient buffer in place; PyTorch and this leave the gradients untouched.
/// The state tensors start at zero and belong to the caller.
/// </remarks>
public static class Adadelta
{
    public const float DefaultRho = 0.9f, DefaultEps = 1e-6f;

    /// <summary>
    /// Elements per range of the CPU path's <see cref="CpuLoop.Chunks"/> (2^16, 256 KB of each of the four
    /// buffers; the model has up to ~42 M parameters; chosen with the op, no measurement recorded).
    /// </summary>
    const int ChunkSize = 1 << 16;

    /// <summary>One ADADELTA step, in place on <paramref name="parameters"/>, <paramref name="squareAverage"/> and <paramref name="accumulatedDelta"/>.</summary>
    /// <remarks>All four tensors have the same length (the model keeps every parameter in one buffer).</remarks>
    public static void Step(Tensor parameters, Tensor gradients, Tensor squareAverage, Tensor accumulatedDelta,
        float rho = DefaultRho, float eps = DefaultEps, float learningRate = 1f, float weightDecay = 0f)
    {
        const string op = "Adadelta.Step";
        Check.SameDevice(op, parameters, gradients, squareAverage, accumulatedDelta);
        SameLength(op, parameters, nameof(gradients), gradients);
        SameLength(op, parameters, nameof(squareAverage), squareAverage);
        SameLength(op, parameters, nameof(accumulatedDelta), accumulatedDelta);
        // the ranges torch.optim.Adadelta accepts
        if (!(rho >= 0f && rho <= 1f)) throw new ArgumentOutOfRangeException(nameof(rho), rho, $"{op}: rho must be in [0, 1].");
        if (!(eps >= 0f)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{op}: eps must be >= 0.");
        if (!(learningRate >= 0f)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, $"{op}: learning rate must be >= 0.");
        if (!(weightDecay >= 0f)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, $"{op}: weight decay must be >= 0.");
        if (parameters.Length == 0) return;

        var args = new StepArgs(rho, eps, learningRate, weightDecay);
        if (parameters.Device is GpuDevice gpu)
            gpu.Kernel<StepArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(StepKernel)(
                parameters.Length, args, parameters.View, gradients.View, squareAverage.View, accumulatedDelta.View);
        else
            StepCpu(parameters, gradients, squareAverage, accumulatedDelta, args);
    }

    static void SameLength(string op, Tensor parameters, string name, Tensor t)
    {
        if (t.Length != parameters.Length)
            throw new ArgumentException($"{op}: {name} {t.ShapeString} has {t.Length} elements, parameters {parameters.ShapeString} has {parameters.Length}.");
    }

    /// <summary>Hyper-parameters of one step, passed to the kernel as one struct.</summary>
    public readonly record struct StepArgs(float Rho, float Eps, float LearningRate, float WeightDecay);

    static void StepCpu(Tensor p, Tensor g, Tensor v, Tensor u, StepArgs a)
    {
        int n = p.Length;
        float[] pa = p.HostArray, ga = g.HostArray, va = v.HostArray, ua = u.HostArray;
        int po = p.Offset, go = g.Offset, vo = v.Offset, uo = u.Offset;
        CpuLoop.Chunks(n, 1, ChunkSize, (start, end) =>
        {
            int len = end - start;
            StepRange(pa.AsSpan(po + start, len), ga.AsSpan(go + start, len), va.AsSpan(vo + start, len), ua.AsSpan(uo + start, len), a);
        });
    }

    /// <summary>The fused update over one contiguous range: Vector256 body, scalar tail.</summary>
    static void StepRange(Span<float> p, ReadOnlySpan<float> g, Span<float> v, Span<float> u, StepArgs a)
    {
        int n = p.Length, i = 0;
        bool decay = a.WeightDecay != 0f;
        float oneMinusRho = 1f - a.Rho;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            ref float rp = ref MemoryMarshal.GetReference(p);
            ref float rg = ref MemoryMarshal.GetReference(g);
            ref float rv = ref MemoryMarshal.GetReference(v);
            ref float ru = ref MemoryMarshal.GetReference(u);
            var rho = Vector256.Create(a.Rho);
            var complement = Vector256.Create(oneMinusRho);
            var eps = Vector256.Create(a.Eps);
            var lr = Vector256.Create(a.LearningRate);
            var wd = Vector256.Create(a.WeightDecay);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                nuint at = (nuint)i;
                var pi = Vector256.LoadUnsafe(ref rp, at);
                var gi = Vector256.LoadUnsafe(ref rg, at);
                if (decay) gi += wd * pi;
                var vi = rho * Vector256.LoadUnsafe(ref rv, at) + complement * (gi * gi);
                var ui = Vector256.LoadUnsafe(ref ru, at);
                var delta = Vector256.Sqrt(ui + eps) / Vector256.Sqrt(vi + eps) * gi;
                vi.StoreUnsafe(ref rv, at);
                (rho * ui + complement * (delta * delta)).StoreUnsafe(ref ru, at);
                (pi - lr * delta).StoreUnsafe(ref rp, at);
            }
        }
        for (; i < n; i++)
        {
            float gi = g[i];
            if (decay) gi += a.WeightDecay * p[i];
            float vi = a.Rho * v[i] + oneMinusRho * (gi * gi);
            float delta = MathF.Sqrt(u[i] + a.Eps) / MathF.Sqrt(vi + a.Eps) * gi;
            v[i] = vi;
            u[i] = a.Rho * u[i] + oneMinusRho * (delta * delta);
            p[i] -= a.LearningRate * delta;
        }
    }

    // One thread per parameter: four coalesced loads, three coalesced stores.
    static void StepKernel(Index1D i, StepArgs a, ArrayView<float> p, ArrayView<float> g, ArrayView<float> v, ArrayView<float> u)
    {
        float pi = p[i];
        float gi = g[i];
        if (a.WeightDecay != 0f) gi += a.WeightDecay * pi;
        float oneMinusRho = 1f - a.Rho;
        float vi = a.Rho * v[i] + oneMinusRho * (gi * gi);
        float ui = u[i];
        float delta = XMath.Sqrt(ui + a.Eps) / XMath.Sqrt(vi + a.Eps) * gi;
        v[i] = vi;
        u[i] = a.Rho * ui + oneMinusRho * (delta * delta);
        p[i] = pi - a.LearningRate * delta;
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        /// <summary>One step in place on <paramref name="p"/>, <paramref name="v"/> (square average) and <paramref name="u"/> (accumulated delta); <paramref name="g"/> is not changed.</summary>
        public static void Step(double[] p, double[] g, double[] v, double[] u, double rho, double eps, double lr, double weightDecay)
        {
            if (g.Length != p.Length || v.Length != p.Length || u.Length != p.Length)
                throw new ArgumentException($"Adadelta.Reference.Step: lengths differ (p {p.Length}, g {g.Length}, v {v.Length}, u {u.Length}).");
            for (int i = 0; i < p.Length; i++)
            {
                double gi = weightDecay != 0 ? g[i] + weightDecay * p[i] : g[i];
                v[i] = rho * v[i] + (1 - rho) * gi * gi;
                double std = Math.Sqrt(v[i] + eps);
                double delta = Math.Sqrt(u[i] + eps) / std * gi;
                u[i] = rho * u[i] + (1 - rho) * delta * delta;
                p[i] -= lr * delta;
            }
        }
    }
}
