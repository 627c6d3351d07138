using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using BitMiracle.LibTiff.Classic;
using SkiaSharp;

namespace Chroma.Model;

/// <summary>
/// TIFF reading and writing for <see cref="ImageFile"/>, through LibTiff.Net (managed; Skia has no TIFF codec).
/// <para>
/// Reading takes the first page (IFD) and counts the others (<see cref="LoadedImage.Pages"/>).
/// 8- and 16-bit unsigned samples in gray (MinIsBlack, MinIsWhite) or RGB, with an optional alpha
/// sample (the first extra sample; associated alpha is divided out), in strips or tiles, contiguous
/// or separate planes, under any compression LibTiff decodes, are read sample by sample: 16-bit
/// values come out exactly as value / 65535. Everything else (palette, 1/2/4-bit, YCbCr, CMYK, Lab,
/// ...) goes through LibTiff's 8-bit RGBA reader. The Orientation tag is applied like EXIF's.
/// Any error LibTiff reports while reading, or an exception it throws on a damaged file, is an
/// <see cref="ImageFormatException"/> that quotes LibTiff's messages; a file that ends before its
/// last strip is an error, never a partial image. Before LibTiff sees a file, the first directory's
/// entries and the strips or tiles are checked to lie inside it (see <see cref="FirstDirectoryProblem"/>).
/// </para>
/// <para>
/// Writing: 8-bit RGB, or RGBA with unassociated (not premultiplied) alpha, contiguous,
/// Deflate-compressed with the horizontal predictor, strips of about 256 KiB.
/// </para>
/// <para>
/// LibTiff reports errors and warnings through one process-wide handler that writes to stderr by
/// default; <see cref="LibTiffMessages"/> replaces it, collecting errors for the decoding or encoding
/// running on the same thread and dropping warnings.
/// </para>
/// </summary>
internal static class TiffImage
{
    const int StripBytes = 1 << 18; // target size of a written strip, before compression
    const long MaxBlockBytes = 1 << 30; // largest strip or tile read at once (a damaged header can claim anything)

    /// <summary>"II*\0" (little-endian) or "MM\0*" (big-endian), and their BigTIFF forms with 43 ("+").</summary>
    public static bool IsTiff(ReadOnlySpan<byte> bytes) => bytes.Length >= 4 &&
        ((bytes[0] == 'I' && bytes[1] == 'I' && bytes[2] is 42 or 43 && bytes[3] == 0) ||
         (bytes[0] == 'M' && bytes[1] == 'M' && bytes[2] == 0 && bytes[3] is 42 or 43));

    public static LoadedImage Decode(byte[] bytes, string name)
    {
        if (FirstDirectoryProblem(bytes) is { } problem)
            throw new ImageFormatException(name, $"truncated or corrupt TIFF ({problem})");
        using var messages = LibTiffMessages.Collect(name);
        using var source = new MemoryStream(bytes, writable: false);
        bool opening = true;
        try
        {
            using var tif = Tiff.ClientOpen(name, "r", source, new LeaveOpenStream())
                ?? throw new ImageFormatException(name, messages.Problem("truncated or corrupt TIFF"));
            opening = false;
            messages.Clear(); // directory-reading complaints that LibTiff got past are not errors of the image
            var image = DecodeFirstPage(tif, name, messages, bytes.Length);
            int pages = CountPages(bytes);
            return pages == 1 ? image : new LoadedImage { Width = image.Width, Height = image.Height, Rgb = image.Rgb, Alpha = image.Alpha, Pages = pages };
        }
        catch (OutOfMemoryException e) when (opening)
        {
            // A directory is a few hundred bytes: one that makes LibTiff allocate gigabytes (a string
            // tag with a count of 2^31, say) is damaged.
            throw new ImageFormatException(name, messages.Problem("truncated or corrupt TIFF", "a directory entry claims gigabytes"), e);
        }
        catch (OutOfMemoryException e) when (e is not InsufficientMemoryException)
        {
            throw new InsufficientMemoryException($"{name}: not enough memory to decode this TIFF.", e);
        }
        catch (Exception e) when (e is not (ImageFormatException or OutOfMemoryException))
        {
            // LibTiff.Net can throw (IndexOutOfRange, NullReference, ...) on damaged data instead of reporting an error.
            throw new ImageFormatException(name, messages.Problem("truncated or corrupt TIFF", $"LibTiff failed: {e.Message}"), e);
        }
    }

