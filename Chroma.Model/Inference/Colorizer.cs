using Chroma.Kernels;
using SkiaSharp;

namespace Chroma.Model;

/// <summary>How 8-bit pixels are stored in memory: rows top to bottom, no padding between rows.</summary>
public enum PixelLayout
{
    /// <summary>One byte per pixel: gray (an input only; a colorized image has colour).</summary>
    Gray8 = 1,

    /// <summary>Three bytes per pixel: R, G, B (sRGB).</summary>
    Rgb24 = 3,

    /// <summary>Four bytes per pixel: R, G, B (sRGB), A (not premultiplied).</summary>
    Rgba32 = 4,
}

/// <summary>A colorized image: planar sRGB [3,H,W] in [0,1] and the input's alpha, if it had any.</summary>
public sealed record ColorizedImage(int Width, int Height, float[] Rgb, float[]? Alpha)
{
    /// <summary>Writes the image (format by extension; atomically; refuses to replace a file unless <paramref name="overwrite"/>).</summary>
    public void Save(string path, bool overwrite = false) => ImageFile.Save(path, Rgb, Width, Height, Alpha, overwrite);

    public SKBitmap ToBitmap() => ImageFile.ToBitmap(Rgb, Width, Height, Alpha);

    /// <summary>
    /// The image as interleaved 8-bit pixels in <paramref name="layout"/> (<see cref="PixelLayout.Rgb24"/>
    /// or <see cref="PixelLayout.Rgba32"/>; alpha 255 where the input had none), rounded as image files are.
    /// </summary>
    public byte[] ToPixels(PixelLayout layout)
    {
        var pixels = new byte[checked(Width * Height * BytesPerPixel(layout))];
        CopyPixelsTo(pixels, layout);
        return pixels;
    }

    /// <summary>As <see cref="ToPixels"/>, into <paramref name="destination"/> (at least Width x Height x bytes per pixel long).</summary>
    public void CopyPixelsTo(Span<byte> destination, PixelLayout layout)
    {
        int channels = BytesPerPixel(layout);
        int plane = Width * Height;
        if (destination.Length < (long)plane * channels)
            throw new ArgumentException($"ColorizedImage.CopyPixelsTo: {Width}x{Height} {layout} needs {(long)plane * channels} bytes, the destination has {destination.Length}.", nameof(destination));
        ReadOnlySpan<float> r = Rgb.AsSpan(0, plane), g = Rgb.AsSpan(plane, plane), b = Rgb.AsSpan(2 * plane, plane);
        ReadOnlySpan<float> a = Alpha;
        for (int i = 0, o = 0; i < plane; i++, o += channels)
        {
            destination[o] = ImageFile.ToByte(r[i]);
            destination[o + 1] = ImageFile.ToByte(g[i]);
            destination[o + 2] = ImageFile.ToByte(b[i]);
            if (channels == 4) destination[o + 3] = a.IsEmpty ? (byte)255 : ImageFile.ToByte(a[i]);
        }
    }

    static int BytesPerPixel(PixelLayout layout) => layout switch
    {
        PixelLayout.Rgb24 => 3,
        PixelLayout.Rgba32 => 4,
        PixelLayout.Gray8 => throw new ArgumentException("A colorized image has colour: ask for Rgb24 or Rgba32, not Gray8.", nameof(layout)),
        _ => throw new ArgumentOutOfRangeException(nameof(layout), layout, "unknown pixel layout"),
    };
}

/// <summary>
/// The app-facing API: load a model once, colorize many images.
/// <code>
/// using var colorizer = Colorizer.Load("model.safetensors");          // device: auto
/// colorizer.Colorize(ImageFile.Load("photo.jpg")).Save("photo-color.png");
/// </code>
/// <see cref="LoadDefault()"/> loads the shipped default model, built into this assembly; a model can
/// also come from a <see cref="Stream"/>, and images from 8-bit pixels in memory
/// (<see cref="Colorize(ReadOnlySpan{byte}, int, int, PixelLayout)"/>).
/// Pipeline: the image's L* (colour inputs are reduced to luminance) goes through the local path at
/// a working size (H, W multiples of 8, at most <see cref="MaxWorkingPixels"/>, photos whose shorter
/// side is below <see cref="MinWorkingSide"/> enlarged to it) and
/// through the global path at 224 x 224 (averaging resize); the predicted half-resolution a*b* is
/// resized bilinearly to the full size, multiplied by <see cref="Saturation"/>, and joined with the
/// original full-resolution L*.
/// </summary>
/// <remarks>
/// Thread safety: all public methods may be called from several threads; calls run one at a time
/// on the model (the network keeps per-call buffers). For parallel throughput, load one Colorizer
/// per thread.
/// </remarks>
public sealed class Colorizer : IDisposable
{
    readonly object _gate = new();
    readonly bool _ownsDevice;

