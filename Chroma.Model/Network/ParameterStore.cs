namespace Chroma.Model;

/// <summary>
/// All trainable parameters of a network in one flat buffer, with a gradient buffer of the same
/// layout and a third buffer for non-trained state (batch-norm running statistics). Each named
/// tensor is a view into these buffers, so the optimizer updates every parameter in one pass.
/// </summary>
/// <remarks>
/// <see cref="Version"/> counts changes of the values and state; layers cache what they derive from
/// them (inference-mode batch norm folded into the preceding weights) and recompute it when the
/// version moves. Library code bumps it wherever it writes the store (building, loading a model or
/// checkpoint, an optimizer step, a training-mode forward that updates running statistics). Code
/// that writes <see cref="Values"/>, <see cref="State"/> or an entry's <see cref="Entry.Value"/>
/// directly must call <see cref="MarkChanged"/> before the next inference.
/// </remarks>
public sealed class ParameterStore : IDisposable
{
    readonly List<Entry> _entries = [];
    readonly Dictionary<string, Entry> _byName = [];
    int _paramLength, _stateLength;
    bool _built;

    /// <summary>A named tensor: a parameter (trained) or state (saved, not trained).</summary>
    public sealed class Entry
    {
        internal Entry(string name, int[] shape, bool trained, int offset, Init init)
        { Name = name; Shape = shape; Trained = trained; Offset = offset; Initializer = init; }
        public string Name { get; }
        public int[] Shape { get; }
        public bool Trained { get; }
        internal int Offset { get; }
        internal Init Initializer { get; }
        public int Length => Tensor.ShapeLength(Shape);
        /// <summary>Values (a view into the store's buffer).</summary>
        public Tensor Value { get; internal set; } = null!;
        /// <summary>Gradient (a view into the gradient buffer); null for state.</summary>
        public Tensor? Grad { get; internal set; }
    }

    /// <summary>How a tensor is initialized.</summary>
    public enum Init { Zeros, Ones, HeNormal }

    public ParameterStore(Device device) => Device = device;

    public Device Device { get; }

    /// <summary>Every trainable value, concatenated.</summary>
    public Tensor Values { get; private set; } = null!;
    /// <summary>Gradients, same layout as <see cref="Values"/>.</summary>
    public Tensor Gradients { get; private set; } = null!;
    /// <summary>Non-trained state (running statistics), concatenated.</summary>
    public Tensor State { get; private set; } = null!;

    public IReadOnlyList<Entry> Entries => _entries;

    /// <summary>Number of changes to the values or state so far; caches derived from them compare it.</summary>
    public long Version => Interlocked.Read(ref _version);
    long _version;

    /// <summary>Records that the values or state changed (invalidates what layers derived from them).</summary>
    public void MarkChanged() => Interlocked.Increment(ref _version);

    /// <summary>
    /// Whether inference folds batch norm into the preceding layer's weights (default). Off, layers run
    /// the batch norm itself: tests compare the two computations.
    /// </summary>
    internal bool FoldBatchNorm { get; set; } = true;

    /// <summary>Number of trainable values.</summary>
    public int ParameterCount => _paramLength;

    public Entry this[string name] => _byName.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"no tensor named '{name}'");

    /// <summary>Declares a trainable parameter; its views exist after <see cref="Build"/>.</summary>
    public Entry Parameter(string name, Init init, params int[] shape) => Add(name, shape, trained: true, init);

    /// <summary>Declares non-trained state (saved with the weights).</summary>
    public Entry StateTensor(string name, Init init, params int[] shape) => Add(name, shape, trained: false, init);

    Entry Add(string name, int[] shape, bool trained, Init init)
    {
        if (_built) throw new InvalidOperationException("ParameterStore is already built.");
        if (_byName.ContainsKey(name)) throw new ArgumentException($"duplicate tensor name '{name}'");
        int len = Tensor.ShapeLength(shape);
        var e = new Entry(name, shape, trained, trained ? _paramLength : _stateLength, init);
        if (trained) _paramLength = checked(_paramLength + len); else _stateLength = checked(_stateLength + len);
        _entries.Add(e); _byName[name] = e;
        return e;
    }

    /// <summary>
    /// Allocates the buffers, creates the views and initializes values (He normal from
    /// <paramref name="seed"/>); with <paramref name="initialize"/> false everything stays zero,
    /// for networks whose values are about to be loaded (saves seconds at width 1).
    /// </summary>
    public void Build(int seed, bool initialize = true)
    {
        if (_built) throw new InvalidOperationException("ParameterStore is already built.");
        _built = true;
        Values = Device.Zeros(Math.Max(_paramLength, 1));
        Gradients = Device.Zeros(Math.Max(_paramLength, 1));
        State = Device.Zeros(Math.Max(_stateLength, 1));
        var hostValues = new float[Values.Length];
        var hostState = new float[State.Length];
        var rng = new Random(seed);
        foreach (var e in _entries)
        {
            e.Value = e.Trained ? Values.Slice(e.Offset, e.Shape) : State.Slice(e.Offset, e.Shape);
            e.Grad = e.Trained ? Gradients.Slice(e.Offset, e.Shape) : null;
            if (!initialize) continue;
            var target = e.Trained ? hostValues.AsSpan(e.Offset, e.Length) : hostState.AsSpan(e.Offset, e.Length);
            switch (e.Initializer)
            {
                case Init.Ones: target.Fill(1f); break;
                case Init.HeNormal:
                    // Kaiming normal for ReLU networks: std = sqrt(2 / fan_in), fan_in = prod(shape[1..]).
                    int fanIn = e.Length / e.Shape[0];
                    double std = Math.Sqrt(2.0 / fanIn);
                    for (int i = 0; i < target.Length; i++) target[i] = (float)(std * Gaussian(rng));
                    break;
            }
        }
        MarkChanged();
        if (!initialize) return;
        Values.CopyFrom(hostValues);
        State.CopyFrom(hostState);
    }

    static double Gaussian(Random rng)
    {
        // Box-Muller; 1 - NextDouble() is in (0, 1], so the log is finite.
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public void ZeroGradients() => Gradients.Clear();

    public void Dispose()
    {
        Values?.Dispose(); Gradients?.Dispose(); State?.Dispose();
    }
}