    /// <summary>
    /// The length of the chain of directories (IFDs), walked here rather than by LibTiff's
    /// NumberOfDirectories, which loops forever on a chain that points back into itself. A link
    /// that leaves the file or repeats ends the count; it does not spoil the page already decoded.
    /// At least 1, since the first page was read.
    /// </summary>
    internal static int CountPages(byte[] bytes)
    {
        var layout = new Layout(bytes);
        var seen = new HashSet<long>();
        int pages = 0;
        for (long at = layout.FirstDirectory; at != 0 && seen.Add(at) && pages < ushort.MaxValue; pages++)
        {
            long? next = layout.NextDirectory(at);
            if (next is null) break;
            at = next.Value;
        }
        return Math.Max(1, pages);
    }

    /// <summary>
    /// What is wrong with the first directory, or null: it must lie in the file, and so must the
    /// values of each entry. LibTiff checks less: an entry that claims a billion values (a damaged
    /// count) makes it allocate gigabytes or spend minutes on a file of a few kilobytes.
    /// </summary>
    internal static string? FirstDirectoryProblem(byte[] bytes)
    {
        var layout = new Layout(bytes);
        long at = layout.FirstDirectory;
        if (at < 0) return "the file ends inside its header";
        if (layout.NextDirectory(at) is null) return $"the directory at byte {at} lies outside the file of {bytes.Length} bytes";
        long entries = layout.Entries(at);
        for (long i = 0; i < entries; i++)
        {
            var (tag, end) = layout.Entry(at, i);
            if (end > bytes.Length) return $"the values of tag {tag} lie past the end of the file";
        }
        return null;
    }

    /// <summary>
    /// The byte layout of directories: classic TIFF has an 8-byte header with a 4-byte offset, a 2-byte
    /// entry count, 12-byte entries (tag 2, type 2, count 4, value or offset 4) and a 4-byte next offset;
    /// BigTIFF a 16-byte header with the offset at 8, 8-byte counts and offsets, 20-byte entries.
    /// </summary>
    readonly struct Layout(byte[] bytes)
    {
        readonly bool _big = bytes[0] == 'M';
        readonly bool _bigTiff = (bytes[0] == 'M' ? bytes[3] : bytes[2]) == 43;

        int OffsetSize => _bigTiff ? 8 : 4;
        int CountSize => _bigTiff ? 8 : 2;
        int EntrySize => _bigTiff ? 20 : 12;

        /// <summary>Unsigned integer of 2, 4 or 8 bytes at <paramref name="at"/>; -1 where it does not fit in the file or in a long.</summary>
        long Read(long at, int size)
        {
            if (at < 0 || at > bytes.Length - size) return -1;
            var b = bytes.AsSpan((int)at, size);
            ulong v = size switch
            {
                2 => _big ? BinaryPrimitives.ReadUInt16BigEndian(b) : BinaryPrimitives.ReadUInt16LittleEndian(b),
                4 => _big ? BinaryPrimitives.ReadUInt32BigEndian(b) : BinaryPrimitives.ReadUInt32LittleEndian(b),
                _ => _big ? BinaryPrimitives.ReadUInt64BigEndian(b) : BinaryPrimitives.ReadUInt64LittleEndian(b),
            };
            return v > long.MaxValue ? -1 : (long)v;
        }

        public long FirstDirectory => Read(_bigTiff ? 8 : 4, OffsetSize);

        public long Entries(long directory) => Read(directory, CountSize);

        /// <summary>The offset after the directory at <paramref name="directory"/>, or null when that directory does not fit in the file.</summary>
        public long? NextDirectory(long directory)
        {
            long entries = Entries(directory);
            if (entries < 0 || entries > bytes.Length) return null;
            long next = Read(directory + CountSize + entries * EntrySize, OffsetSize);
            return next < 0 ? null : next;
        }

        /// <summary>Entry <paramref name="index"/>'s tag and where its values end (within the entry itself when they fit there).</summary>
        public (int Tag, long End) Entry(long directory, long index)
        {
            long at = directory + CountSize + index * EntrySize;
            int tag = (int)Read(at, 2), type = (int)Read(at + 2, 2);
            long count = Read(at + 4, _bigTiff ? 8 : 4);
            long size = type switch
            {
                1 or 2 or 6 or 7 => 1,            // BYTE, ASCII, SBYTE, UNDEFINED
                3 or 8 => 2,                      // SHORT, SSHORT
                4 or 9 or 11 or 13 => 4,          // LONG, SLONG, FLOAT, IFD
                5 or 10 or 12 or 16 or 17 or 18 => 8, // RATIONAL, SRATIONAL, DOUBLE, LONG8, SLONG8, IFD8
                _ => 0,                           // unknown types are skipped by LibTiff
            };
            if (size == 0) return (tag, 0);                                     // unknown type: LibTiff skips the entry
            if (count < 0 || count > bytes.Length) return (tag, long.MaxValue); // more values than the file has bytes
            if (size * count <= OffsetSize) return (tag, 0);                    // the values sit in the entry itself
            long offset = Read(at + 4 + (_bigTiff ? 8 : 4), OffsetSize);
            return (tag, offset < 0 ? long.MaxValue : offset + size * count);
        }
    }

