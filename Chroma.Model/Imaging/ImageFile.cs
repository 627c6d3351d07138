using Chroma.Kernels;
using System.Runtime.InteropServices;
using SkiaSharp;

namespace Chroma.Model;

/// <summary>A decoded image as planar floats, already turned upright (EXIF orientation applied).</summary>
public sealed class LoadedImage
{
    public int Width { get; init; }
    public int Height { get; init; }

    /// <summary>[3, H, W]: gamma-encoded sRGB in [0, 1], not premultiplied by alpha.</summary>
    public required float[] Rgb { get; init; }

    /// <summary>[H, W] in [0, 1], or null when every pixel is opaque.</summary>
    public float[]? Alpha { get; init; }

    /// <summary>
    /// How many pages (images) the file holds; only the first is decoded. Above 1 only for
    /// multi-page TIFFs, so a caller can say that the other pages were left out. Animated GIF and
    /// WebP files report 1 (their first frame is the image).
    /// </summary>
    public int Pages { get; init; } = 1;
}

/// <summary>The formats <see cref="ImageFile"/> writes; <see cref="ImageFile.TryGetEncoding"/> maps a file extension to one.</summary>
public enum ImageEncoding
{
    /// <summary>Lossless, keeps alpha.</summary>
    Png,
    /// <summary>Quality 95, alpha dropped.</summary>
    Jpeg,
    /// <summary>Lossy at quality 95, keeps alpha.</summary>
    Webp,
    /// <summary>Uncompressed 24-bit, alpha dropped.</summary>
    Bmp,
    /// <summary>8-bit RGB or RGBA (unassociated alpha), Deflate-compressed, lossless.</summary>
    Tiff,
}

/// <summary>An image file that cannot be decoded; the message names the file and the problem.</summary>
public sealed class ImageFormatException : Exception
{
    public ImageFormatException(string fileName, string problem, Exception? inner = null)
        : base($"{fileName}: {problem}", inner)
    {
        FileName = fileName;
        Problem = problem;
    }

    public string FileName { get; }
    public string Problem { get; }
}

/// <summary>
/// Reading and writing images through SkiaSharp (TIFF through LibTiff.Net), as planar float buffers ([3, H, W] sRGB in [0, 1]
/// plus an optional [H, W] alpha plane).
/// <para>
/// Decoding: JPEG, PNG, WebP, BMP, GIF (first frame), and whatever else Skia recognises; TIFF
/// (recognised by its first bytes, whatever the extension) through LibTiff.Net, see
/// <see cref="TiffImage"/>: first page only, <see cref="LoadedImage.Pages"/> says how many there are. The
/// EXIF (or TIFF) orientation is applied, so Width and Height are those of the upright image. 16-bit PNGs
/// are decoded through half floats (about 11 significant bits), 16-bit TIFFs exactly (value / 65535),
/// everything else through 8-bit RGBA.
/// Images with an embedded colour profile are converted to sRGB (TIFF profiles are ignored). A file that is not an image, is
/// empty, truncated or corrupt, or larger than <see cref="MaxMegapixels"/> (checked from the
/// header, before any pixel memory is allocated) raises <see cref="ImageFormatException"/>.
/// A truncated file is always an error, even where the decoder could return the rows before the
/// cut: half an image must not pass silently into training data or a colorization. A missing or
/// unreadable file is the usual <see cref="IOException"/> (FileNotFoundException, ...).
/// </para>
/// <para>
/// Encoding (<see cref="ImageEncoding"/>) is chosen by extension when saving to a path: .png
/// (lossless, keeps alpha), .jpg/.jpeg (quality 95, alpha dropped), .webp (quality 95, keeps alpha),
/// .bmp (24-bit, written here since Skia has no BMP encoder; alpha dropped), .tif/.tiff (8-bit RGB
/// or RGBA, Deflate, through LibTiff.Net). Values are clamped to [0, 1] and rounded to 8 bits.
/// <see cref="Save(Stream, ImageEncoding, float[], int, int, float[])"/> writes the same bytes to a stream.
/// </para>
/// </summary>
public static class ImageFile
{
    /// <summary>Largest image accepted, in millions of pixels (about 1 GB of decoded RGBA8).</summary>
    public const int MaxMegapixels = 250;
    internal const long MaxPixels = MaxMegapixels * 1_000_000L;

