namespace Chroma.Kernels.Harness;

/// <summary>
/// One shape an op is checked or timed on: a name and named whole-number sizes, e.g. a convolution's
/// N, Cin, H, W, Cout, k, stride, padding, dilation, groups (flags such as "bias" are 0 or 1). The same
/// keys are used by an op's declared check cases and by the benchmark list <c>op_shapes.json</c>, which
/// the PyTorch peer (<c>Chroma.Benchmarks/peer/ops_torch.py</c>) reads too.
/// </summary>
public sealed record OpCase(string Name, IReadOnlyDictionary<string, int> Sizes)
{
    /// <summary>A case from (key, value) pairs, in the order given (which <see cref="ToString"/> keeps).</summary>
    public static OpCase Of(string name, params (string Key, int Value)[] sizes)
    {
        var d = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (k, v) in sizes) d[k] = v;
        return new OpCase(name, d);
    }

    /// <summary>A size the op needs; a missing one names the case and the key.</summary>
    public int this[string key] => Sizes.TryGetValue(key, out int v) ? v : throw new KeyNotFoundException($"op case '{Name}' has no size '{key}'.");

    /// <summary>A size with a default (dilation 1, groups 1, bias 1 ...).</summary>
    public int Get(string key, int fallback) => Sizes.TryGetValue(key, out int v) ? v : fallback;

    public bool Flag(string key, bool fallback = true) => Get(key, fallback ? 1 : 0) != 0;

    /// <summary>The same case with one size changed (e.g. a batch of 3 for the chunked convolution tests); the name says so.</summary>
    public OpCase With(string key, int value) => With(key, value, $"{key}={value}");

    /// <summary>The same case with one size changed, <paramref name="label"/> added to its name ("odd_p1 Vector256").</summary>
    public OpCase With(string key, int value, string label) =>
        new($"{Name} {label}", new Dictionary<string, int>(Sizes, StringComparer.Ordinal) { [key] = value });

    // Records compare dictionaries by reference; two cases are the same when name and sizes are.
    public bool Equals(OpCase? other) =>
        other is not null && Name == other.Name && Sizes.Count == other.Sizes.Count &&
        Sizes.All(kv => other.Sizes.TryGetValue(kv.Key, out int v) && v == kv.Value);

    public override int GetHashCode() => Name.GetHashCode(StringComparison.Ordinal);

    /// <summary>"k3s2p1 (N=2, Cin=3, ...)": failure messages and bench tables name the case and its sizes.</summary>
    public override string ToString() => $"{Name} ({string.Join(", ", Sizes.Select(kv => $"{kv.Key}={kv.Value}"))})";
}

/// <summary>Mixed tolerance |actual - expected| &lt;= Atol + Rtol |expected|.</summary>
public readonly record struct Tolerance(double Rtol, double Atol)
{
    public override string ToString() => $"rtol {Rtol}, atol {Atol}";
}