    static LoadedImage DecodeFirstPage(Tiff tif, string name, LibTiffMessages messages, long fileLength)
    {
        int width = Int(tif, TiffTag.IMAGEWIDTH), height = Int(tif, TiffTag.IMAGELENGTH);
        if (width <= 0 || height <= 0)
            throw new ImageFormatException(name, $"truncated or corrupt TIFF (header gives a size of {width}x{height})");
        if ((long)width * height > ImageFile.MaxPixels)
            throw new ImageFormatException(name, $"image too large: {width}x{height} exceeds the limit of {ImageFile.MaxMegapixels} megapixels");

        CheckBlocksInFile(tif, name, fileLength);

        int bits = Int(tif, TiffTag.BITSPERSAMPLE, 1), samples = Int(tif, TiffTag.SAMPLESPERPIXEL, 1);
        var format = (SampleFormat)Int(tif, TiffTag.SAMPLEFORMAT, (int)SampleFormat.UINT);
        var photometric = tif.GetField(TiffTag.PHOTOMETRIC) is { } p ? (Photometric)p[0].ToInt() : (Photometric)(-1);
        int colours = photometric switch
        {
            Photometric.MINISBLACK or Photometric.MINISWHITE => 1,
            Photometric.RGB => 3,
            _ => 0,
        };
        var origin = (SKEncodedOrigin)Int(tif, TiffTag.ORIENTATION, (int)Orientation.TOPLEFT); // TIFF numbers orientations as EXIF does

        LoadedImage image = bits is 8 or 16 && format == SampleFormat.UINT && colours > 0 && samples >= colours && samples <= colours + 4
            ? ReadSamples(tif, name, messages, width, height, bits, samples, colours, photometric == Photometric.MINISWHITE)
            : ReadRgba(tif, name, messages, width, height, $"{photometric}, {samples} x {bits}-bit {format} samples");
        return origin == SKEncodedOrigin.TopLeft || !Enum.IsDefined(origin) ? image : Reorient(image, origin);
    }