    const int JpegQuality = 95, WebpQuality = 95;

    // PNG: zlib level 3 with every row filter, not Skia's default level 6. Measured on the 2-core AMD
    // EPYC (Zen 4), colorized outputs, median of 3 (2026-12-07): two 1024-px photos of bw/ 157 -> 76 ms
    // and 180 -> 86 ms at the same size (1.06 -> 1.05 MB, 1.09 -> 1.09 MB); a 6000x4000 enlargement
    // (smooth, so it compresses well) 5.0 -> 2.2 s at 19% more bytes (10.9 -> 13.0 MB). Level 4 was
    // slower and larger than 3 on the photos (88-97 ms, 1.08-1.11 MB); level 1 larger (+5%).
    const int PngZLibLevel = 3;

    /// <summary>
    /// Pixels from which the per-row conversions of images and Lab planes (<see cref="ForRows"/>) go over all
    /// cores: 2^14 (a 128 x 128 image; chosen with the code, no measurement recorded).
    /// </summary>
    const int ParallelThreshold = 1 << 14;

    /// <summary>8-bit value v -> v / 255, as decoding does (shared with <see cref="Colorizer.Colorize(ReadOnlySpan{byte}, int, int, PixelLayout)"/>).</summary>
    internal static readonly float[] ByteToUnit = Enumerable.Range(0, 256).Select(i => i / 255f).ToArray();

    /// <summary>Decodes the image file at <paramref name="path"/>.</summary>
    public static LoadedImage Load(string path)
    {
        long length = new FileInfo(path).Length; // FileNotFoundException for a missing file
        if (length > Array.MaxLength)
            throw new ImageFormatException(path, $"file too large to decode ({length} bytes)");
        return Decode(File.ReadAllBytes(path), path);
    }

