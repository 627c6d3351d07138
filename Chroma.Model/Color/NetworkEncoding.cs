using System.Numerics.Tensors;

namespace Chroma.Model;

/// <summary>
/// How colour enters and leaves the network, in one place for inference (<see cref="Colorizer"/>),
/// training targets and metrics:
/// <list type="bullet">
/// <item>input: L* / 100, in [0, 1];</item>
/// <item>output: a sigmoid s in [0, 1] per chroma channel, decoded as a*, b* = 100 (2s - 1), so the
/// representable range is [-100, 100] (sRGB's a*b* lie within about [-86, 98] x [-108, 94]);</item>
/// <item>training target: s = a*b* / 200 + 0.5, clamped to [0, 1] (the inverse of the decoding).</item>
/// </list>
/// </summary>
public static class NetworkEncoding
{
    /// <summary>L* (0..100) to the network's input scale.</summary>
    public static float EncodeLightness(float l) => l * 0.01f;

    /// <summary>L* planes to the network's input scale (<paramref name="destination"/> may be <paramref name="lightness"/>).</summary>
    public static void EncodeLightness(ReadOnlySpan<float> lightness, Span<float> destination) =>
        TensorPrimitives.Multiply(lightness, 0.01f, destination);

    /// <summary>The network's input scale back to L*.</summary>
    public static float DecodeLightness(float input) => input * 100f;

    /// <summary>A network output s to a* or b*.</summary>
    public static float DecodeAb(float s) => 100f * (2f * s - 1f);

    /// <summary>Network outputs to a*b* in place, times a chroma <paramref name="gain"/> (1: the network's own).</summary>
    public static void DecodeAb(Span<float> values, float gain = 1f)
    {
        for (int i = 0; i < values.Length; i++) values[i] = gain * DecodeAb(values[i]);
    }

    /// <summary>An a* or b* value to the network's training target, clamped to the sigmoid's range.</summary>
    public static float EncodeAbTarget(float ab) => Math.Clamp(ab / 200f + 0.5f, 0f, 1f);
}
