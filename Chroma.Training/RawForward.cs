using Chroma.Model;

namespace Chroma.Training;

/// <summary>
/// The network on raw tensors read from safetensors, for parity checks against other
/// implementations (what `chroma forward` runs).
/// </summary>
public static class RawForward
{
    /// <summary>
    /// Inputs: <c>local</c> [N,1,H,W], optional <c>global</c> [N,1,S,S]; with <paramref name="train"/>
    /// also <c>target_ab</c> [N,2,H/2,W/2] and optional <c>label</c> [N] (int64).
    /// Outputs: <c>ab</c>, <c>logits</c>; with <paramref name="train"/> also <c>loss</c> [1],
    /// <c>loss_color</c>, <c>loss_class</c> and <c>grad.NAME</c> for every trained tensor.
    /// </summary>
    public static List<SafeTensor> Run(ColorizationNetwork network, SafeTensorsFile input, string inputName, bool train, float alpha)
    {
        var device = network.Device;
        SafeTensor Need(string name) => input.TryGet(name, out var t) ? t
            : throw new ArgumentException($"{inputName}: no tensor '{name}'.");
        var localT = Need("local");
        if (localT.Shape.Length != 4) throw new ArgumentException($"{inputName}: 'local' must be [N,1,H,W], got [{string.Join(", ", localT.Shape)}].");
        using var local = device.FromArray(localT.Data, localT.Shape);
        using var global = input.TryGet("global", out var g) ? device.FromArray(g.Data, g.Shape) : null;
        if (train && global is not null)
            throw new ArgumentException($"{inputName}: --train runs one low-level pass on a {network.Config.InputSize}x{network.Config.InputSize} 'local'; remove 'global'.");

        var (ab, logits) = network.Forward(local, global, train);
        var outputs = new List<SafeTensor>
        {
            new("ab", ab.Shape.ToArray(), ab.ToArray()),
            new("logits", logits.Shape.ToArray(), logits.ToArray()),
        };
        if (!train) return outputs;

        var targetT = Need("target_ab");
        if (!targetT.Shape.SequenceEqual(ab.Shape.ToArray()))
            throw new ArgumentException($"{inputName}: 'target_ab' must be [{string.Join(", ", ab.Shape.ToArray())}], got [{string.Join(", ", targetT.Shape)}].");
        int[]? labels = null;
        var labelT = input.IntTensors.FirstOrDefault(t => t.Name == "label");
        if (labelT is not null)
        {
            if (labelT.Data.Length != ab.Dim(0)) throw new ArgumentException($"{inputName}: 'label' must have {ab.Dim(0)} values, got {labelT.Data.Length}.");
            labels = labelT.Data.Select(v => v < 0 || v >= network.Config.Classes
                ? throw new ArgumentException($"{inputName}: label {v} is outside [0, {network.Config.Classes}).") : (int)v).ToArray();
        }
        using var target = device.FromArray(targetT.Data, targetT.Shape);
        using var loss = new JointLoss(alpha);
        network.Parameters.ZeroGradients();
        var terms = loss.Backward(network, ab, logits, target, labels);
        outputs.Add(new SafeTensor("loss", [1], [terms.Total]));
        outputs.Add(new SafeTensor("loss_color", [1], [terms.Color]));
        outputs.Add(new SafeTensor("loss_class", [1], [terms.Class]));
        var grads = network.Parameters.Gradients.ToArray();
        int baseOffset = network.Parameters.Gradients.Offset;
        foreach (var e in network.Parameters.Entries.Where(e => e.Trained))
            outputs.Add(new SafeTensor("grad." + e.Name, e.Shape, grads.AsSpan(e.Grad!.Offset - baseOffset, e.Length).ToArray()));
        return outputs;
    }
}
