using System.Text.Json;

namespace Chroma.Kernels.Harness;

/// <summary>
/// The benchmark shapes per op, one file for both sides: <c>Chroma.Benchmarks/peer/op_shapes.json</c>,
/// embedded in this assembly (so the built `chroma` tool has it) and read by the PyTorch peer
/// <c>ops_torch.py</c>. Layout: <c>{"comment": "...", "conv2d": [{"name": "w0.25.low1", "N": 4, ...}, ...], ...}</c>;
/// every value of a case other than "name" is a whole number.
/// </summary>
public sealed class OpShapeList
{
    /// <summary>The resource's name in Chroma.Kernels.dll.</summary>
    public const string ResourceName = "Chroma.Kernels.op_shapes.json";

    static readonly Lazy<OpShapeList> s_default = new(() =>
    {
        using var stream = typeof(OpShapeList).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"{ResourceName} is not embedded in Chroma.Kernels.");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd());
    });

    readonly Dictionary<string, IReadOnlyList<OpCase>> _ops;

    OpShapeList(string text, Dictionary<string, IReadOnlyList<OpCase>> ops) { Text = text; _ops = ops; }

    /// <summary>The embedded list.</summary>
    public static OpShapeList Default => s_default.Value;

    /// <summary>The file's text as embedded (handed to the PyTorch peer, so both sides time the same list).</summary>
    public string Text { get; }

    public IReadOnlyCollection<string> OpNames => _ops.Keys;

    /// <summary>The cases of <paramref name="op"/>; none when the file does not list it.</summary>
    public IReadOnlyList<OpCase> For(string op) => _ops.TryGetValue(op, out var cases) ? cases : [];

    /// <summary>Reads the list; a malformed case names the op, the case and the key.</summary>
    public static OpShapeList Parse(string json)
    {
        using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        var ops = new Dictionary<string, IReadOnlyList<OpCase>>(StringComparer.Ordinal);
        foreach (var op in doc.RootElement.EnumerateObject())
        {
            if (op.Value.ValueKind != JsonValueKind.Array) continue; // "comment"
            var cases = new List<OpCase>();
            foreach (var (item, index) in op.Value.EnumerateArray().Select((e, i) => (e, i)))
            {
                string name = item.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()!
                    : throw new InvalidDataException($"op_shapes.json: {op.Name} case {index} has no \"name\".");
                var sizes = new List<(string, int)>();
                foreach (var p in item.EnumerateObject())
                {
                    if (p.Name == "name") continue;
                    if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int v))
                        throw new InvalidDataException($"op_shapes.json: {op.Name} case '{name}': \"{p.Name}\" must be a whole number, got {p.Value}.");
                    sizes.Add((p.Name, v));
                }
                if (cases.Any(c => c.Name == name)) throw new InvalidDataException($"op_shapes.json: {op.Name} lists '{name}' twice.");
                cases.Add(OpCase.Of(name, sizes.ToArray()));
            }
            ops[op.Name] = cases;
        }
        return new OpShapeList(json, ops);
    }
}
