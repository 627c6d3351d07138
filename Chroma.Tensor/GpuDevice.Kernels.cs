// Kernel-loader overloads with caching, one per parameter count (1..14, ILGPU's limit).
// Each overload compiles a kernel once per device and returns the cached launcher, which records
// the launch in Log when a log is set (one null check otherwise) and skips running it while the device
// only plans (PlanFor). Generated: keep the overloads alike.
using ILGPU;
using ILGPU.Runtime;

namespace Chroma;

public sealed partial class GpuDevice
{
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 1 parameter(s).</summary>
    public Action<Index1D, T1> Kernel<T1>(Action<Index1D, T1> kernel) where T1 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1>((i, a1) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 1 parameter(s).</summary>
    public Action<KernelConfig, T1> GroupedKernel<T1>(Action<T1> kernel) where T1 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1>((c, a1) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 2 parameter(s).</summary>
    public Action<Index1D, T1, T2> Kernel<T1, T2>(Action<Index1D, T1, T2> kernel) where T1 : struct where T2 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2>((i, a1, a2) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 2 parameter(s).</summary>
    public Action<KernelConfig, T1, T2> GroupedKernel<T1, T2>(Action<T1, T2> kernel) where T1 : struct where T2 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2>((c, a1, a2) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 3 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3> Kernel<T1, T2, T3>(Action<Index1D, T1, T2, T3> kernel) where T1 : struct where T2 : struct where T3 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3>((i, a1, a2, a3) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 3 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3> GroupedKernel<T1, T2, T3>(Action<T1, T2, T3> kernel) where T1 : struct where T2 : struct where T3 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3>((c, a1, a2, a3) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 4 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4> Kernel<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4>((i, a1, a2, a3, a4) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 4 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4> GroupedKernel<T1, T2, T3, T4>(Action<T1, T2, T3, T4> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4>((c, a1, a2, a3, a4) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 5 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5> Kernel<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5>((i, a1, a2, a3, a4, a5) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 5 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5> GroupedKernel<T1, T2, T3, T4, T5>(Action<T1, T2, T3, T4, T5> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5>((c, a1, a2, a3, a4, a5) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 6 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5, T6> Kernel<T1, T2, T3, T4, T5, T6>(Action<Index1D, T1, T2, T3, T4, T5, T6> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5, T6>((i, a1, a2, a3, a4, a5, a6) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5, a6); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 6 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6> GroupedKernel<T1, T2, T3, T4, T5, T6>(Action<T1, T2, T3, T4, T5, T6> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5, T6>((c, a1, a2, a3, a4, a5, a6) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5, a6); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 7 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7> Kernel<T1, T2, T3, T4, T5, T6, T7>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5, T6, T7>((i, a1, a2, a3, a4, a5, a6, a7) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5, a6, a7); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 7 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7> GroupedKernel<T1, T2, T3, T4, T5, T6, T7>(Action<T1, T2, T3, T4, T5, T6, T7> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7>((c, a1, a2, a3, a4, a5, a6, a7) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5, a6, a7); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 8 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> Kernel<T1, T2, T3, T4, T5, T6, T7, T8>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8>((i, a1, a2, a3, a4, a5, a6, a7, a8) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5, a6, a7, a8); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 8 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8> GroupedKernel<T1, T2, T3, T4, T5, T6, T7, T8>(Action<T1, T2, T3, T4, T5, T6, T7, T8> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8>((c, a1, a2, a3, a4, a5, a6, a7, a8) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5, a6, a7, a8); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 9 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9> Kernel<T1, T2, T3, T4, T5, T6, T7, T8, T9>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9>((i, a1, a2, a3, a4, a5, a6, a7, a8, a9) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5, a6, a7, a8, a9); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 9 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9> GroupedKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9>((c, a1, a2, a3, a4, a5, a6, a7, a8, a9) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5, a6, a7, a8, a9); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 10 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> Kernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>((i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 10 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> GroupedKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>((c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 11 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> Kernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>((i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 11 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> GroupedKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>((c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 12 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> Kernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>((i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 12 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> GroupedKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>((c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 13 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> Kernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>((i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 13 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> GroupedKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>((c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13); });
        });
    /// <summary>Cached launcher of an implicitly grouped 1-D kernel with 14 parameter(s).</summary>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14> Kernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct where T14 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadAutoGroupedStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>((i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14) => { Log?.Add(AutoLaunch(name, i)); if (!PlanOnly) run(i, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14); });
        });
    /// <summary>Cached launcher of an explicitly grouped kernel (shared memory, barriers) with 14 parameter(s).</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14> GroupedKernel<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14> kernel) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct where T14 : struct =>
        Cached(kernel, () =>
        {
            var run = Accelerator.LoadStreamKernel(kernel); string name = KernelName(kernel);
            return new Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>((c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14) => { Log?.Add(GroupedLaunch(name, c)); if (!PlanOnly) run(c, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14); });
        });
}