    /// <summary>
    /// The direct path: every strip or tile decoded by LibTiff (which undoes compression, predictor and
    /// byte order), its samples turned into floats in the stored orientation. Kept samples: the
    /// <paramref name="colours"/> colour ones, then the first extra sample as alpha if there is one.
    /// </summary>
    static LoadedImage ReadSamples(Tiff tif, string name, LibTiffMessages messages, int width, int height,
                                   int bits, int samples, int colours, bool minIsWhite)
    {
        bool hasAlpha = samples > colours;
        bool associated = hasAlpha && FirstExtraSample(tif) == ExtraSample.ASSOCALPHA;
        bool separate = samples > 1 && (PlanarConfig)Int(tif, TiffTag.PLANARCONFIG, (int)PlanarConfig.CONTIG) == PlanarConfig.SEPARATE;
        int kept = colours + (hasAlpha ? 1 : 0), bytesPerSample = bits / 8, plane = width * height;
        var rgb = new float[3 * plane];
        var alpha = hasAlpha ? new float[plane] : null;
        Span<float> Target(int k) => k < colours ? rgb.AsSpan(k * plane, plane) : alpha.AsSpan();

        // A block is a strip (full rows) or a tile; with separate planes each holds one sample per pixel.
        bool tiled = tif.IsTiled();
        int blockWidth = tiled ? Int(tif, TiffTag.TILEWIDTH) : width;
        int blockHeight = tiled ? Int(tif, TiffTag.TILELENGTH) : Int(tif, TiffTag.ROWSPERSTRIP, height);
        if (blockWidth <= 0 || tiled && blockHeight <= 0)
            throw new ImageFormatException(name, $"truncated or corrupt TIFF (tiles of {blockWidth}x{blockHeight})");
        if (blockHeight <= 0 || blockHeight > height) blockHeight = height; // the default, 2^32 - 1, reads as -1: one strip
        int stride = separate ? 1 : samples; // samples per pixel within a block
        if ((long)blockWidth * stride * bytesPerSample * blockHeight > MaxBlockBytes)
            throw new ImageFormatException(name, $"unsupported TIFF: {(tiled ? "tiles" : "strips")} of {blockWidth}x{blockHeight} x {stride} samples");
        int rowBytes = blockWidth * stride * bytesPerSample;
        var block = new byte[Math.Max((long)rowBytes * blockHeight, tiled ? tif.TileSize() : tif.StripSize())];

        for (int p = 0; p < (separate ? kept : 1); p++)
            for (int y0 = 0; y0 < height; y0 += blockHeight)
                for (int x0 = 0; x0 < width; x0 += blockWidth)
                {
                    int rows = Math.Min(blockHeight, height - y0), cols = Math.Min(blockWidth, width - x0);
                    int need = (rows - 1) * rowBytes + cols * stride * bytesPerSample;
                    int got = tiled
                        ? tif.ReadEncodedTile(tif.ComputeTile(x0, y0, 0, (short)p), block, 0, -1)
                        : tif.ReadEncodedStrip(tif.ComputeStrip(y0, (short)p), block, 0, rows * rowBytes);
                    if (got < need || messages.Count > 0)
                        throw new ImageFormatException(name, messages.Problem("truncated or corrupt TIFF", $"the image data ends early or is invalid from row {y0}"));
                    for (int r = 0; r < rows; r++)
                    {
                        var row = block.AsSpan(r * rowBytes, rowBytes);
                        int at = (y0 + r) * width + x0;
                        for (int k = separate ? p : 0; k < (separate ? p + 1 : kept); k++)
                            Samples(row, cols, stride, separate ? 0 : k, bits == 16, minIsWhite && k < colours, Target(k).Slice(at, cols));
                    }
                }

        if (colours == 1)
        {
            rgb.AsSpan(0, plane).CopyTo(rgb.AsSpan(plane));
            rgb.AsSpan(0, plane).CopyTo(rgb.AsSpan(2 * plane));
        }
        if (associated) Unpremultiply(rgb, alpha!);
        return new LoadedImage { Width = width, Height = height, Rgb = rgb, Alpha = Translucent(alpha) };
    }

    /// <summary>
    /// <paramref name="count"/> samples, one every <paramref name="stride"/> starting at index
    /// <paramref name="first"/>, in native byte order as LibTiff returns them, scaled to [0, 1].
    /// </summary>
    static void Samples(ReadOnlySpan<byte> row, int count, int stride, int first, bool sixteen, bool invert, Span<float> dst)
    {
        if (sixteen)
        {
            var s = MemoryMarshal.Cast<byte, ushort>(row);
            for (int i = 0, j = first; i < count; i++, j += stride)
                dst[i] = (invert ? 65535 - s[j] : s[j]) / 65535f;
        }
        else
        {
            var unit = ImageFile.ByteToUnit;
            for (int i = 0, j = first; i < count; i++, j += stride)
                dst[i] = unit[invert ? 255 - row[j] : row[j]];
        }
    }