    public Colorizer(ColorizationNetwork network, bool ownsDevice = false)
    {
        Network = network;
        _ownsDevice = ownsDevice;
    }

    /// <summary>
    /// Loads a model file onto <paramref name="device"/> (default: <see cref="Device.Open"/> with auto
    /// selection, owned by the colorizer); <see cref="Saturation"/> is the file's own (metadata
    /// <c>saturation</c>, else 1).
    /// </summary>
    public static Colorizer Load(string modelPath, Device? device = null) =>
        device is null ? Load(modelPath, Device.Open(), ownsDevice: true) : Load(modelPath, device, ownsDevice: false);

    /// <summary>
    /// Loads a model file onto <paramref name="device"/>, which the colorizer disposes when it is
    /// disposed (or when loading fails) if <paramref name="ownsDevice"/> and it is not the CPU device.
    /// <paramref name="saturation"/> replaces the file's own.
    /// </summary>
    public static Colorizer Load(string modelPath, Device device, bool ownsDevice, float? saturation = null, int maxWorkingPixels = DefaultMaxWorkingPixels) =>
        Create(modelPath, (d, out m) => ModelFile.Load(modelPath, d, out m), device, ownsDevice, saturation, maxWorkingPixels);

    /// <summary>
    /// As <see cref="Load(string, Device?)"/>, reading the model file's bytes from <paramref name="stream"/>
    /// (from its current position to its end; the stream is not disposed): <paramref name="device"/>
    /// null opens one with auto selection, owned by the colorizer; a given one stays the caller's.
    /// <paramref name="saturation"/> replaces the file's own.
    /// </summary>
    public static Colorizer Load(Stream stream, Device? device = null, float? saturation = null, int maxWorkingPixels = DefaultMaxWorkingPixels)
    {
        ArgumentNullException.ThrowIfNull(stream);
        string name = stream is FileStream file ? file.Name : "model stream";
        return device is null ? Load(stream, name, Device.Open(), ownsDevice: true, saturation, maxWorkingPixels)
            : Load(stream, name, device, ownsDevice: false, saturation, maxWorkingPixels);
    }

