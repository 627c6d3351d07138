using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Chroma.Kernels;

/// <summary>
/// Scratch memory of the CPU paths (the GPU's is <see cref="GpuDevice.Workspace"/>): a buffer per
/// thread and per use, pinned (pointers stay valid), 64-byte aligned, grown on demand and kept, so a
/// steady stream of calls allocates nothing. An op declares one slot per temporary,
/// <c>[ThreadStatic] static Workspace? _name;</c>, and leases it for the duration of a call:
/// <code>
/// using var cols = Workspace.Take(ref _im2colColumns, floats);   // cols.Pointer, or cols.Array from cols.Offset
/// </code>
/// Contents are undefined (write before reading). A thread that re-enters while its buffer is leased
/// (a Parallel.For item run by the thread that took it) gets a temporary one. The buffers are never
/// trimmed: each thread that ran an op keeps its largest temporaries (a 4 MB column buffer of the
/// convolution, the resize's intermediate image).
/// </summary>
internal sealed unsafe class Workspace
{
    float[] _data = [];
    float* _aligned;
    bool _leased;

    /// <summary>The buffer of <paramref name="slot"/>, at least <paramref name="floats"/> long, until the lease is disposed.</summary>
    public static Lease Take(ref Workspace? slot, int floats)
    {
        var w = slot ??= new Workspace();
        if (w._leased) w = new Workspace();
        w._leased = true;
        if (w._data.Length < floats + 16)
        {
            w._data = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
            nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(w._data));
            w._aligned = (float*)((start + 63) & ~(nint)63);
        }
        return new Lease(w);
    }

    public readonly struct Lease(Workspace owner) : IDisposable
    {
        public float* Pointer => owner._aligned;
        /// <summary>The pinned array behind <see cref="Pointer"/>, and Pointer's index in it (for array-based callees).</summary>
        public float[] Array => owner._data;
        public int Offset => (int)(owner._aligned - (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(owner._data)));
        /// <summary>The first <paramref name="length"/> floats (at most the length taken).</summary>
        public Span<float> Span(int length) => new(owner._aligned, length);
        public void Dispose() => owner._leased = false;
    }
}
