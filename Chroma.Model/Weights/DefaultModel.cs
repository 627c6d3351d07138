namespace Chroma.Model;

/// <summary>
/// The shipped default model (models/chroma-default.safetensors, described in docs/MODEL_CARD.md),
/// built into Chroma.Model.dll as an embedded resource, so an app or a tool needs no file beside it.
/// <see cref="Colorizer.LoadDefault()"/> loads it; <see cref="Open"/> gives its bytes (to copy it out,
/// read its metadata, or load it with <see cref="ModelFile.Load(Stream, string, Device)"/>).
/// </summary>
public static class DefaultModel
{
    /// <summary>The manifest resource name in Chroma.Model.dll.</summary>
    public const string ResourceName = "Chroma.Model.chroma-default.safetensors";

    /// <summary>The model's file name; also the name used in messages about it.</summary>
    public const string FileName = "chroma-default.safetensors";

    /// <summary>
    /// A new read-only, seekable stream over the model's safetensors bytes, positioned at 0; the
    /// caller disposes it.
    /// </summary>
    public static Stream Open() =>
        typeof(DefaultModel).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"{typeof(DefaultModel).Assembly.GetName().Name} was built without its default model (resource '{ResourceName}').");
}
