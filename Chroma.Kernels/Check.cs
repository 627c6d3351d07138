namespace Chroma.Kernels;

/// <summary>Argument checks shared by the ops: every message names the op and the offending tensor.</summary>
internal static class Check
{
    public static void SameDevice(string op, params Tensor?[] tensors)
    {
        Device? first = null;
        foreach (var t in tensors)
        {
            if (t is null) continue;
            first ??= t.Device;
            if (!ReferenceEquals(first, t.Device))
                throw new ArgumentException($"{op}: tensors are on different devices ({first.Name} and {t.Device.Name}).");
        }
    }

    public static void SameLength(string op, Tensor a, Tensor b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"{op}: {a.ShapeString} and {b.ShapeString} must have the same number of elements.");
    }

    public static void Rank(string op, string name, Tensor t, int rank)
    {
        if (t.Rank != rank) throw new ArgumentException($"{op}: {name} must have rank {rank}, got {t.ShapeString}.");
    }

    public static void Shape(string op, string name, Tensor t, params int[] shape)
    {
        if (!t.Shape.SequenceEqual(shape))
            throw new ArgumentException($"{op}: {name} must have shape [{string.Join(", ", shape)}], got {t.ShapeString}.");
    }
}