    /// <summary>
    /// As <see cref="Load(string, Device, bool, float?, int)"/>, reading the model file's bytes from
    /// <paramref name="stream"/>; <paramref name="name"/> names it in errors and in <see cref="ModelFileException"/>.
    /// </summary>
    public static Colorizer Load(Stream stream, string name, Device device, bool ownsDevice, float? saturation = null, int maxWorkingPixels = DefaultMaxWorkingPixels)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(name);
        return Create(name, (d, out m) => ModelFile.Load(stream, name, d, out m), device, ownsDevice, saturation, maxWorkingPixels);
    }

    /// <summary>
    /// The shipped default model (<see cref="DefaultModel"/>, built into Chroma.Model.dll) on a device
    /// opened with auto selection (<see cref="Device.Open"/>), owned by the colorizer; its saturation
    /// is the model's own.
    /// <code>
    /// using var colorizer = Colorizer.LoadDefault();
    /// colorizer.Colorize(ImageFile.Load("photo.jpg")).Save("photo-color.png");
    /// </code>
    /// </summary>
    public static Colorizer LoadDefault() => LoadDefault(Device.Open(), ownsDevice: true);

    /// <summary>The shipped default model on <paramref name="device"/>, which stays the caller's; <paramref name="saturation"/> replaces the model's own.</summary>
    public static Colorizer LoadDefault(Device device, float? saturation = null, int maxWorkingPixels = DefaultMaxWorkingPixels) =>
        LoadDefault(device, ownsDevice: false, saturation, maxWorkingPixels);

    /// <summary>
    /// The shipped default model on <paramref name="device"/>, which the colorizer disposes when it is
    /// disposed (or when loading fails) if <paramref name="ownsDevice"/> and it is not the CPU device
    /// (as <see cref="Load(string, Device, bool, float?, int)"/>).
    /// </summary>
    public static Colorizer LoadDefault(Device device, bool ownsDevice, float? saturation = null, int maxWorkingPixels = DefaultMaxWorkingPixels) =>
        Create(DefaultModel.FileName, (d, out m) =>
        {
            using var stream = DefaultModel.Open();
            return ModelFile.Load(stream, DefaultModel.FileName, d, out m);
        }, device, ownsDevice, saturation, maxWorkingPixels);

    delegate ColorizationNetwork NetworkLoader(Device device, out IReadOnlyDictionary<string, string> metadata);

    /// <summary>The one load path: the network and its metadata from <paramref name="load"/>, the colorizer's settings from the metadata.</summary>
    static Colorizer Create(string name, NetworkLoader load, Device device, bool ownsDevice, float? saturation, int maxWorkingPixels)
    {
        ArgumentNullException.ThrowIfNull(device);
        ownsDevice &= device is not CpuDevice;
        ColorizationNetwork? network = null;
        try
        {
            network = load(device, out var metadata);
            return new Colorizer(network, ownsDevice)
            {
                Metadata = metadata,
                Saturation = saturation ?? ModelFile.SaturationFromMetadata(metadata, name),
                MaxWorkingPixels = maxWorkingPixels,
                MinWorkingSide = ModelFile.MinWorkingSideFromMetadata(metadata, name),
                AverageMirrored = ModelFile.AverageMirroredFromMetadata(metadata, name),
            };
        }
        catch
        {
            network?.Dispose();
            if (ownsDevice) device.Dispose();
            throw;
        }
    }

    /// <summary>The model file's metadata (class names, training facts); empty for a network made in code.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Default of <see cref="MaxWorkingPixels"/>.</summary>
    public const int DefaultMaxWorkingPixels = 1_500_000;

    public ColorizationNetwork Network { get; }

    /// <summary>
    /// Upper bound on the local path's working size in pixels. Larger photos run the local path on
    /// a downscaled copy (chrominance is smooth, and the full-resolution L* is kept), which bounds
    /// memory: `chroma colorize` on a 6000x4000 photo peaked at 3.4 GB resident at width 1.0 and
    /// 2.0 GB at width 0.25 (CPU path, default 1.5 megapixels).
    /// </summary>
    public int MaxWorkingPixels { get; init; } = DefaultMaxWorkingPixels;

    /// <summary>
    /// Photos whose shorter side is below this many pixels run the local path enlarged to it (aspect
    /// kept, still within <see cref="MaxWorkingPixels"/>); 0 never enlarges. A network sees objects at
    /// the scale it was trained at: `chroma train` resizes every photo to 256 x 256 before its crops, so
    /// a 128 x 128 photo at its own size shows every flower at half the trained scale. On 300
    /// validation photos (seed 1; 140 of them 128 x 128) the 2026-12-06 default model's a*b* RMSE went
    /// from 15.37 to 15.14 with 256 (224: 15.17, 320: 15.13; a 256 x 256 square for every photo,
    /// as in training: 15.14), PSNR unchanged. Model files carry it as
    /// <see cref="ModelFile.MinWorkingSideKey"/>.
    /// </summary>
    public int MinWorkingSide
    {
        get;
        init => field = value >= 0 && value <= ModelFile.MaxMinWorkingSide ? value
            : throw new ArgumentOutOfRangeException(nameof(MinWorkingSide), value, $"minimum working side must be between 0 and {ModelFile.MaxMinWorkingSide}");
    }

    /// <summary>
    /// Average the prediction with that of the photo mirrored left-right (mirrored back): two network
    /// passes, so inference takes about twice as long. A mirrored photo is as plausible as the
    /// original, so the two predictions err differently and their mean is more accurate. On all 892
    /// validation photos (2026-12-06, a checkpoint of the default model's run at step 14,000,
    /// saturation 1) PSNR went from 22.15 to 22.23 dB and a*b* RMSE from 15.04 to 14.89, colourfulness
    /// from 22.9 to 22.2. Model files carry it as <see cref="ModelFile.AverageMirroredKey"/>.
    /// </summary>
    public bool AverageMirrored { get; set; }

    /// <summary>
    /// Gain on the predicted a*b* (chroma scaled, hue kept); 1 is the network's own output, as in the
    /// paper. A network trained with the paper's MSE loss predicts the mean of the plausible colours,
    /// which is muted wherever the colour is uncertain (a red or a blue car averages to gray); a gain
    /// above 1 trades some a*b* accuracy for vividness. Shipped models carry their default in the
    /// metadata (<see cref="ModelFile.SaturationKey"/>); docs/MODEL_CARD.md gives the figures.
    /// </summary>
    public float Saturation
    {
        get;
        init => field = ModelFile.IsValidSaturation(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(Saturation), value, $"saturation must be between 0 and {ModelFile.MaxSaturation}");
    } = 1f;

    /// <summary>Colorizes <paramref name="image"/>; <paramref name="globalFrom"/> supplies the global features instead (the paper's global-prior transfer).</summary>
    public ColorizedImage Colorize(LoadedImage image, LoadedImage? globalFrom = null)
    {
        int h = image.Height, w = image.Width;
        // Only the luminance is used: a colour input's own a*b* never reaches the network.
        var l = new float[h * w];
        LabColor.RgbToLightness(image.Rgb, h, w, l);
        float[] globalL = l; int gh = h, gw = w;
        if (globalFrom is not null)
        {
            gh = globalFrom.Height; gw = globalFrom.Width;
            globalL = new float[gh * gw];
            LabColor.RgbToLightness(globalFrom.Rgb, gh, gw, globalL);
        }
        var predicted = PredictAb(l, h, w, globalL, gh, gw);
        var rgb = new float[3 * h * w];
        LabColor.LabToRgb(l, predicted, h, w, rgb);
        return new ColorizedImage(w, h, rgb, image.Alpha);
    }

    /// <summary>
    /// Colorizes 8-bit pixels held in memory, for apps that have their own image decoding (no SkiaSharp
    /// type involved): <paramref name="pixels"/> holds <paramref name="height"/> rows of
    /// <paramref name="width"/> pixels in <paramref name="layout"/>, top to bottom, without padding
    /// (exactly width x height x bytes per pixel). Each byte v is read as v / 255, as image files are,
    /// and the image then goes through <see cref="Colorize(LoadedImage, LoadedImage?)"/>, so the result
    /// is the one an image file with these pixels gets; an <see cref="PixelLayout.Rgba32"/> input keeps
    /// its alpha (dropped when every pixel is opaque). Get bytes back with
    /// <see cref="ColorizedImage.ToPixels"/>:
    /// <code>
    /// byte[] rgb = colorizer.Colorize(gray, width, height, PixelLayout.Gray8).ToPixels(PixelLayout.Rgb24);
    /// </code>
    /// </summary>
    public ColorizedImage Colorize(ReadOnlySpan<byte> pixels, int width, int height, PixelLayout layout) =>
        Colorize(FromPixels(pixels, width, height, layout));

    /// <summary>Interleaved 8-bit pixels as a planar <see cref="LoadedImage"/> (alpha kept only where some pixel is not opaque).</summary>
    static LoadedImage FromPixels(ReadOnlySpan<byte> pixels, int width, int height, PixelLayout layout)
    {
        int channels = layout switch
        {
            PixelLayout.Gray8 => 1,
            PixelLayout.Rgb24 => 3,
            PixelLayout.Rgba32 => 4,
            _ => throw new ArgumentOutOfRangeException(nameof(layout), layout, "unknown pixel layout"),
        };
        if (width <= 0 || height <= 0 || (long)width * height > ImageFile.MaxMegapixels * 1_000_000L)
            throw new ArgumentException($"Colorizer.Colorize: invalid image size {width}x{height} (at most {ImageFile.MaxMegapixels} megapixels).");
        int plane = width * height;
        if (pixels.Length != (long)plane * channels)
            throw new ArgumentException($"Colorizer.Colorize: {width}x{height} {layout} pixels take {(long)plane * channels} bytes, got {pixels.Length}.", nameof(pixels));

        var unit = ImageFile.ByteToUnit;
        var rgb = new float[3 * plane];
        float[]? alpha = channels == 4 ? new float[plane] : null;
        bool translucent = false;
        Span<float> r = rgb.AsSpan(0, plane), g = rgb.AsSpan(plane, plane), b = rgb.AsSpan(2 * plane, plane);
        for (int i = 0, p = 0; i < plane; i++, p += channels)
        {
            if (channels == 1)
            {
                r[i] = g[i] = b[i] = unit[pixels[p]];
                continue;
            }
            r[i] = unit[pixels[p]];
            g[i] = unit[pixels[p + 1]];
            b[i] = unit[pixels[p + 2]];
            if (alpha is not null)
            {
                alpha[i] = unit[pixels[p + 3]];
                translucent |= pixels[p + 3] != 255;
            }
        }
        return new LoadedImage { Width = width, Height = height, Rgb = rgb, Alpha = translucent ? alpha : null };
    }

    /// <summary>
    /// a*b* [2,H,W] for a lightness plane L* [H,W] (0..100), with the global features taken from
    /// <paramref name="globalL"/> [gh,gw].
    /// </summary>
    public float[] PredictAb(float[] l, int h, int w, float[] globalL, int gh, int gw) => Predict(l, h, w, globalL, gh, gw).Ab;

    /// <summary>As <see cref="PredictAb"/>, also returning the scene-class logits of the global path.</summary>
    public (float[] Ab, float[] Logits) Predict(float[] l, int h, int w, float[] globalL, int gh, int gw)
    {
        lock (_gate)
        {
            var (result, logits) = PredictOnce(l, h, w, ReferenceEquals(globalL, l) ? null : globalL, gh, gw);
            if (AverageMirrored)
            {
                // The same photo mirrored left-right (both paths), its prediction mirrored back, and the two averaged.
                var mirrored = Mirror(l, 1, h, w);
                var (other, _) = PredictOnce(mirrored, h, w, ReferenceEquals(globalL, l) ? null : Mirror(globalL, 1, gh, gw), gh, gw);
                other = Mirror(other, 2, h, w);
                for (int i = 0; i < result.Length; i++) result[i] = 0.5f * (result[i] + other[i]);
            }
            NetworkEncoding.DecodeAb(result, Saturation);
            return (result, logits);
        }
    }

    /// <summary>One network pass: the sigmoid outputs [2,H,W] resized to the full image, and the logits.</summary>
    (float[] AbNormalized, float[] Logits) PredictOnce(float[] l, int h, int w, float[]? globalL, int gh, int gw)
    {
        (int wh, int ww) = WorkingSize(h, w, MaxWorkingPixels, MinWorkingSide);
        int s = Network.Config.InputSize;
        var device = Network.Device;
        using var full = device.FromArray(Encode(l), 1, 1, h, w);
        using var local = device.Zeros(1, 1, wh, ww);
        BilinearResize.Forward(full, local);
        using var globalFull = globalL is null ? null : device.FromArray(Encode(globalL), 1, 1, gh, gw);
        using var global = device.Zeros(1, 1, s, s);
        BilinearResize.Forward(globalFull ?? full, global);

        var (abNorm, logits) = Network.Forward(local, global, training: false);
        using var abFull = device.Zeros(1, 2, h, w);
        BilinearResize.Forward(abNorm, abFull);
        return (abFull.ToArray(), logits.ToArray());
    }

    /// <summary>Planes [C,H,W] mirrored left-right.</summary>
    static float[] Mirror(float[] planes, int channels, int h, int w)
    {
        var r = new float[planes.Length];
        for (int row = 0; row < channels * h; row++)
        {
            planes.AsSpan(row * w, w).CopyTo(r.AsSpan(row * w, w));
            r.AsSpan(row * w, w).Reverse();
        }
        return r;
    }

    /// <summary>
    /// The local path's input size for an h x w image: multiples of 8, at most <paramref name="maxPixels"/>
    /// pixels (but never below 8 x 8), aspect kept as closely as the multiples of 8 allow; a photo whose
    /// shorter side is below <paramref name="minSide"/> is enlarged to it first.
    /// </summary>
    public static (int Height, int Width) WorkingSize(int h, int w, int maxPixels, int minSide = 0)
    {
        double enlarge = Math.Max(1.0, (double)minSide / Math.Min(h, w));
        double scale = Math.Min(enlarge, Math.Sqrt((double)maxPixels / ((double)h * w)));
        int wh = Math.Max(8, (int)Math.Round(h * scale / 8.0) * 8);
        int ww = Math.Max(8, (int)Math.Round(w * scale / 8.0) * 8);
        // Rounding both sides up can overshoot the budget (1920 x 1080 at 1.5 MP rounds to 1632 x 920):
        // take 8 off the side that is the larger relative to the image until it fits.
        while ((long)wh * ww > maxPixels && (wh > 8 || ww > 8))
        {
            if (wh > 8 && (ww == 8 || (double)wh / h >= (double)ww / w)) wh -= 8;
            else ww -= 8;
        }
        return (wh, ww);
    }

    static float[] Encode(float[] lightness)
    {
        var r = new float[lightness.Length];
        NetworkEncoding.EncodeLightness(lightness, r);
        return r;
    }

    public void Dispose()
    {
        var device = Network.Device;
        Network.Dispose();
        if (_ownsDevice) device.Dispose();
    }
}
