using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Chroma.Model;
using SkiaSharp;
using Xunit;

namespace Chroma.Tests.Model;

public sealed class ImageFileTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-image-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>Planar [3, H, W] values that are exact 8-bit levels k/255, from a seed.</summary>
    static float[] Levels(int seed, int count)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(256) / 255f).ToArray();
    }

    /// <summary>A smooth [3, H, W] image (gradients), which lossy codecs keep well.</summary>
    static float[] Smooth(int width, int height)
    {
        var rgb = new float[3 * width * height];
        int plane = width * height;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x;
                rgb[i] = 0.1f + 0.8f * x / (width - 1);
                rgb[plane + i] = 0.2f + 0.6f * y / (height - 1);
                rgb[2 * plane + i] = 0.5f;
            }
        return rgb;
    }

    static double MaxDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    [Fact]
    public void Png_round_trip_is_exact()
    {
        const int w = 7, h = 5; // odd sizes catch row-stride errors
        var rgb = Levels(1, 3 * w * h);
        ImageFile.Save(PathOf("a.png"), rgb, w, h);
        var img = ImageFile.Load(PathOf("a.png"));
        Assert.Equal((w, h), (img.Width, img.Height));
        Assert.Equal(rgb, img.Rgb);
        Assert.Null(img.Alpha);
    }

    [Fact]
    public void Png_keeps_alpha_unpremultiplied()
    {
        const int w = 6, h = 3;
        var rgb = Levels(2, 3 * w * h);
        var alpha = Levels(3, w * h);
        alpha[0] = 0f; // fully transparent: the colour underneath still survives in PNG
        ImageFile.Save(PathOf("a.png"), rgb, w, h, alpha);
        var img = ImageFile.Load(PathOf("a.png"));
        Assert.NotNull(img.Alpha);
        Assert.Equal(alpha, img.Alpha);
        Assert.Equal(rgb, img.Rgb);
    }

    [Fact]
    public void Alpha_that_is_opaque_everywhere_is_reported_as_none()
    {
        const int w = 4, h = 4;
        var rgb = Levels(4, 3 * w * h);
        ImageFile.Save(PathOf("a.png"), rgb, w, h, Enumerable.Repeat(1f, w * h).ToArray());
        Assert.Null(ImageFile.Load(PathOf("a.png")).Alpha);
    }

    [Fact]
    public void Jpeg_round_trip_is_close()
    {
        const int w = 32, h = 24;
        var rgb = Smooth(w, h);
        ImageFile.Save(PathOf("a.jpeg"), rgb, w, h, Enumerable.Repeat(0.5f, w * h).ToArray()); // alpha dropped
        var img = ImageFile.Load(PathOf("a.jpeg"));
        Assert.Equal((w, h), (img.Width, img.Height));
        Assert.Null(img.Alpha);
        double mean = rgb.Zip(img.Rgb, (a, b) => Math.Abs(a - b)).Average();
        Assert.True(mean < 0.01 && MaxDiff(rgb, img.Rgb) < 0.06, $"JPEG q95: mean error {mean:F4}, max {MaxDiff(rgb, img.Rgb):F4}");
    }

    [Fact]
    public void Webp_round_trip_is_close_and_keeps_alpha()
    {
        const int w = 32, h = 24;
        var rgb = Smooth(w, h);
        var alpha = Enumerable.Range(0, w * h).Select(i => i % w < w / 2 ? 1f : 0.6f).ToArray();
        ImageFile.Save(PathOf("a.webp"), rgb, w, h, alpha);
        var img = ImageFile.Load(PathOf("a.webp"));
        Assert.NotNull(img.Alpha);
        Assert.True(MaxDiff(alpha, img.Alpha) < 0.01, $"alpha error {MaxDiff(alpha, img.Alpha):F4}");
        double mean = rgb.Zip(img.Rgb, (a, b) => Math.Abs(a - b)).Average();
        Assert.True(mean < 0.02, $"WebP q95: mean error {mean:F4}");
    }

    [Fact]
    public void Bmp_round_trip_is_exact()
    {
        const int w = 7, h = 3; // 21-byte rows padded to 24
        var rgb = Levels(5, 3 * w * h);
        ImageFile.Save(PathOf("a.bmp"), rgb, w, h);
        var bytes = File.ReadAllBytes(PathOf("a.bmp"));
        Assert.Equal("BM", Encoding.ASCII.GetString(bytes, 0, 2));
        Assert.Equal(54 + 24 * h, bytes.Length);
        Assert.Equal(bytes.Length, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(2)));
        var img = ImageFile.Load(PathOf("a.bmp"));
        Assert.Equal((w, h), (img.Width, img.Height));
        Assert.Equal(rgb, img.Rgb);
    }

    [Fact]
    public void Gif_first_frame_decodes()
    {
        // 1x1 GIF89a, palette [red, black], LZW data: clear, index 0, end.
        byte[] gif = [.. "GIF89a"u8, 1, 0, 1, 0, 0x80, 0, 0, 255, 0, 0, 0, 0, 0,
                      0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3B];
        var img = ImageFile.Load(new MemoryStream(gif), "red.gif");
        Assert.Equal((1, 1), (img.Width, img.Height));
        Assert.Equal([1f, 0f, 0f], img.Rgb);
    }

    [Fact]
    public void Sixteen_bit_png_keeps_more_than_8_bits()
    {
        // 3x2 RGBA, 16 bits per channel. Red levels sit halfway between two 8-bit steps, where an
        // 8-bit decode would be off by 1/510; half floats hold them to about 1.2e-4.
        const int w = 3, h = 2;
        ushort[] red = [25829, 12979, 52299, 1000, 65535, 0];
        var raw = new MemoryStream();
        for (int y = 0; y < h; y++)
        {
            raw.WriteByte(0); // filter: none
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                foreach (ushort v in new[] { red[i], (ushort)(65535 - red[i]), (ushort)32768, (ushort)(i == 5 ? 16384 : 65535) })
                {
                    raw.WriteByte((byte)(v >> 8));
                    raw.WriteByte((byte)v);
                }
            }
        }
        File.WriteAllBytes(PathOf("deep.png"), TestPng.Build(w, h, bitDepth: 16, colorType: 6, raw.ToArray()));
        var img = ImageFile.Load(PathOf("deep.png"));
        Assert.Equal((w, h), (img.Width, img.Height));
        for (int i = 0; i < w * h; i++)
        {
            double expected = red[i] / 65535.0;
            Assert.True(Math.Abs(img.Rgb[i] - expected) < 2.5e-4, $"pixel {i}: red {img.Rgb[i]:F6}, expected {expected:F6}");
            Assert.True(Math.Abs(img.Rgb[w * h + i] - (1 - expected)) < 2.5e-4, $"pixel {i}: green {img.Rgb[w * h + i]:F6}");
        }
        // the first levels are at least 1/600 away from any 8-bit level, so 8-bit decoding would fail the check above
        Assert.True(Math.Abs(red[0] / 65535.0 * 255 - Math.Round(red[0] / 65535.0 * 255)) > 0.4);
        Assert.NotNull(img.Alpha);
        Assert.Equal(0.25f, img.Alpha[5], 1e-3f);
    }

    // Stored 24x16 with a red 8x8 block in the top-left corner, blue elsewhere. EXIF orientation n
    // says where that corner belongs in the upright image.
    [Theory]
    [InlineData(1, 24, 16, "top-left")]
    [InlineData(2, 24, 16, "top-right")]
    [InlineData(3, 24, 16, "bottom-right")]
    [InlineData(4, 24, 16, "bottom-left")]
    [InlineData(5, 16, 24, "top-left")]
    [InlineData(6, 16, 24, "top-right")]
    [InlineData(7, 16, 24, "bottom-right")]
    [InlineData(8, 16, 24, "bottom-left")]
    public void Exif_orientation_is_applied(int orientation, int width, int height, string redCorner)
    {
        const int w = 24, h = 16;
        var rgb = new float[3 * w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                bool red = y < 8 && x < 8;
                rgb[y * w + x] = red ? 1f : 0f;
                rgb[2 * w * h + y * w + x] = red ? 0f : 1f;
            }
        ImageFile.Save(PathOf("plain.jpg"), rgb, w, h);
        File.WriteAllBytes(PathOf("oriented.jpg"), WithExifOrientation(File.ReadAllBytes(PathOf("plain.jpg")), orientation));

        var img = ImageFile.Load(PathOf("oriented.jpg"));
        Assert.Equal((width, height), (img.Width, img.Height));
        var corners = new Dictionary<string, (int Y, int X)>
        {
            ["top-left"] = (3, 3), ["top-right"] = (3, width - 4),
            ["bottom-left"] = (height - 4, 3), ["bottom-right"] = (height - 4, width - 4),
        };
        foreach (var (corner, (y, x)) in corners)
        {
            int i = y * width + x;
            float r = img.Rgb[i], b = img.Rgb[2 * width * height + i];
            bool isRed = r > 0.8f && b < 0.2f, isBlue = b > 0.8f && r < 0.2f;
            Assert.True(corner == redCorner ? isRed : isBlue, $"orientation {orientation}, {corner} ({y}, {x}): r {r:F2}, b {b:F2}");
        }
    }

    /// <summary>Inserts an EXIF APP1 segment (big-endian TIFF, one IFD entry: Orientation) right after SOI.</summary>
    static byte[] WithExifOrientation(byte[] jpeg, int orientation)
    {
        Assert.True(jpeg[0] == 0xFF && jpeg[1] == 0xD8, "not a JPEG");
        byte[] app1 =
        [
            0xFF, 0xE1, 0x00, 0x22,                          // APP1, length 34 (counts itself)
            .. "Exif\0\0"u8,
            (byte)'M', (byte)'M', 0x00, 0x2A, 0, 0, 0, 8,    // TIFF header, IFD at offset 8
            0x00, 0x01,                                      // one entry
            0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1,              // tag 0x0112 Orientation, SHORT, count 1
            0x00, (byte)orientation, 0, 0,                   // value, left-justified
            0, 0, 0, 0,                                      // no next IFD
        ];
        return [.. jpeg.AsSpan(0, 2), .. app1, .. jpeg.AsSpan(2)];
    }

    [Fact]
    public void Empty_file_is_an_error_naming_the_file()
    {
        File.WriteAllBytes(PathOf("empty.png"), []);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(PathOf("empty.png")));
        Assert.Contains(PathOf("empty.png"), ex.Message);
        Assert.Contains("empty file", ex.Message);
    }

    [Fact]
    public void Random_bytes_are_not_an_image()
    {
        var bytes = new byte[4096];
        new Random(6).NextBytes(bytes);
        File.WriteAllBytes(PathOf("noise.jpg"), bytes);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(PathOf("noise.jpg")));
        Assert.Contains(PathOf("noise.jpg"), ex.Message);
        Assert.Contains("not an image", ex.Message);
    }

    // A truncated file decodes partially in Skia (IncompleteInput); ImageFile treats that as an error.
    [Theory]
    [InlineData("cut.png")]
    [InlineData("cut.jpg")]
    [InlineData("cut.webp")]
    public void Truncated_file_is_an_error(string name)
    {
        const int w = 40, h = 30;
        ImageFile.Save(PathOf("whole" + Path.GetExtension(name)), Levels(7, 3 * w * h), w, h);
        var whole = File.ReadAllBytes(PathOf("whole" + Path.GetExtension(name)));
        File.WriteAllBytes(PathOf(name), whole[..(whole.Length / 2)]);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(PathOf(name)));
        Assert.Contains(PathOf(name), ex.Message);
        Assert.Contains("truncated or corrupt", ex.Message);
    }

    [Fact]
    public void File_cut_inside_its_header_is_an_error()
    {
        ImageFile.Save(PathOf("whole.png"), Levels(8, 3 * 4 * 4), 4, 4);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(new MemoryStream(File.ReadAllBytes(PathOf("whole.png"))[..20]), "header-only.png"));
        Assert.StartsWith("header-only.png: ", ex.Message);
    }

    [Fact]
    public void Image_over_the_pixel_limit_is_refused_from_its_header()
    {
        // 20000 x 20000 = 400 megapixels, declared by the header; the pixel data is a few bytes.
        var png = TestPng.Build(20000, 20000, bitDepth: 8, colorType: 2, raw: new byte[64]);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(new MemoryStream(png), "huge.png"));
        Assert.Equal("huge.png: image too large: 20000x20000 exceeds the limit of 250 megapixels", ex.Message);
    }

    [Fact]
    public void Save_refuses_to_overwrite_unless_asked()
    {
        const int w = 3, h = 2;
        var first = Levels(9, 3 * w * h);
        var second = Levels(10, 3 * w * h);
        ImageFile.Save(PathOf("a.png"), first, w, h);
        var ex = Assert.Throws<IOException>(() => ImageFile.Save(PathOf("a.png"), second, w, h));
        Assert.Contains(PathOf("a.png"), ex.Message);
        Assert.Equal(first, ImageFile.Load(PathOf("a.png")).Rgb);

        ImageFile.Save(PathOf("a.png"), second, w, h, overwrite: true);
        Assert.Equal(second, ImageFile.Load(PathOf("a.png")).Rgb);
        Assert.Equal(["a.png"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Failed_save_leaves_neither_a_partial_file_nor_a_temporary_one()
    {
        // libwebp refuses images wider than 16383 pixels: the encoder fails after the temporary file exists.
        const int w = 16384, h = 1;
        var rgb = new float[3 * w * h];
        Assert.Throws<IOException>(() => ImageFile.Save(PathOf("wide.webp"), rgb, w, h));
        Assert.Throws<ArgumentException>(() => ImageFile.Save(PathOf("a.tga"), rgb, w, h));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));

        ImageFile.Save(PathOf("ok.jpg"), Smooth(8, 8), 8, 8);
        ImageFile.Save(PathOf("ok.bmp"), Smooth(8, 8), 8, 8);
        Assert.Equal(["ok.bmp", "ok.jpg"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Bitmap_conversions_round_trip()
    {
        const int w = 5, h = 3;
        var rgb = Levels(11, 3 * w * h);
        var alpha = Levels(12, w * h);
        using var bitmap = ImageFile.ToBitmap(rgb, w, h, alpha);
        Assert.Equal(SKAlphaType.Unpremul, bitmap.AlphaType);
        var img = ImageFile.FromBitmap(bitmap);
        Assert.Equal(rgb, img.Rgb);
        Assert.Equal(alpha, img.Alpha);

        // a BGRA premultiplied bitmap is converted (opaque pixels, so premultiplication changes nothing)
        using var bgra = new SKBitmap(new SKImageInfo(2, 1, SKColorType.Bgra8888, SKAlphaType.Premul));
        bgra.SetPixel(0, 0, new SKColor(255, 0, 0));
        bgra.SetPixel(1, 0, new SKColor(0, 51, 255));
        var converted = ImageFile.FromBitmap(bgra);
        Assert.Equal([1f, 0f, 0f, 0.2f, 0f, 1f], converted.Rgb);
        Assert.Null(converted.Alpha);
    }

    [Fact]
    public void Save_checks_its_arguments()
    {
        var ex = Assert.Throws<ArgumentException>(() => ImageFile.Save(PathOf("a.png"), new float[10], 2, 2));
        Assert.Contains("rgb", ex.Message);
        Assert.Throws<ArgumentException>(() => ImageFile.Save(PathOf("a.png"), new float[12], 2, 2, new float[3]));
        Assert.Throws<ArgumentException>(() => ImageFile.Save(PathOf("a.gif"), new float[12], 2, 2));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }
}

/// <summary>Hand-built PNG files: signature, IHDR, one zlib IDAT, IEND, each chunk with its CRC-32.</summary>
static class TestPng
{
    /// <param name="raw">scanlines, each with its filter byte, before compression</param>
    public static byte[] Build(int width, int height, byte bitDepth, byte colorType, byte[] raw)
    {
        var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = bitDepth;
        ihdr[9] = colorType; // compression, filter and interlace stay 0
        Chunk(png, "IHDR", ihdr);
        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);
        Chunk(png, "IDAT", compressed.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    static void Chunk(Stream png, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        png.Write(word);
        byte[] typed = [.. Encoding.ASCII.GetBytes(type), .. data];
        png.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typed));
        png.Write(word);
    }

    /// <summary>CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320), as PNG uses over chunk type and data.</summary>
    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
