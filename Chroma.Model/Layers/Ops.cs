using Chroma.Kernels;

namespace Chroma.Model.Layers;

/// <summary>Nearest-neighbour upsampling x2 (<see cref="UpsampleNearest"/>): x [N, C, H, W] -> [N, C, 2H, 2W]. No parameters.</summary>
public sealed class Upsample(string name) : UnaryModule(name)
{
    Tensor? _y;

    public override Tensor Forward(Tensor x, bool training)
    {
        if (x.Rank != 4) throw new ArgumentException($"{Name}: expected input [N, C, H, W], got {x.ShapeString}.");
        var y = Ensure(ref _y, x.Device, x.Dim(0), x.Dim(1), x.Dim(2) * 2, x.Dim(3) * 2);
        UpsampleNearest.Forward(x, y);
        return y;
    }

    /// <summary>dx += the sum of each 2 x 2 block of dy.</summary>
    public override void Backward(Tensor dy, Tensor? dx)
    {
        if (dx is not null) UpsampleNearest.Backward(dy, dx);
    }
}

/// <summary>
/// The fusion layer's input (<see cref="Fusion"/>): mid-level maps [N, Cl, H, W] and the global vector
/// [N, Cg] tiled over H x W -> [N, Cl + Cg, H, W]; the fusion convolution follows. No parameters.
/// </summary>
public sealed class FusionInput(string name) : BinaryModule(name)
{
    Tensor? _y;

    /// <summary>a: local maps [N, Cl, H, W]; b: global vector [N, Cg].</summary>
    public override Tensor Forward(Tensor a, Tensor b, bool training)
    {
        if (a.Rank != 4 || b.Rank != 2 || b.Dim(0) != a.Dim(0))
            throw new ArgumentException($"{Name}: expected local [N, C, H, W] and global [N, C'], got {a.ShapeString} and {b.ShapeString}.");
        var y = Ensure(ref _y, a.Device, a.Dim(0), a.Dim(1) + b.Dim(1), a.Dim(2), a.Dim(3));
        Fusion.Forward(a, b, y);
        return y;
    }

    /// <summary>da += dy[:, :Cl]; db += dy[:, Cl:] summed over H x W.</summary>
    public override void Backward(Tensor dy, Tensor? da, Tensor? db)
    {
        if (da is not null || db is not null) Fusion.Backward(dy, da, db);
    }
}

/// <summary>
/// The global map flattened to a vector per image: x [N, C, H, W] -> [N, C H W] (C, H, W order, as
/// PyTorch's flatten), a view of x. Its gradient is its input's (<see cref="Module.PassesGradientThrough"/>).
/// </summary>
public sealed class Flatten(string name) : UnaryModule(name)
{
    Tensor? _x, _view;

    public override bool PassesGradientThrough => true;

    public override Tensor Forward(Tensor x, bool training)
    {
        // The view is kept while the input buffer is the same one, so a step makes no new tensor.
        if (!ReferenceEquals(x, _x) || _view is null) { _x = x; _view = x.Reshape(x.Dim(0), x.Length / x.Dim(0)); }
        return _view;
    }

    /// <summary>Not called by the tape: the consumers of the view accumulate into the input's gradient directly.</summary>
    public override void Backward(Tensor dy, Tensor? dx) =>
        throw new InvalidOperationException($"{Name}: a flatten has no backward of its own; its output's gradient is its input's.");
}

/// <summary>
/// A copy of x into a buffer of its own: the low-level result of the local image, kept while the same
/// low-level layers run again on a separate global input (their buffers are reused). Its gradient is
/// its input's (<see cref="Module.PassesGradientThrough"/>).
/// </summary>
public sealed class Keep(string name) : UnaryModule(name)
{
    Tensor? _y;

    public override bool PassesGradientThrough => true;

    public override Tensor Forward(Tensor x, bool training)
    {
        var y = Ensure(ref _y, x.Device, x.Shape.ToArray());
        x.Device.Copy(x, y);
        return y;
    }

    /// <summary>Not called by the tape: the consumers of the copy accumulate into the input's gradient directly.</summary>
    public override void Backward(Tensor dy, Tensor? dx) =>
        throw new InvalidOperationException($"{Name}: a copy has no backward of its own; its output's gradient is its input's.");
}