    /// <summary>
    /// The fallback for layouts the direct path does not handle: LibTiff's RGBA reader (8 bits per
    /// channel, alpha premultiplied, which is divided out here), already turned upright.
    /// </summary>
    static LoadedImage ReadRgba(Tiff tif, string name, LibTiffMessages messages, int width, int height, string layout)
    {
        int plane = width * height;
        var raster = new int[plane]; // ABGR: red in the low byte; row 0 at the top with TOPLEFT
        if (!tif.ReadRGBAImageOriented(width, height, raster, Orientation.TOPLEFT, stopOnError: true) || messages.Count > 0)
            throw new ImageFormatException(name, messages.Problem($"cannot decode this TIFF ({layout})"));
        var rgb = new float[3 * plane];
        var alpha = new float[plane];
        var unit = ImageFile.ByteToUnit;
        for (int i = 0; i < plane; i++)
        {
            int v = raster[i];
            rgb[i] = unit[Tiff.GetR(v)];
            rgb[plane + i] = unit[Tiff.GetG(v)];
            rgb[2 * plane + i] = unit[Tiff.GetB(v)];
            alpha[i] = unit[Tiff.GetA(v)];
        }
        Unpremultiply(rgb, alpha);
        // The RGBA reader applies the orientation itself: the result is returned as TopLeft.
        return new LoadedImage { Width = width, Height = height, Rgb = rgb, Alpha = Translucent(alpha) };
    }

    /// <summary>
    /// Every strip or tile must lie inside the file. LibTiff would find a short one too, but only
    /// after allocating what its byte count claims, which a damaged file can set to gigabytes.
    /// </summary>
    static void CheckBlocksInFile(Tiff tif, string name, long fileLength)
    {
        bool tiled = tif.IsTiled();
        var offsets = Longs(tif.GetField(tiled ? TiffTag.TILEOFFSETS : TiffTag.STRIPOFFSETS));
        var counts = Longs(tif.GetField(tiled ? TiffTag.TILEBYTECOUNTS : TiffTag.STRIPBYTECOUNTS));
        if (offsets is null || counts is null) return; // LibTiff reports missing ones itself
        int n = Math.Min(offsets.Length, counts.Length);
        for (int i = 0; i < n; i++)
            if (offsets[i] < 0 || counts[i] < 0 || offsets[i] + counts[i] > fileLength)
                throw new ImageFormatException(name, $"truncated or corrupt TIFF ({(tiled ? "tile" : "strip")} {i} of {n} " +
                                                     $"ends at byte {offsets[i] + counts[i]}, past the end of the file at {fileLength})");
    }

    static long[]? Longs(FieldValue[]? field) => field is { Length: > 0 } ? field[0].Value switch
    {
        long[] a => a,
        ulong[] a => [.. a.Select(v => (long)Math.Min(v, long.MaxValue))],
        int[] a => [.. a.Select(v => (long)(uint)v)],
        uint[] a => [.. a.Select(v => (long)v)],
        _ => null,
    } : null;

    static ExtraSample FirstExtraSample(Tiff tif)
    {
        var field = tif.GetField(TiffTag.EXTRASAMPLES);
        if (field is not { Length: >= 2 }) return ExtraSample.UNSPECIFIED;
        return field[1].Value switch
        {
            ExtraSample[] { Length: > 0 } types => types[0],
            short[] { Length: > 0 } types => (ExtraSample)types[0],
            ushort[] { Length: > 0 } types => (ExtraSample)types[0],
            _ => ExtraSample.UNSPECIFIED,
        };
    }

    /// <summary>Premultiplied colour to straight colour; where alpha is 0 the colour stays 0.</summary>
    static void Unpremultiply(float[] rgb, float[] alpha)
    {
        int plane = alpha.Length;
        for (int i = 0; i < plane; i++)
        {
            float a = alpha[i];
            if (a >= 1f || a <= 0f) continue;
            for (int c = 0; c < 3; c++)
                rgb[c * plane + i] = Math.Min(1f, rgb[c * plane + i] / a);
        }
    }

