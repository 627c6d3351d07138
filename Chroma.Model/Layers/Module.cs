namespace Chroma.Model.Layers;

/// <summary>
/// The contract of everything a network wires: a named unit with a forward (its own signature, by
/// the number of inputs: <see cref="UnaryModule"/>, <see cref="BinaryModule"/>), the parameters it
/// registered in the <see cref="ParameterStore"/>, and a backward for its last training-mode forward.
/// A network never calls backward itself: its training forward records each module run on a
/// <see cref="Tape"/>, and the tape derives the network's backward from that record.
/// </summary>
/// <remarks>
/// Backward accumulates (<c>+=</c>) into the parameter gradients and into each input gradient it is
/// given (null: that input needs none, e.g. the network's input image), like the ops. A module keeps
/// what its backward needs (its inputs, intermediate results) from its last forward, so it may run at
/// most once in a recorded forward that is differentiated.
/// </remarks>
public abstract class Module(string name) : Layer
{
    /// <summary>PyTorch's name of the module (its parameters' prefix, e.g. <c>mid.conv1</c>).</summary>
    public string Name { get; } = name;

    /// <summary>Number of input tensors of the forward.</summary>
    public abstract int InputCount { get; }

    /// <summary>The store entries (parameters and state) this module declared; none for an op without weights.</summary>
    public virtual IReadOnlyList<ParameterStore.Entry> Parameters => [];

    /// <summary>
    /// True for an op whose output is its input, reshaped or copied (Jacobian the identity): the tape then
    /// hands the consumers of its output the input's gradient buffer itself (viewed in the output's shape)
    /// and never calls its backward, which costs no launch.
    /// </summary>
    public virtual bool PassesGradientThrough => false;

    /// <summary>
    /// Backward of the last training-mode forward, as the tape calls it: <paramref name="dy"/> the output's
    /// gradient; parameter gradients += their part, and <c>dInputs[i]</c> += the gradient of input i unless null.
    /// </summary>
    public abstract void RunBackward(Tensor dy, ReadOnlySpan<Tensor?> dInputs);

    public override string ToString() => Name;
}

/// <summary>A module of one input (a convolution, a fully connected layer, upsampling, a reshape).</summary>
public abstract class UnaryModule(string name) : Module(name)
{
    public sealed override int InputCount => 1;

    /// <summary>x -> y; y is a buffer the module owns (valid until its next forward; callers must not dispose it).</summary>
    public abstract Tensor Forward(Tensor x, bool training);

    /// <summary>Accumulates parameter gradients, and dx += input gradient unless null.</summary>
    public abstract void Backward(Tensor dy, Tensor? dx);

    public sealed override void RunBackward(Tensor dy, ReadOnlySpan<Tensor?> dInputs) => Backward(dy, dInputs[0]);
}

/// <summary>A module of two inputs (the fusion of the mid-level maps with the global vector).</summary>
public abstract class BinaryModule(string name) : Module(name)
{
    public sealed override int InputCount => 2;

    /// <summary>(a, b) -> y; y is a buffer the module owns (valid until its next forward).</summary>
    public abstract Tensor Forward(Tensor a, Tensor b, bool training);

    /// <summary>Accumulates parameter gradients, da += and db += the inputs' gradients (each unless null).</summary>
    public abstract void Backward(Tensor dy, Tensor? da, Tensor? db);

    public sealed override void RunBackward(Tensor dy, ReadOnlySpan<Tensor?> dInputs) => Backward(dy, dInputs[0], dInputs[1]);
}
