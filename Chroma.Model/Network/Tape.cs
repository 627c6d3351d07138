using Chroma.Model.Layers;

namespace Chroma.Model;

/// <summary>
/// The record of a training-mode forward, and the backward derived from it. A network's forward runs
/// its modules through the tape (<see cref="Run(UnaryModule, Tensor)"/>); in training mode each run is
/// an entry (module, input tensors, output tensor). <see cref="Backward"/> walks the entries in reverse:
/// every tensor gets one gradient buffer, zeroed before its first use in the pass, and each module
/// adds its inputs' gradients into their buffers, so a tensor read by two modules (the low-level maps:
/// the mid-level and the global network; the global 512-vector: fc3 and the classifier) receives the
/// sum. Entries whose output received no gradient (the classifier without labels) are skipped; tensors
/// no module produced (the network's input) get none.
/// </summary>
/// <remarks>
/// The graph is static, so everything is reused between steps: the entry and tensor lists keep their
/// capacity, tensor slot i keeps its gradient buffer while its shape stays the same, and a module whose
/// output is its input (<see cref="Module.PassesGradientThrough"/>: a flatten, a copy) hands on a cached
/// view of its input's gradient buffer. After the first step a recorded forward and its backward
/// allocate nothing on the device. Entries are recorded in execution order, so the reverse order runs
/// every consumer of a tensor before its producer.
/// </remarks>
public sealed class Tape : IDisposable
{
    readonly record struct Entry(Module Module, int Input0, int Input1, int Output);

    /// <summary>A tensor of the recorded forward (slot i of this forward) and its gradient.</summary>
    sealed class Value
    {
        public Tensor Tensor = null!;
        /// <summary>Index of the entry that produced it; -1 for an input of the network.</summary>
        public int Producer;
        /// <summary>The gradient buffer this slot owns (kept between steps), or for a pass-through output the view it last handed on.</summary>
        public Tensor? Buffer, View;
        /// <summary>The view's source buffer.</summary>
        public Tensor? ViewOf;
        /// <summary>The gradient of this backward pass (valid while <see cref="Pass"/> is the current one).</summary>
        public Tensor? Gradient;
        public int Pass;
        public bool Seeded;
    }

    readonly List<Entry> _entries = [];
    readonly List<Value> _values = [];
    readonly Tensor?[] _inputGradients = new Tensor?[2];
    int _valueCount, _pass;
    bool _training, _recorded;
    Module? _repeated;

    /// <summary>Starts a forward: training mode records it (forgetting the previous record), inference does not.</summary>
    public void Begin(bool training)
    {
        _training = training;
        _recorded = training;
        _entries.Clear();
        _valueCount = 0;
        _repeated = null;
    }

    /// <summary>Runs <paramref name="module"/> on x (recorded in training mode); returns its output.</summary>
    public Tensor Run(UnaryModule module, Tensor x)
    {
        var y = module.Forward(x, _training);
        if (_training) Record(module, x, null, y);
        return y;
    }

    /// <summary>Runs a chain of modules, each on the previous one's output.</summary>
    public Tensor Run(IReadOnlyList<UnaryModule> chain, Tensor x)
    {
        for (int i = 0; i < chain.Count; i++) x = Run(chain[i], x);
        return x;
    }

    /// <summary>Runs a two-input module (recorded in training mode); returns its output.</summary>
    public Tensor Run(BinaryModule module, Tensor a, Tensor b)
    {
        var y = module.Forward(a, b, _training);
        if (_training) Record(module, a, b, y);
        return y;
    }

    /// <summary>The modules of the recorded forward, in execution order (for tests and listings).</summary>
    public IEnumerable<Module> Recorded => _entries.Select(e => e.Module);

    void Record(Module module, Tensor a, Tensor? b, Tensor y)
    {
        if (_repeated is null)
            foreach (var e in _entries)
                if (ReferenceEquals(e.Module, module)) { _repeated = module; break; }
        int input0 = Find(a), input1 = b is null ? -1 : Find(b);
        _entries.Add(new Entry(module, input0, input1, NewValue(y, _entries.Count)));
    }

    /// <summary>The slot of a tensor of this forward: its latest producer's, or a new slot for an input of the network.</summary>
    int Find(Tensor t)
    {
        for (int i = _valueCount - 1; i >= 0; i--)
            if (ReferenceEquals(_values[i].Tensor, t)) return i;
        return NewValue(t, -1);
    }

