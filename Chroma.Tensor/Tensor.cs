using ILGPU;
using ILGPU.Runtime;

namespace Chroma;

/// <summary>
/// A dense float32 tensor in row-major (NCHW for images) order, living on one <see cref="Device"/>.
/// </summary>
/// <remarks>
/// Storage is either a managed array (CPU path) or an ILGPU buffer (GPU path). A tensor may be a
/// view into a larger storage (<see cref="Slice"/>, <see cref="Reshape"/>): the model keeps all its
/// parameters in one buffer with views into it, so the optimizer is one pass over one buffer.
/// Only the tensor that allocated the storage frees it.
/// </remarks>
public sealed class Tensor : IDisposable
{
    readonly int[] _shape;
    readonly bool _owner;
    readonly float[]? _host;
    readonly MemoryBuffer1D<float, Stride1D.Dense>? _buffer;
    bool _disposed;

    internal Tensor(Device device, int[] shape, float[] host, int offset, bool owner)
    {
        Device = device; _shape = shape; _host = host; Offset = offset; _owner = owner;
        Length = ShapeLength(shape);
    }

    internal Tensor(Device device, int[] shape, MemoryBuffer1D<float, Stride1D.Dense> buffer, int offset, bool owner)
    {
        Device = device; _shape = shape; _buffer = buffer; Offset = offset; _owner = owner;
        Length = ShapeLength(shape);
    }

    /// <summary>The device whose memory holds this tensor.</summary>
    public Device Device { get; }

    /// <summary>Dimensions, outermost first (e.g. N, C, H, W).</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>Offset of the first element in the underlying storage.</summary>
    public int Offset { get; }

    /// <summary>Size of dimension <paramref name="i"/>; negative counts from the end.</summary>
    public int Dim(int i) => _shape[i < 0 ? _shape.Length + i : i];

    /// <summary>True when the storage is a managed array (CPU path).</summary>
    public bool IsHost => _host is not null;

    /// <summary>The elements, for tensors on the CPU path.</summary>
    public Span<float> Span
    {
        get
        {
            ThrowIfDisposed();
            if (_host is null) throw new InvalidOperationException($"Tensor {ShapeString} lives on {Device.Name}; use ToArray() or a CPU tensor.");
            return _host.AsSpan(Offset, Length);
        }
    }

    /// <summary>The managed array behind a CPU tensor (elements start at <see cref="Offset"/>).</summary>
    public float[] HostArray => _host ?? throw new InvalidOperationException($"Tensor {ShapeString} is not on the CPU path.");

    /// <summary>The elements, for tensors on an ILGPU accelerator.</summary>
    public ArrayView<float> View
    {
        get
        {
            ThrowIfDisposed();
            if (_buffer is null) throw new InvalidOperationException($"Tensor {ShapeString} is on the CPU path, not an ILGPU accelerator.");
            return _buffer.View.SubView(Offset, Length);
        }
    }

    /// <summary>Shape as text, e.g. [2, 3, 7, 9].</summary>
    public string ShapeString => "[" + string.Join(", ", _shape) + "]";

    /// <summary>Copies the elements to a new managed array (synchronizing a GPU).</summary>
    public float[] ToArray()
    {
        ThrowIfDisposed();
        if (_host is not null) return _host.AsSpan(Offset, Length).ToArray();
        var result = new float[Length];
        Device.Download(this, result);
        return result;
    }

    /// <summary>Copies the elements into <paramref name="destination"/> (at least <see cref="Length"/> long; synchronizing a GPU), without a managed temporary.</summary>
    public void CopyTo(Span<float> destination)
    {
        ThrowIfDisposed();
        if (destination.Length < Length) throw new ArgumentException($"Tensor {ShapeString} needs {Length} values of room, got {destination.Length}.");
        if (_host is not null) _host.AsSpan(Offset, Length).CopyTo(destination);
        else Device.Download(this, destination);
    }

    /// <summary>Copies <paramref name="data"/> (exactly <see cref="Length"/> values) into this tensor.</summary>
    public void CopyFrom(ReadOnlySpan<float> data)
    {
        ThrowIfDisposed();
        if (data.Length != Length) throw new ArgumentException($"Expected {Length} values for tensor {ShapeString}, got {data.Length}.");
        if (_host is not null) data.CopyTo(_host.AsSpan(Offset, Length));
        else Device.Upload(data, this);
    }

    /// <summary>Sets every element to zero.</summary>
    public void Clear() => Device.Fill(this, 0f);

    /// <summary>A view of <paramref name="shape"/> elements starting <paramref name="offset"/> elements in.</summary>
    public Tensor Slice(int offset, params int[] shape)
    {
        ThrowIfDisposed();
        int len = ShapeLength(shape);
        if (offset < 0 || offset + len > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"Slice [{offset}, {offset + len}) is outside tensor {ShapeString}.");
        return _host is not null
            ? new Tensor(Device, (int[])shape.Clone(), _host, Offset + offset, owner: false)
            : new Tensor(Device, (int[])shape.Clone(), _buffer!, Offset + offset, owner: false);
    }

    /// <summary>A view of the same elements with another shape of the same length.</summary>
    public Tensor Reshape(params int[] shape)
    {
        if (ShapeLength(shape) != Length)
            throw new ArgumentException($"Cannot reshape {ShapeString} ({Length} elements) to [{string.Join(", ", shape)}].");
        return Slice(0, shape);
    }

    /// <summary>Checks that the shape equals <paramref name="expected"/>, naming <paramref name="what"/> otherwise.</summary>
    public void ExpectShape(string what, params int[] expected)
    {
        if (!Shape.SequenceEqual(expected))
            throw new ArgumentException($"{what}: expected shape [{string.Join(", ", expected)}], got {ShapeString}.");
    }

    /// <summary>Number of elements of a shape; throws on negative sizes or overflow.</summary>
    public static int ShapeLength(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension in shape [{string.Join(", ", shape.ToArray())}].");
            n *= d;
            if (n > int.MaxValue) throw new ArgumentException($"Shape [{string.Join(", ", shape.ToArray())}] has more than 2^31 elements.");
        }
        return (int)n;
    }

    void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_owner) _buffer?.Dispose();
    }

    public override string ToString() => $"Tensor{ShapeString} on {Device.Name}";
}
