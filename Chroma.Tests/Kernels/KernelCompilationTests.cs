using System.Reflection;
using Chroma.Kernels;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Xunit;

namespace Chroma.Tests.Kernels;

/// <summary>
/// Compiles every ILGPU kernel of Chroma.Kernels and Chroma.Tensor with ILGPU's two GPU code
/// generators, without a GPU: the PTX backend (CUDA, SM_90 as on an H100/H200) and the OpenCL C
/// backend. The op tests run kernels on ILGPU's CPU accelerator, which accepts things a GPU
/// backend rejects (a double where the OpenCL device has no fp64, an unsupported intrinsic,
/// shared memory in an implicitly grouped kernel); this catches them in CI.
/// </summary>
/// <remarks>
/// A kernel is a static method whose name ends in "Kernel" and that returns void. One whose first
/// parameter is an ILGPU index (Index1D..3D) is implicitly grouped (launched through
/// <c>GpuDevice.Kernel</c>); any other is explicitly grouped (<c>GpuDevice.GroupedKernel</c>:
/// Grid/Group indices, shared memory, barriers). New kernels are found by reflection, so a new op
/// needs no line here.
/// <para>
/// Limits: the OpenCL backend emits OpenCL C source, which a driver compiles only when an
/// accelerator loads it, and no ptxas runs here: this test checks ILGPU's code generation, not the
/// vendors' compilers. CI checks those on the output of this test (see CHROMA_KERNEL_DUMP):
/// <c>scripts/check-ptx.sh</c> assembles every kernel's PTX with NVIDIA's ptxas for sm_80 and
/// sm_90, and <c>scripts/test-opencl.sh</c> has PoCL's OpenCL compiler build and run the OpenCL C.
/// Earlier, by hand: all 18 kernels of the time, as OpenCL C, compiled with clang 14
/// (-cl-std=CL2.0, for spir64 and for AMD gfx90a), and their PTX assembled with ptxas 13.0
/// (-arch=sm_90) and loaded through the CUDA driver (580) on an H200.
/// </para>
/// </remarks>
public class KernelCompilationTests
{
    /// <summary>The CUDA target: Hopper (H100/H200), the GPUs this project is measured on.</summary>
    static readonly CudaArchitecture PtxArchitecture = CudaArchitecture.SM_90;

    /// <summary>
    /// PTX ISA 8.4 rather than the newest ILGPU 1.5.3 emits (8.8, what a CudaAccelerator picks on a
    /// CUDA 12.9 or newer driver): scripts/check-ptx.sh assembles the dumped PTX with the ptxas of
    /// Debian 13's nvidia-cuda-toolkit (12.4), which accepts PTX ISA up to 8.4 and rejects
    /// ".version 8.8". ILGPU's ISA setting changes only that ".version" line (the kernels generated
    /// at ISA 7.8, 8.4 and 8.8 were compared: nothing else differs), so this checks the same code.
    /// </summary>
    static readonly CudaInstructionSet PtxInstructionSet = CudaInstructionSet.ISA_84;

    /// <summary>
    /// The OpenCL C version ILGPU requires of every OpenCL device (<see cref="CLBackend.MinimumVersion"/>,
    /// 2.0); later versions generate the same code.
    /// </summary>
    static readonly CLCVersion OpenClVersion = CLBackend.MinimumVersion;

    static readonly Assembly[] KernelAssemblies = [typeof(Relu).Assembly, typeof(GpuDevice).Assembly];

    static readonly Lazy<IReadOnlyList<(string Name, MethodInfo Method)>> s_kernels = new(Discover);

    /// <summary>Every kernel by "Type.Method" name (nested types as "Outer.Inner"), as theory data.</summary>
    public static TheoryData<string> Kernels => new(s_kernels.Value.Select(k => k.Name));

    [Fact]
    public void Discovery_finds_every_kernel_once()
    {
        var kernels = s_kernels.Value;
        var names = kernels.Select(k => k.Name).ToList();
        // A broken discovery must not let the theories below pass with no cases. 18 kernels
        // existed when this test was written; more only get added.
        Assert.True(kernels.Count >= 15, $"found only {kernels.Count} kernels: {string.Join(", ", names)}");
        var duplicates = names.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(duplicates.Count == 0, $"kernel names are not unique (overloads?): {string.Join(", ", duplicates)}");
        // Anchors: one implicitly grouped kernel per assembly and one explicitly grouped kernel.
        Assert.Contains("Relu.ForwardKernel", names);
        Assert.Contains("GpuDevice.FillKernel", names);
        Assert.Contains("MseLoss.SumSquaredErrorKernel", names);
        Assert.Contains(kernels, k => !IsImplicitlyGrouped(k.Method));
        var generic = kernels.Where(k => k.Method.ContainsGenericParameters).Select(k => k.Name).ToList();
        Assert.True(generic.Count == 0, $"generic kernels cannot be compiled without type arguments: {string.Join(", ", generic)}");
    }

