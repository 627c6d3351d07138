using Chroma.Model;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>The network's colour encoding (NetworkEncoding) against the formulas written out in float64.</summary>
public sealed class NetworkEncodingTests
{
    [Fact]
    public void Decoding_inverts_the_training_target_and_matches_the_formulas()
    {
        var rng = new Random(3);
        for (int i = 0; i < 1000; i++)
        {
            double ab = rng.NextDouble() * 200 - 100;           // the representable range
            double s = ab / 200 + 0.5;                           // target, float64
            Assert.Equal(s, NetworkEncoding.EncodeAbTarget((float)ab), 1e-6);
            Assert.Equal(ab, NetworkEncoding.DecodeAb(NetworkEncoding.EncodeAbTarget((float)ab)), 1e-4);
            double l = rng.NextDouble() * 100;
            Assert.Equal(l / 100, NetworkEncoding.EncodeLightness((float)l), 1e-6);
            Assert.Equal(l, NetworkEncoding.DecodeLightness(NetworkEncoding.EncodeLightness((float)l)), 1e-4);
        }
        // Out of range chroma is clamped to the sigmoid's range.
        Assert.Equal(1f, NetworkEncoding.EncodeAbTarget(130f));
        Assert.Equal(0f, NetworkEncoding.EncodeAbTarget(-120f));
        // In place with a gain: gain * 100 (2s - 1).
        float[] values = [0f, 0.25f, 0.5f, 1f];
        NetworkEncoding.DecodeAb(values, 1.5f);
        Assert.Equal([-150f, -75f, 0f, 150f], values);
        var lightness = new float[] { 0f, 50f, 100f };
        NetworkEncoding.EncodeLightness(lightness, lightness);
        Assert.Equal([0f, 0.5f, 1f], lightness);
    }
}
