namespace Chroma.Model;

/// <summary>
/// Shape of a colorization network. Width 1.0, 205 classes, 1x1 fusion is the paper's model
/// (about 42.4 M parameters); smaller widths scale every hidden layer's channels by round(c * w).
/// </summary>
/// <param name="Width">Channel multiplier of every hidden layer (the 2 output channels and the class count do not scale).</param>
/// <param name="Classes">Number of scene classes of the classification head.</param>
/// <param name="FusionKernel">Kernel size of the fusion convolution: 1 (the paper) or 3 (the authors' released graph).</param>
/// <param name="InputSize">Side of the global path's square input (224 in the paper).</param>
public sealed record ColorizerConfig(double Width = 1.0, int Classes = 205, int FusionKernel = 1, int InputSize = 224)
{
    /// <summary>Version of the weight-file layout written in the metadata.</summary>
    public const int FormatVersion = 1;

    /// <summary>Hidden channel count for the paper's <paramref name="channels"/> at this width (at least 1).</summary>
    public int Scaled(int channels) => Math.Max(1, (int)Math.Round(channels * Width, MidpointRounding.AwayFromZero));

    /// <summary>Throws ArgumentException naming the first invalid field.</summary>
    public void Validate()
    {
        if (!(Width > 0 && Width <= 8) || double.IsNaN(Width)) throw new ArgumentException($"width must be in (0, 8], got {Width}.");
        if (Classes < 1 || Classes > 100_000) throw new ArgumentException($"classes must be in [1, 100000], got {Classes}.");
        if (FusionKernel is not (1 or 3)) throw new ArgumentException($"fusion kernel must be 1 or 3, got {FusionKernel}.");
        if (InputSize < 64 || InputSize % 32 != 0 || InputSize > 1024)
            throw new ArgumentException($"input size must be a multiple of 32 in [64, 1024] (the global path halves it 5 times), got {InputSize}.");
    }

    /// <summary>Side of the global features' last feature map (7 for 224 input).</summary>
    public int GlobalMapSize => InputSize / 32;
}
