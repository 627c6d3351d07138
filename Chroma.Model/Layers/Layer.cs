namespace Chroma.Model.Layers;

/// <summary>
/// Base of the network's layers. A layer's forward keeps what its backward needs (its input and
/// intermediate results) in buffers it owns; buffers are reused while shapes stay the same, so a
/// training loop allocates nothing after its first step. A returned output stays valid until the
/// layer's next forward; callers must not dispose it.
/// </summary>
public abstract class Layer : IDisposable
{
    readonly List<Tensor> _owned = [];
    // Buffers set aside when a slot changed shape, reused when that shape comes back: inference runs
    // the low-level layers on the full image and on the 224x224 global input in turn, and without
    // these every photo would allocate (and the runtime zero) both sets of activations again
    // (about 100 MB a photo at width 1).
    readonly List<Tensor> _spare = [];
    const int MaxSpare = 4;

    /// <summary>
    /// Returns <paramref name="t"/> if it already has <paramref name="shape"/>, else a buffer of that
    /// shape: one this layer set aside earlier (old contents) or a new zeroed one.
    /// </summary>
    protected Tensor Ensure(ref Tensor? t, Device device, params int[] shape) => Acquire(ref t, device, shape, out _);

    /// <summary>Like <see cref="Ensure"/>, then zeroed: for gradient buffers that backward accumulates into.</summary>
    protected Tensor EnsureZeroed(ref Tensor? t, Device device, params int[] shape)
    {
        var result = Acquire(ref t, device, shape, out bool fresh);
        if (!fresh) result.Clear();
        return result;
    }

    Tensor Acquire(ref Tensor? t, Device device, int[] shape, out bool fresh)
    {
        fresh = false;
        if (t is not null && t.Shape.SequenceEqual(shape)) return t;
        if (t is not null)
        {
            _owned.Remove(t);
            _spare.Add(t);
            if (_spare.Count > MaxSpare) { _spare[0].Dispose(); _spare.RemoveAt(0); }
        }
        int i = _spare.FindIndex(s => s.Device == device && s.Shape.SequenceEqual(shape));
        if (i >= 0) { t = _spare[i]; _spare.RemoveAt(i); }
        else { t = device.Zeros(shape); fresh = true; }
        _owned.Add(t);
        return t;
    }

    public virtual void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        foreach (var t in _spare) t.Dispose();
        _owned.Clear();
        _spare.Clear();
        GC.SuppressFinalize(this);
    }
}

/// <summary>What follows a convolution or fully connected layer.</summary>
public enum Activation
{
    /// <summary>Batch normalization, then ReLU (every hidden layer of the paper).</summary>
    BnRelu,
    /// <summary>Sigmoid, no batch norm (the chrominance output layer).</summary>
    SigmoidOut,
    /// <summary>Nothing (the class logits).</summary>
    None,
}
