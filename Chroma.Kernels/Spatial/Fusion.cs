using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

/// <summary>
/// Input of the paper's fusion layer: each image's global feature vector is copied to every
/// spatial position and stacked after the local (mid-level) features along channels.
/// <code>
/// local [N, Cl, H, W], global [N, Cg] -> y [N, Cl + Cg, H, W]
/// forward:  y[n, c, i, j] = local[n, c, i, j]     for c &lt; Cl
///           y[n, c, i, j] = global[n, c - Cl]     for c &gt;= Cl
/// backward: dLocal[n, c, i, j] += dy[n, c, i, j]
///           dGlobal[n, g]      += sum over i, j of dy[n, Cl + g, i, j]
/// </code>
/// The fusion layer proper is a 1x1 convolution applied to y afterwards.
/// </summary>
public static class Fusion
{
    /// <summary>y = [local; global tiled over H x W]. <paramref name="y"/> is overwritten.</summary>
    public static void Forward(Tensor local, Tensor global, Tensor y)
    {
        const string op = "Fusion.Forward";
        Check.SameDevice(op, local, global, y);
        Check.Rank(op, "local", local, 4);
        Check.Rank(op, "global", global, 2);
        int n = local.Dim(0), cl = local.Dim(1), h = local.Dim(2), w = local.Dim(3), cg = global.Dim(1);
        if (global.Dim(0) != n)
            throw new ArgumentException($"Fusion.Forward: global {global.ShapeString} and local {local.ShapeString} differ in batch size.");
        Check.Shape(op, "y", y, n, cl + cg, h, w);
        if (y.Length == 0) return;
        var dims = new FusionDims(cl, cg, h * w);
        if (y.Device is GpuDevice gpu)
            gpu.Kernel<FusionDims, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ForwardKernel)(y.Length, dims, local.View, global.View, y.View);
        else
            ForwardCpu(dims, n, local.HostArray, local.Offset, global.HostArray, global.Offset, y.HostArray, y.Offset);
    }

    /// <summary>
    /// dLocal += dy[:, :Cl]; dGlobal += dy[:, Cl:] summed over H x W. Either gradient may be null,
    /// and is then not computed; Cl and Cg come from whichever is given.
    /// </summary>
    public static void Backward(Tensor dy, Tensor? dLocal, Tensor? dGlobal)
    {
        const string op = "Fusion.Backward";
        Check.SameDevice(op, dy, dLocal, dGlobal);
        Check.Rank(op, "dy", dy, 4);
        int n = dy.Dim(0), ct = dy.Dim(1), h = dy.Dim(2), w = dy.Dim(3);
        if (dLocal is not null) Check.Rank(op, "dLocal", dLocal, 4);
        if (dGlobal is not null) Check.Rank(op, "dGlobal", dGlobal, 2);
        // With neither gradient there is nothing to split; otherwise the given one fixes the split.
        int cl = dLocal is not null ? dLocal.Dim(1) : dGlobal is not null ? ct - dGlobal.Dim(1) : ct;
        int cg = ct - cl;
        if (cl < 0 || cg < 0 || (dGlobal is not null && dGlobal.Dim(1) != cg))
            throw new ArgumentException($"{op}: dy {dy.ShapeString} must have as many channels as dLocal {dLocal?.ShapeString ?? "(none)"} and dGlobal {dGlobal?.ShapeString ?? "(none)"} together.");
        if (dLocal is not null) Check.Shape(op, "dLocal", dLocal, n, cl, h, w);
        if (dGlobal is not null) Check.Shape(op, "dGlobal", dGlobal, n, cg);
        if (dy.Length == 0) return;

        var dims = new FusionDims(cl, cg, h * w);
        if (dy.Device is GpuDevice gpu)
        {
            if (dLocal is not null && dLocal.Length > 0)
                gpu.Kernel<FusionDims, ArrayView<float>, ArrayView<float>>(LocalGradKernel)(dLocal.Length, dims, dy.View, dLocal.View);
            if (dGlobal is not null && dGlobal.Length > 0)
            {
                // One group per (image, global channel): N x Cg groups (1024 at width 0.25 batch 16 and at width 1 batch 4).
                int group = gpu.Target.PowerOfTwoGroup(Reductions.MaxGroup);
                var plan = new LaunchPlan(nameof(Fusion) + "." + nameof(GlobalGradKernel), new Index3D(dGlobal.Length, 1, 1), new Index3D(group, 1, 1),
                    (long)dGlobal.Length * dims.Plane);
                gpu.Launching(plan);
                gpu.GroupedKernel<FusionDims, ArrayView<float>, ArrayView<float>>(GlobalGradKernel)(
                    new KernelConfig(plan.Grid, plan.Group), dims, dy.View, dGlobal.View);
            }
        }
        else
        {
            var (dyArr, dyOff) = (dy.HostArray, dy.Offset);
            CpuLoop.For(n, (long)ct * dims.Plane, b =>
            {
                var dyImage = dyArr.AsSpan(dyOff + b * ct * dims.Plane, ct * dims.Plane);
                if (dLocal is not null)
                {
                    var dst = dLocal.HostArray.AsSpan(dLocal.Offset + b * cl * dims.Plane, cl * dims.Plane);
                    TensorPrimitives.Add(dst, dyImage[..dst.Length], dst);
                }
                if (dGlobal is not null)
                {
                    var dst = dGlobal.HostArray.AsSpan(dGlobal.Offset + b * cg, cg);
                    for (int g = 0; g < cg; g++)
                        dst[g] += TensorPrimitives.Sum(dyImage.Slice((cl + g) * dims.Plane, dims.Plane));
                }
            });
        }
    }

    /// <summary>Channel counts and the plane size H*W, passed to kernels as one struct.</summary>
    public readonly record struct FusionDims(int Local, int Global, int Plane);

    static void ForwardCpu(FusionDims d, int n, float[] local, int localOff, float[] global, int globalOff, float[] y, int yOff)
    {
        int ct = d.Local + d.Global;
        CpuLoop.For(n, (long)ct * d.Plane, b =>
        {
            // The local channels of one image are one contiguous block in both tensors.
            local.AsSpan(localOff + b * d.Local * d.Plane, d.Local * d.Plane).CopyTo(y.AsSpan(yOff + b * ct * d.Plane));
            for (int g = 0; g < d.Global; g++)
                y.AsSpan(yOff + (b * ct + d.Local + g) * d.Plane, d.Plane).Fill(global[globalOff + b * d.Global + g]);
        });
    }

    // One thread per element of y [N, Cl + Cg, H, W].
    static void ForwardKernel(Index1D i, FusionDims d, ArrayView<float> local, ArrayView<float> global, ArrayView<float> y)
    {
        int ct = d.Local + d.Global;
        int pos = i % d.Plane, plane = i / d.Plane;
        int c = plane % ct, b = plane / ct;
        y[i] = c < d.Local ? local[(b * d.Local + c) * d.Plane + pos] : global[b * d.Global + c - d.Local];
    }

    // One thread per element of dLocal [N, Cl, H, W]: an image's local block sits at the start of its dy block.
    static void LocalGradKernel(Index1D i, FusionDims d, ArrayView<float> dy, ArrayView<float> dLocal)
    {
        int block = d.Local * d.Plane;
        int b = i / block, inImage = i % block;
        dLocal[i] += dy[b * (d.Local + d.Global) * d.Plane + inImage];
    }

    // One group per element (n, g) of dGlobal: the group's threads read the H x W plane of dy in
    // coalesced strides, then add their partial sums in shared memory (Reductions.GroupSum). The
    // group size is a power of two of at most Reductions.MaxGroup.
    static void GlobalGradKernel(FusionDims d, ArrayView<float> dy, ArrayView<float> dGlobal)
    {
        var shared = SharedMemory.Allocate<float>(Reductions.MaxGroup);
        int t = Group.IdxX, size = Group.DimX, target = Grid.IdxX;
        int b = target / d.Global, g = target % d.Global;
        int planeStart = (b * (d.Local + d.Global) + d.Local + g) * d.Plane;
        float sum = 0f;
        for (int pos = t; pos < d.Plane; pos += size) sum += dy[planeStart + pos];
        sum = Reductions.GroupSum(shared, sum);
        if (t == 0) dGlobal[target] += sum;
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        /// <summary>local [n, cl, h, w], global [n, cg] -> y [n, cl + cg, h, w].</summary>
        public static double[] Forward(double[] local, int n, int cl, int h, int w, double[] global, int cg)
        {
            if (local.Length != n * cl * h * w) throw new ArgumentException($"local has {local.Length} values, expected {n}*{cl}*{h}*{w}.");
            if (global.Length != n * cg) throw new ArgumentException($"global has {global.Length} values, expected {n}*{cg}.");
            int ct = cl + cg;
            var y = new double[n * ct * h * w];
            for (int b = 0; b < n; b++)
                for (int c = 0; c < ct; c++)
                    for (int i = 0; i < h; i++)
                        for (int j = 0; j < w; j++)
                            y[((b * ct + c) * h + i) * w + j] = c < cl ? local[((b * cl + c) * h + i) * w + j] : global[b * cg + c - cl];
            return y;
        }
    }
}