    /// <summary>Decodes the image in <paramref name="stream"/> (read to its end); <paramref name="nameForMessages"/> names it in errors.</summary>
    public static LoadedImage Load(Stream stream, string nameForMessages)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.CanSeek && stream.Length - stream.Position > Array.MaxLength)
            throw new ImageFormatException(nameForMessages, $"file too large to decode ({stream.Length - stream.Position} bytes)");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return Decode(buffer.ToArray(), nameForMessages);
    }

    /// <summary>Converts a bitmap of any colour type to planar floats (no orientation applied: a bitmap has none).</summary>
    public static unsafe LoadedImage FromBitmap(SKBitmap bitmap)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        var info = bitmap.Info;
        if (info.Width <= 0 || info.Height <= 0) throw new ArgumentException($"ImageFile.FromBitmap: the bitmap is empty ({info.Width}x{info.Height}).");
        bool highDepth = IsHighDepth(info.ColorType);
        bool hasAlpha = info.AlphaType != SKAlphaType.Opaque;
        var wanted = highDepth ? SKColorType.RgbaF16 : SKColorType.Rgba8888;

        if (info.ColorType == wanted && info.AlphaType != SKAlphaType.Premul && bitmap.GetPixels() != IntPtr.Zero)
            return FromPixels((byte*)bitmap.GetPixels(), bitmap.RowBytes, info.Width, info.Height, highDepth, hasAlpha, SKEncodedOrigin.TopLeft);

        var dstInfo = new SKImageInfo(info.Width, info.Height, wanted, SKAlphaType.Unpremul, SKColorSpace.CreateSrgb());
        using var pixmap = bitmap.PeekPixels()
            ?? throw new ArgumentException("ImageFile.FromBitmap: the bitmap has no pixels in memory.");
        byte* pixels = AllocPixels(dstInfo, "bitmap");
        try
        {
            if (!pixmap.ReadPixels(dstInfo, (IntPtr)pixels, dstInfo.RowBytes))
                throw new ArgumentException($"ImageFile.FromBitmap: cannot convert a {info.ColorType}/{info.AlphaType} bitmap to RGBA.");
            return FromPixels(pixels, dstInfo.RowBytes, info.Width, info.Height, highDepth, hasAlpha, SKEncodedOrigin.TopLeft);
        }
        finally
        {
            NativeMemory.Free(pixels);
        }
    }

    /// <summary>
    /// Encodes <paramref name="rgb"/> [3, H, W] (and <paramref name="alpha"/> [H, W] where the format
    /// keeps it) in the format named by the extension of <paramref name="path"/> (see
    /// <see cref="TryGetEncoding"/>). The file appears under its name only once complete. With
    /// <paramref name="overwrite"/> false an existing file is an <see cref="IOException"/>.
    /// </summary>
    public static void Save(string path, float[] rgb, int width, int height, float[]? alpha = null, bool overwrite = false)
    {
        CheckPlanes("ImageFile.Save", rgb, width, height, alpha);
        if (!TryGetEncoding(path, out var encoding))
            throw new ArgumentException(
                $"Cannot save {path}: unsupported extension '{Path.GetExtension(path)}' (use {string.Join(", ", SaveExtensions.SkipLast(1))} or {SaveExtensions[^1]}).");
        AtomicFile.Write(path, overwrite, stream => Encode(stream, encoding, rgb, width, height, alpha, $"Cannot save {path}"));
    }

    /// <summary>
    /// Encodes <paramref name="rgb"/> [3, H, W] (and <paramref name="alpha"/> [H, W] where the format
    /// keeps it) as <paramref name="encoding"/>, written to <paramref name="stream"/> from its current
    /// position (it need not be seekable, and is left open). The bytes are those the path-based
    /// <see cref="Save(string, float[], int, int, float[], bool)"/> writes. If the encoder fails
    /// (<see cref="IOException"/>) the stream may hold part of the image.
    /// </summary>
    public static void Save(Stream stream, ImageEncoding encoding, float[] rgb, int width, int height, float[]? alpha = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite) throw new ArgumentException("ImageFile.Save: the stream is not writable.", nameof(stream));
        if (!Enum.IsDefined(encoding)) throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "ImageFile.Save: unknown encoding.");
        CheckPlanes("ImageFile.Save", rgb, width, height, alpha);
        Encode(stream, encoding, rgb, width, height, alpha, $"Cannot encode a {width}x{height} image as {encoding}");
    }

    /// <summary>The extensions <see cref="Save(string, float[], int, int, float[], bool)"/> accepts, lower case with their dot.</summary>
    public static IReadOnlyList<string> SaveExtensions { get; } = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"];

    /// <summary>
    /// The encoding named by the extension of <paramref name="pathOrExtension"/> (a path, a file name
    /// or a bare extension such as ".tif"; case does not matter); false for an extension not in
    /// <see cref="SaveExtensions"/>.
    /// </summary>
    public static bool TryGetEncoding(string pathOrExtension, out ImageEncoding encoding)
    {
        ArgumentNullException.ThrowIfNull(pathOrExtension);
        ImageEncoding? found = Path.GetExtension(pathOrExtension).ToLowerInvariant() switch
        {
            ".png" => ImageEncoding.Png,
            ".jpg" or ".jpeg" => ImageEncoding.Jpeg,
            ".webp" => ImageEncoding.Webp,
            ".bmp" => ImageEncoding.Bmp,
            ".tif" or ".tiff" => ImageEncoding.Tiff,
            _ => null,
        };
        encoding = found.GetValueOrDefault();
        return found.HasValue;
    }

    /// <summary>The one encoder per format behind both Save methods; <paramref name="failure"/> opens the message of an encoder's refusal.</summary>
    static void Encode(Stream stream, ImageEncoding encoding, float[] rgb, int width, int height, float[]? alpha, string failure)
    {
        switch (encoding)
        {
            case ImageEncoding.Bmp:
                WriteBmp(stream, rgb, width, height); // alpha dropped
                return;
            case ImageEncoding.Tiff:
                TiffImage.Encode(stream, rgb, width, height, alpha, failure);
                return;
        }
        (SKEncodedImageFormat format, int quality, bool keepsAlpha) = encoding switch
        {
            ImageEncoding.Png => (SKEncodedImageFormat.Png, 0, true), // lossless: no quality; PngZLibLevel below
            ImageEncoding.Jpeg => (SKEncodedImageFormat.Jpeg, JpegQuality, false),
            ImageEncoding.Webp => (SKEncodedImageFormat.Webp, WebpQuality, true),
            _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "ImageFile.Save: unknown encoding."),
        };
        using var bitmap = ToBitmap(rgb, width, height, keepsAlpha ? alpha : null);
        bool encoded;
        if (format == SKEncodedImageFormat.Png)
        {
            using var pixmap = bitmap.PeekPixels();
            encoded = pixmap.Encode(stream, new SKPngEncoderOptions(SKPngEncoderFilterFlags.AllFilters, PngZLibLevel));
        }
        else encoded = bitmap.Encode(stream, format, quality);
        if (!encoded)
            throw new IOException($"{failure}: the {format} encoder refused a {width}x{height} image " +
                                  "(JPEG allows at most 65535 pixels per side, WebP 16383).");
    }

    /// <summary>
    /// An RGBA8888 bitmap of planar <paramref name="rgb"/> [3, H, W] and optional <paramref name="alpha"/>
    /// [H, W] (unpremultiplied; opaque when null). Values are clamped to [0, 1] and rounded. The caller disposes it.
    /// </summary>
    public static unsafe SKBitmap ToBitmap(float[] rgb, int width, int height, float[]? alpha = null)
    {
        CheckPlanes("ImageFile.ToBitmap", rgb, width, height, alpha);
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, alpha is null ? SKAlphaType.Opaque : SKAlphaType.Unpremul);
        var bitmap = new SKBitmap(info);
        byte* pixels = (byte*)bitmap.GetPixels();
        if (pixels == null)
        {
            bitmap.Dispose();
            throw new InsufficientMemoryException($"ImageFile.ToBitmap: cannot allocate a {width}x{height} bitmap.");
        }
        long rowBytes = bitmap.RowBytes;
        int plane = width * height;
        ForRows(height, width, y =>
        {
            byte* row = pixels + y * rowBytes;
            for (int x = 0, i = y * width; x < width; x++, i++)
            {
                row[4 * x] = ToByte(rgb[i]);
                row[4 * x + 1] = ToByte(rgb[plane + i]);
                row[4 * x + 2] = ToByte(rgb[2 * plane + i]);
                row[4 * x + 3] = alpha is null ? (byte)255 : ToByte(alpha[i]);
            }
        });
        bitmap.NotifyPixelsChanged();
        return bitmap;
    }

    static unsafe LoadedImage Decode(byte[] bytes, string name)
    {
        if (bytes.Length == 0) throw new ImageFormatException(name, "empty file");
        if (TiffImage.IsTiff(bytes)) return TiffImage.Decode(bytes, name); // Skia has no TIFF codec

        using var source = new MemoryStream(bytes, writable: false);
        using var codec = SKCodec.Create(source, out var created);
        if (codec is null)
            throw new ImageFormatException(name, created == SKCodecResult.IncompleteInput
                ? "truncated or corrupt (the file ends inside its header)"
                : "not an image or an unsupported format (JPEG, PNG, WebP, BMP, GIF and TIFF are supported)");

        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0)
            throw new ImageFormatException(name, $"truncated or corrupt (header gives a size of {info.Width}x{info.Height})");
        if ((long)info.Width * info.Height > MaxPixels)
            throw new ImageFormatException(name, $"image too large: {info.Width}x{info.Height} exceeds the limit of {MaxMegapixels} megapixels");

        // Skia reports 16-bit PNGs as 8-bit; only the PNG header tells.
        bool sixteenBit = codec.EncodedFormat == SKEncodedImageFormat.Png && PngBitDepth(bytes) == 16;
        var dstInfo = new SKImageInfo(info.Width, info.Height, sixteenBit ? SKColorType.RgbaF16 : SKColorType.Rgba8888,
                                      SKAlphaType.Unpremul, SKColorSpace.CreateSrgb());
        byte* pixels = AllocPixels(dstInfo, name);
        try
        {
            var result = codec.GetPixels(dstInfo, (IntPtr)pixels);
            if (result != SKCodecResult.Success)
                throw new ImageFormatException(name, result switch
                {
                    SKCodecResult.IncompleteInput => "truncated or corrupt (the image data ends early)",
                    SKCodecResult.ErrorInInput or SKCodecResult.InvalidInput => "truncated or corrupt (invalid image data)",
                    _ => $"cannot decode this {codec.EncodedFormat} image ({result})",
                });
            return FromPixels(pixels, dstInfo.RowBytes, info.Width, info.Height, sixteenBit,
                              info.AlphaType != SKAlphaType.Opaque, codec.EncodedOrigin);
        }
        finally
        {
            NativeMemory.Free(pixels);
        }
    }

    static unsafe byte* AllocPixels(SKImageInfo info, string name)
    {
        try
        {
            return (byte*)NativeMemory.Alloc((nuint)info.BytesSize64);
        }
        catch (OutOfMemoryException e)
        {
            throw new InsufficientMemoryException($"{name}: not enough memory to decode a {info.Width}x{info.Height} image.", e);
        }
    }

    /// <summary>
    /// Interleaved RGBA (8-bit or half float, unpremultiplied) stored as <paramref name="width"/> x
    /// <paramref name="height"/> to planar floats, turned upright by the EXIF <paramref name="origin"/>.
    /// </summary>
    static unsafe LoadedImage FromPixels(byte* pixels, long rowBytes, int width, int height, bool halfFloat, bool hasAlpha, SKEncodedOrigin origin)
    {
        var (outWidth, outHeight, start, stepY, stepX) = Orientation(origin, width, height);
        int plane = width * height;
        var rgb = new float[3 * plane];
        var alpha = hasAlpha ? new float[plane] : null;
        int translucent = 0;
        var unit = ByteToUnit;

        ForRows(height, width, y =>
        {
            byte* row = pixels + y * rowBytes;
            long o = start + (long)y * stepY;
            bool rowTranslucent = false;
            for (int x = 0; x < width; x++, o += stepX)
            {
                float r, g, b, a;
                if (halfFloat)
                {
                    var h = (Half*)row + 4 * x;
                    r = Unit((float)h[0]); g = Unit((float)h[1]); b = Unit((float)h[2]); a = Unit((float)h[3]);
                }
                else
                {
                    var p = row + 4 * x;
                    r = unit[p[0]]; g = unit[p[1]]; b = unit[p[2]]; a = unit[p[3]];
                }
                rgb[o] = r;
                rgb[plane + o] = g;
                rgb[2 * plane + o] = b;
                if (alpha is not null)
                {
                    alpha[o] = a;
                    rowTranslucent |= a < 1f;
                }
            }
            if (rowTranslucent) Volatile.Write(ref translucent, 1);
        });

        // An alpha channel that is 1 everywhere carries nothing: report the image as opaque.
        return new LoadedImage { Width = outWidth, Height = outHeight, Rgb = rgb, Alpha = translucent != 0 ? alpha : null };
    }

    /// <summary>
    /// Where stored pixel (y, x) of a <paramref name="width"/> x <paramref name="height"/> image lands
    /// in the upright one: index = start + y * stepY + x * stepX. EXIF names each origin by where the
    /// stored row 0 and column 0 appear (RightTop: row 0 on the right, column 0 at the top, i.e. the
    /// stored image must turn 90 degrees clockwise).
    /// </summary>
    internal static (int Width, int Height, long Start, long StepY, long StepX) Orientation(SKEncodedOrigin origin, int width, int height)
    {
        long w = width, h = height;
        return origin switch
        {
            SKEncodedOrigin.TopRight => (width, height, w - 1, w, -1),                  // mirrored left-right
            SKEncodedOrigin.BottomRight => (width, height, (h - 1) * w + w - 1, -w, -1), // 180 degrees
            SKEncodedOrigin.BottomLeft => (width, height, (h - 1) * w, -w, 1),          // mirrored top-bottom
            SKEncodedOrigin.LeftTop => (height, width, 0, 1, h),                        // transposed
            SKEncodedOrigin.RightTop => (height, width, h - 1, -1, h),                  // 90 clockwise
            SKEncodedOrigin.RightBottom => (height, width, (w - 1) * h + h - 1, -1, -h),// transverse
            SKEncodedOrigin.LeftBottom => (height, width, (w - 1) * h, 1, -h),          // 90 counter-clockwise
            _ => (width, height, 0, w, 1),                                              // TopLeft: as stored
        };
    }

    static int PngBitDepth(byte[] bytes) => bytes.Length > 24 ? bytes[24] : 0; // 8-byte signature, IHDR length and type, width, height, then bit depth

    static bool IsHighDepth(SKColorType type) => type is SKColorType.RgbaF16 or SKColorType.RgbaF16Clamped or SKColorType.RgbaF32
        or SKColorType.Rgba16161616 or SKColorType.Rg1616 or SKColorType.RgF16 or SKColorType.Alpha16 or SKColorType.AlphaF16
        or SKColorType.Rgba1010102 or SKColorType.Bgra1010102 or SKColorType.Rgb101010x or SKColorType.Bgr101010x
        or SKColorType.Bgr101010xXR or SKColorType.Rgba10x6;

    /// <summary>Uncompressed 24-bit BMP (BITMAPINFOHEADER, BI_RGB): rows bottom-up, BGR, padded to 4 bytes.</summary>
    static void WriteBmp(Stream stream, float[] rgb, int width, int height)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("BMP writing assumes a little-endian machine.");
        int rowBytes = (3 * width + 3) & ~3;
        long imageBytes = (long)rowBytes * height;
        if (54 + imageBytes > int.MaxValue) throw new IOException($"A {width}x{height} image is too large for a BMP file.");
        var header = new byte[54];
        var span = header.AsSpan();
        span[0] = (byte)'B';
        span[1] = (byte)'M';
        BitConverter.TryWriteBytes(span[2..], (uint)(54 + imageBytes)); // file size
        BitConverter.TryWriteBytes(span[10..], 54u);                     // offset of the pixels
        BitConverter.TryWriteBytes(span[14..], 40u);                     // BITMAPINFOHEADER size
        BitConverter.TryWriteBytes(span[18..], width);
        BitConverter.TryWriteBytes(span[22..], height);                  // positive: bottom-up
        BitConverter.TryWriteBytes(span[26..], (ushort)1);               // planes
        BitConverter.TryWriteBytes(span[28..], (ushort)24);              // bits per pixel
        BitConverter.TryWriteBytes(span[34..], (uint)imageBytes);        // image size; compression (at 30) stays 0 = BI_RGB
        BitConverter.TryWriteBytes(span[38..], 2835);                    // 72 dpi in pixels per metre
        BitConverter.TryWriteBytes(span[42..], 2835);
        stream.Write(header);

        int plane = width * height;
        var row = new byte[rowBytes];
        for (int y = height - 1; y >= 0; y--)
        {
            for (int x = 0, i = y * width; x < width; x++, i++)
            {
                row[3 * x] = ToByte(rgb[2 * plane + i]);
                row[3 * x + 1] = ToByte(rgb[plane + i]);
                row[3 * x + 2] = ToByte(rgb[i]);
            }
            stream.Write(row);
        }
    }

    static void CheckPlanes(string op, float[] rgb, int width, int height, float[]? alpha)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (width <= 0 || height <= 0 || (long)width * height > MaxPixels)
            throw new ArgumentException($"{op}: invalid image size {width}x{height} (at most {MaxMegapixels} megapixels).");
        if (rgb.Length != 3 * width * height)
            throw new ArgumentException($"{op}: rgb must hold 3 x {height} x {width} = {3 * width * height} values, got {rgb.Length}.");
        if (alpha is not null && alpha.Length != width * height)
            throw new ArgumentException($"{op}: alpha must hold {height} x {width} = {width * height} values, got {alpha.Length}.");
    }

    /// <summary>[0, 1] -> 8 bits, clamped and rounded, as encoding does (shared with <see cref="ColorizedImage.CopyPixelsTo"/>).</summary>
    internal static byte ToByte(float v) => v > 0f ? v < 1f ? (byte)(v * 255f + 0.5f) : (byte)255 : (byte)0; // NaN -> 0

    static float Unit(float v) => v > 0f ? v < 1f ? v : 1f : 0f;

    /// <summary>row(y) for every image row, by <see cref="CpuLoop.For"/> with the pixel threshold above.</summary>
    internal static void ForRows(int height, int width, Action<int> row) =>
        CpuLoop.For(height, width, row, threshold: ParallelThreshold);
}