    /// <summary>An alpha plane that is 1 everywhere carries nothing: null, as <see cref="ImageFile"/> reports opaque images.</summary>
    static float[]? Translucent(float[]? alpha) => alpha is not null && alpha.AsSpan().IndexOfAnyExcept(1f) >= 0 ? alpha : null;

    static LoadedImage Reorient(LoadedImage stored, SKEncodedOrigin origin)
    {
        int w = stored.Width, h = stored.Height, plane = w * h;
        var (outWidth, outHeight, start, stepY, stepX) = ImageFile.Orientation(origin, w, h);
        float[] Move(float[] src, int planes)
        {
            var dst = new float[src.Length];
            for (int c = 0; c < planes; c++)
                for (int y = 0; y < h; y++)
                {
                    long o = start + y * stepY;
                    for (int x = 0, i = y * w; x < w; x++, i++, o += stepX)
                        dst[c * plane + o] = src[c * plane + i];
                }
            return dst;
        }
        return new LoadedImage
        {
            Width = outWidth, Height = outHeight, Rgb = Move(stored.Rgb, 3),
            Alpha = stored.Alpha is null ? null : Move(stored.Alpha, 1), Pages = stored.Pages,
        };
    }

    static int Int(Tiff tif, TiffTag tag, int fallback) => tif.GetFieldDefaulted(tag) is { Length: > 0 } v ? v[0].ToInt() : fallback;

    static int Int(Tiff tif, TiffTag tag) => tif.GetField(tag) is { Length: > 0 } v ? v[0].ToInt() : 0;

    /// <summary>
    /// Writes 8-bit RGB(A) to <paramref name="stream"/>. LibTiff seeks back to fill in offsets, so
    /// the file is built in memory and then copied: the stream may be non-seekable or not at 0.
    /// </summary>
    public static void Encode(Stream stream, float[] rgb, int width, int height, float[]? alpha, string failure)
    {
        const string name = "chroma";
        using var messages = LibTiffMessages.Collect(name);
        int samples = alpha is null ? 3 : 4, plane = width * height;
        int rowBytes = width * samples; // the caller checked width x height <= 250 megapixels: at most 1 GB in all
        int rowsPerStrip = Math.Clamp(StripBytes / rowBytes, 1, height);

        using var buffer = new MemoryStream();
        using (var tif = Tiff.ClientOpen(name, "w", buffer, new LeaveOpenStream())
                         ?? throw new IOException(messages.Problem($"{failure}: LibTiff cannot start a TIFF")))
        {
            tif.SetField(TiffTag.IMAGEWIDTH, width);
            tif.SetField(TiffTag.IMAGELENGTH, height);
            tif.SetField(TiffTag.BITSPERSAMPLE, 8);
            tif.SetField(TiffTag.SAMPLESPERPIXEL, samples);
            tif.SetField(TiffTag.PHOTOMETRIC, Photometric.RGB);
            tif.SetField(TiffTag.PLANARCONFIG, PlanarConfig.CONTIG);
            tif.SetField(TiffTag.ORIENTATION, Orientation.TOPLEFT);
            tif.SetField(TiffTag.COMPRESSION, Compression.ADOBE_DEFLATE);
            tif.SetField(TiffTag.PREDICTOR, Predictor.HORIZONTAL); // neighbour differences: photos compress better
            tif.SetField(TiffTag.ROWSPERSTRIP, rowsPerStrip);
            tif.SetField(TiffTag.XRESOLUTION, 72.0);                // resolution tags are required by baseline TIFF
            tif.SetField(TiffTag.YRESOLUTION, 72.0);
            tif.SetField(TiffTag.RESOLUTIONUNIT, ResUnit.INCH);
            tif.SetField(TiffTag.SOFTWARE, "Chroma");
            if (alpha is not null)
                tif.SetField(TiffTag.EXTRASAMPLES, 1, new[] { (short)ExtraSample.UNASSALPHA });

            var strip = new byte[rowsPerStrip * rowBytes];
            for (int s = 0, y0 = 0; y0 < height; s++, y0 += rowsPerStrip)
            {
                int rows = Math.Min(rowsPerStrip, height - y0);
                ImageFile.ForRows(rows, width, r =>
                {
                    var row = strip.AsSpan(r * rowBytes, rowBytes);
                    for (int x = 0, i = (y0 + r) * width; x < width; x++, i++)
                    {
                        row[samples * x] = ImageFile.ToByte(rgb[i]);
                        row[samples * x + 1] = ImageFile.ToByte(rgb[plane + i]);
                        row[samples * x + 2] = ImageFile.ToByte(rgb[2 * plane + i]);
                        if (alpha is not null) row[samples * x + 3] = ImageFile.ToByte(alpha[i]);
                    }
                });
                if (tif.WriteEncodedStrip(s, strip, rows * rowBytes) < 0 || messages.Count > 0)
                    throw new IOException(messages.Problem($"{failure}: LibTiff failed writing strip {s}"));
            }
            if (!tif.WriteDirectory() || messages.Count > 0)
                throw new IOException(messages.Problem($"{failure}: LibTiff failed writing the TIFF directory"));
        }
        buffer.Position = 0;
        buffer.CopyTo(stream);
    }

