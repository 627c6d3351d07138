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

    /// <summary>Returns <paramref name="t"/> if it already has <paramref name="shape"/>, else a new zeroed tensor.</summary>
    protected Tensor Ensure(ref Tensor? t, Device device, params int[] shape)
    {
        if (t is not null && t.Shape.SequenceEqual(shape)) return t;
        if (t is not null) { _owned.Remove(t); t.Dispose(); }
        t = device.Zeros(shape);
        _owned.Add(t);
        return t;
    }

    /// <summary>Like <see cref="Ensure"/>, then zeroed: for gradient buffers that backward accumulates into.</summary>
    protected Tensor EnsureZeroed(ref Tensor? t, Device device, params int[] shape)
    {
        bool reused = t is not null && t.Shape.SequenceEqual(shape);
        var result = Ensure(ref t, device, shape);
        if (reused) result.Clear();
        return result;
    }

    public virtual void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
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