    [Theory, MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_PTX_for_SM_90(string kernel)
    {
        var method = Find(kernel);
        // A kernel that fails to compile can leave a context unusable, so each compilation gets its own.
        using var context = Context.Create(b => b.EnableAlgorithms());
        // As CudaAccelerator does on an H100: the capabilities (fp16 min/max/tanh...) are SM_90's, and
        // the PTX names the lowest architecture that has them all (sm_80 in ILGPU 1.5.3).
        var capabilities = new CudaCapabilityContext(PtxArchitecture);
        using var backend = new PTXBackend(context, capabilities, PtxArchitecture, PtxInstructionSet, nvvmAPI: null);
        var compiled = Assert.IsType<PTXCompiledKernel>(Compile(backend, kernel, method));
        string ptx = compiled.PTXAssembly;
        Assert.Contains($".version {PtxInstructionSet.Major}.{PtxInstructionSet.Minor}", ptx);
        Assert.Contains($".target {capabilities.TargetArchitecture.ToString().ToLowerInvariant()}", ptx);
        Assert.Contains(".entry ", ptx);
        Dump(kernel, "ptx", ptx);
    }

    [Theory, MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_OpenCL_C(string kernel)
    {
        var method = Find(kernel);
        using var context = Context.Create(b => b.EnableAlgorithms());
        // The least an OpenCL 2.0 GPU offers: ILGPU needs the generic address space on every OpenCL
        // device, but fp16, fp64, 64-bit atomics and sub-groups are optional (Intel GPUs lack fp64),
        // so a kernel that uses one of them fails here rather than on some user's GPU. The vendor is
        // AMD, the OpenCL target: ILGPU 1.5.3 has OpenCL warp shuffles for Intel only, so a kernel
        // with Warp.Shuffle fails here as it would on an AMD GPU.
        var capabilities = new CLCapabilityContext(
            float16: false,
            float64: false,
            int64_Atomics: false,
            genericAddressSpace: true,
            subGroups: false);
        using var backend = new CLBackend(context, capabilities, CLDeviceVendor.AMD, OpenClVersion);
        var compiled = Assert.IsType<CLCompiledKernel>(Compile(backend, kernel, method));
        Assert.Contains("kernel void", compiled.Source);
        Dump(kernel, "cl", compiled.Source);
    }

    static CompiledKernel Compile(Backend backend, string kernel, MethodInfo method)
    {
        var entry = IsImplicitlyGrouped(method)
            ? EntryPointDescription.FromImplicitlyGroupedKernel(method)
            : EntryPointDescription.FromExplicitlyGroupedKernel(method);
        try
        {
            return backend.Compile(entry, KernelSpecialization.Empty);
        }
        catch (Exception e)
        {
            // ILGPU wraps the cause (the IL construct and where it is) in InnerException.
            throw new Xunit.Sdk.XunitException(
                $"{kernel} does not compile for {backend.BackendType}: {Describe(e)}");
        }
    }

    /// <summary>
    /// With CHROMA_KERNEL_DUMP set to a folder, writes each generated kernel there ("Relu.ForwardKernel.ptx",
    /// ".cl"), so a real tool chain can check it (scripts/check-ptx.sh does): <c>ptxas -arch=sm_90 X.ptx</c>,
    /// <c>clang -x cl -cl-std=CL2.0 -Xclang -finclude-default-header -fsyntax-only X.cl</c>.
    /// </summary>
    static void Dump(string kernel, string extension, string code)
    {
        string? folder = Environment.GetEnvironmentVariable(DumpVariable);
        if (string.IsNullOrWhiteSpace(folder)) return;
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, $"{kernel}.{extension}"), code);
    }

    const string DumpVariable = "CHROMA_KERNEL_DUMP";

    static string Describe(Exception e)
    {
        var parts = new List<string>();
        for (var x = e; x != null; x = x.InnerException)
            if (x is not AggregateException) parts.Add($"{x.GetType().Name}: {x.Message}");
        return string.Join(" -> ", parts);
    }

    static bool IsImplicitlyGrouped(MethodInfo method)
    {
        var parameters = method.GetParameters();
        if (parameters.Length == 0) return false;
        var first = parameters[0].ParameterType;
        return first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D);
    }

    static MethodInfo Find(string kernel) =>
        s_kernels.Value.Single(k => k.Name == kernel).Method;

    static List<(string Name, MethodInfo Method)> Discover()
    {
        const BindingFlags Statics = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        var kernels = new List<(string, MethodInfo)>();
        foreach (var assembly in KernelAssemblies)
            foreach (var type in assembly.GetTypes()) // nested types included
                foreach (var method in type.GetMethods(Statics))
                    if (method.Name.EndsWith("Kernel", StringComparison.Ordinal) && method.ReturnType == typeof(void) && !IsCpuCode(method))
                        kernels.Add(($"{TypeName(type)}.{method.Name}", method));
        kernels.Sort((a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        return kernels;
    }

    /// <summary>
    /// CPU SIMD code that happens to be called a kernel (e.g. the GEMM micro-kernel): it takes raw
    /// pointers, which no GPU kernel can, and is not a launch target.
    /// </summary>
    static bool IsCpuCode(MethodInfo method) => method.GetParameters().Any(p => p.ParameterType.IsPointer);

    static string TypeName(Type type) =>
        type.DeclaringType is { } outer ? $"{TypeName(outer)}.{type.Name}" : type.Name;
}