    /// <summary>LibTiff's default stream over the Stream given as client data, except that closing the Tiff leaves it open.</summary>
    sealed class LeaveOpenStream : TiffStream
    {
        public override void Close(object clientData) { }
    }
}

/// <summary>
/// LibTiff's process-wide error and warning handler, replaced so nothing reaches stderr: errors
/// raised on a thread inside <see cref="Collect"/> are kept for that call's exception message;
/// warnings (unknown tags and the like), and errors outside any collection, are dropped.
/// </summary>
internal sealed class LibTiffMessages : IDisposable
{
    static readonly Handler Instance = new();

    [ThreadStatic] static LibTiffMessages? t_current;

    readonly List<string> _errors = [];
    readonly LibTiffMessages? _outer;
    readonly string _name;

    LibTiffMessages(LibTiffMessages? outer, string name) => (_outer, _name) = (outer, name);

    /// <summary>
    /// Installs the handler (again, in case other code replaced it) and collects this thread's errors
    /// until disposed. <paramref name="name"/> is the one given to Tiff.ClientOpen: LibTiff puts it
    /// in many messages, where it is left out (the exception names the file already).
    /// </summary>
    public static LibTiffMessages Collect(string name)
    {
        Tiff.SetErrorHandler(Instance);
        return t_current = new LibTiffMessages(t_current, name);
    }

    public int Count => _errors.Count;

    public void Clear() => _errors.Clear();

    /// <summary>
    /// "<paramref name="problem"/> (detail; first error; second error)": the detail and LibTiff's
    /// errors in brackets (four items at most), no brackets when there are none.
    /// </summary>
    public string Problem(string problem, string? detail = null)
    {
        var all = (detail is null ? _errors : _errors.Prepend(detail)).Distinct().ToList();
        return all.Count == 0 ? problem : $"{problem} ({string.Join("; ", all.Take(4))}{(all.Count > 4 ? "; ..." : "")})";
    }

    public void Dispose()
    {
        if (t_current == this) t_current = _outer;
    }

    sealed class Handler : TiffErrorHandler
    {
        // LibTiff may pass one error to both methods; the repeat is dropped when recorded.
        public override void ErrorHandler(Tiff tif, string method, string format, params object[] args) => Record(method, format, args);

        public override void ErrorHandlerExt(Tiff tif, object clientData, string method, string format, params object[] args) => Record(method, format, args);

        public override void WarningHandler(Tiff tif, string method, string format, params object[] args) { }

        public override void WarningHandlerExt(Tiff tif, object clientData, string method, string format, params object[] args) { }

        static void Record(string? method, string format, object[] args)
        {
            if (t_current is not { } current) return;
            string text;
            try
            {
                text = string.Format(CultureInfo.InvariantCulture, format, args);
            }
            catch (FormatException)
            {
                text = format;
            }
            text = text.Replace(current._name + ": ", "");
            text = (string.IsNullOrEmpty(method) || method == current._name ? text : $"{method}: {text}").ReplaceLineEndings(" ");
            if (current._errors.Count == 0 || current._errors[^1] != text) current._errors.Add(text);
        }
    }
}