    int NewValue(Tensor t, int producer)
    {
        if (_valueCount == _values.Count) _values.Add(new Value());
        var v = _values[_valueCount];
        v.Tensor = t;
        v.Producer = producer;
        return _valueCount++;
    }

    /// <summary>
    /// Backward of the recorded forward, from the gradients of its outputs (<paramref name="outputs"/>[i] has
    /// gradient <paramref name="gradients"/>[i]; a null gradient: that output does not enter the loss).
    /// Accumulates every parameter gradient into the store's gradient buffer.
    /// </summary>
    public void Backward(ReadOnlySpan<Tensor> outputs, ReadOnlySpan<Tensor?> gradients)
    {
        if (!_recorded) throw new InvalidOperationException("backward needs a training-mode forward first.");
        if (_repeated is not null)
            throw new InvalidOperationException($"backward needs a training-mode forward in which each module runs once; {_repeated.Name} ran twice " +
                                                "(e.g. the low-level layers on a separate global input) and keeps only its last run's inputs.");
        if (outputs.Length != gradients.Length) throw new ArgumentException("one gradient per output.");
        _pass++;
        for (int i = 0; i < outputs.Length; i++)
        {
            if (gradients[i] is not { } g) continue;
            int slot = -1;
            for (int s = _valueCount - 1; s >= 0 && slot < 0; s--)
                if (ReferenceEquals(_values[s].Tensor, outputs[i])) slot = s;
            if (slot < 0 || _values[slot].Producer < 0) throw new ArgumentException($"output {i} {outputs[i].ShapeString} is not a result of the recorded forward.");
            if (!g.Shape.SequenceEqual(outputs[i].Shape)) throw new ArgumentException($"gradient {g.ShapeString} does not match output {outputs[i].ShapeString}.");
            var v = _values[slot];
            v.Gradient = g;
            v.Pass = _pass;
            v.Seeded = true;
        }

        for (int e = _entries.Count - 1; e >= 0; e--)
        {
            var entry = _entries[e];
            var output = _values[entry.Output];
            // No gradient reached this output (nothing downstream enters the loss), or the module passes it through.
            if (output.Pass != _pass || entry.Module.PassesGradientThrough) continue;
            _inputGradients[0] = GradientOf(entry.Input0);
            _inputGradients[1] = entry.Input1 < 0 ? null : GradientOf(entry.Input1);
            entry.Module.RunBackward(output.Gradient!, _inputGradients.AsSpan(0, entry.Module.InputCount));
        }
        _inputGradients.AsSpan().Clear();
        for (int i = 0; i < _valueCount; i++) { _values[i].Seeded = false; _values[i].Gradient = null; }
    }

    /// <summary>
    /// The gradient buffer of slot i for this pass, zeroed at its first request (the consumers run
    /// first and accumulate into it); null for an input of the network.
    /// </summary>
    Tensor? GradientOf(int slot)
    {
        var v = _values[slot];
        if (v.Producer < 0) return null;
        if (v.Pass == _pass)
        {
            if (v.Seeded) throw new InvalidOperationException($"output {v.Tensor.ShapeString} of {_entries[v.Producer].Module.Name} is given a gradient and also read by a module; not supported.");
            return v.Gradient;
        }
        var producer = _entries[v.Producer];
        Tensor? gradient;
        if (producer.Module.PassesGradientThrough)
        {
            // The output is the input (reshaped or copied): its gradient is the input's buffer, viewed in this shape.
            var source = GradientOf(producer.Input0);
            if (source is not null && !ReferenceEquals(source, v.ViewOf))
            {
                v.ViewOf = source;
                v.View = source.Reshape(v.Tensor.Shape.ToArray());
            }
            gradient = source is null ? null : v.View;
        }
        else
        {
            if (v.Buffer is not null && v.Buffer.Shape.SequenceEqual(v.Tensor.Shape) && v.Buffer.Device == v.Tensor.Device)
                v.Buffer.Clear();
            else
            {
                v.Buffer?.Dispose();
                v.Buffer = v.Tensor.Device.Zeros(v.Tensor.Shape.ToArray());
            }
            gradient = v.Buffer;
        }
        v.Gradient = gradient;
        v.Pass = _pass;
        v.Seeded = false;
        return gradient;
    }

    public void Dispose()
    {
        foreach (var v in _values) { v.Buffer?.Dispose(); v.Buffer = v.View = v.ViewOf = v.Gradient = null; }
        _values.Clear();
        _entries.Clear();
    }
}
