using System.Buffers.Binary;
using BitMiracle.LibTiff.Classic;
using Chroma.Model;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>
/// TIFF through ImageFile: files written here with LibTiff directly in the layouts scanners and
/// editors produce, read back to the exact sample values; ImageFile's own TIFFs; damaged files.
/// </summary>
public sealed class TiffTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-tiff-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string PathOf(string name) => Path.Combine(_dir, name);

    const int W = 37, H = 23; // odd sizes: partial last strip and tile, rows that are no multiple of anything

    /// <summary>[samples, H, W] random sample values in [0, 2^bits).</summary>
    static ushort[] RandomSamples(int seed, int samples, int width, int height, int bits)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, samples * width * height).Select(_ => (ushort)rng.Next(1 << bits)).ToArray();
    }

    /// <summary>How a test TIFF is laid out; the defaults are the plainest file.</summary>
    sealed record Layout(int Bits, int Samples, Photometric Photometric)
    {
        public bool Separate { get; init; }
        public Compression Compression { get; init; } = Compression.NONE;
        public ExtraSample? Extra { get; init; }
        public int Tile { get; init; } // 0: strips of RowsPerStrip rows
        public int RowsPerStrip { get; init; } = 5;
        public bool BigEndian { get; init; }
        public Orientation Orientation { get; init; } = Orientation.TOPLEFT;
    }

    /// <summary>
    /// Writes one page per entry of <paramref name="pages"/> ((width, height, [samples, H, W] values)),
    /// through LibTiff's scanline (strips) or tile interface.
    /// </summary>
    static void WriteTiff(string path, Layout layout, params (int Width, int Height, ushort[] Values)[] pages)
    {
        using var tif = Tiff.Open(path, layout.BigEndian ? "wb" : "w") ?? throw new IOException($"LibTiff cannot create {path}");
        int bytes = layout.Bits / 8;
        foreach (var (width, height, values) in pages)
        {
            tif.SetField(TiffTag.IMAGEWIDTH, width);
            tif.SetField(TiffTag.IMAGELENGTH, height);
            tif.SetField(TiffTag.BITSPERSAMPLE, layout.Bits);
            tif.SetField(TiffTag.SAMPLESPERPIXEL, layout.Samples);
            tif.SetField(TiffTag.PHOTOMETRIC, layout.Photometric);
            tif.SetField(TiffTag.PLANARCONFIG, layout.Separate ? PlanarConfig.SEPARATE : PlanarConfig.CONTIG);
            tif.SetField(TiffTag.COMPRESSION, layout.Compression);
            tif.SetField(TiffTag.ORIENTATION, layout.Orientation);
            if (layout.Extra is { } extra) tif.SetField(TiffTag.EXTRASAMPLES, 1, new[] { (short)extra });
            if (layout.Tile > 0)
            {
                tif.SetField(TiffTag.TILEWIDTH, layout.Tile);
                tif.SetField(TiffTag.TILELENGTH, layout.Tile);
            }
            else
                tif.SetField(TiffTag.ROWSPERSTRIP, layout.RowsPerStrip);

            int plane = width * height, perPixel = layout.Separate ? 1 : layout.Samples;
            // Sample s of pixel (y, x) at byte offset `at` of a buffer, in native order (LibTiff swaps for "wb").
            void Put(byte[] buffer, int at, int s, int y, int x)
            {
                ushort v = values[s * plane + y * width + x];
                if (bytes == 2) BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(at), v);
                else buffer[at] = (byte)v;
            }
            for (int p = 0; p < (layout.Separate ? layout.Samples : 1); p++)
            {
                if (layout.Tile > 0)
                {
                    int t = layout.Tile;
                    var tile = new byte[t * t * perPixel * bytes];
                    for (int ty = 0; ty < height; ty += t)
                        for (int tx = 0; tx < width; tx += t)
                        {
                            Array.Clear(tile);
                            for (int y = ty; y < Math.Min(height, ty + t); y++)
                                for (int x = tx; x < Math.Min(width, tx + t); x++)
                                    for (int k = 0; k < perPixel; k++)
                                        Put(tile, (((y - ty) * t + x - tx) * perPixel + k) * bytes, layout.Separate ? p : k, y, x);
                            Assert.True(tif.WriteEncodedTile(tif.ComputeTile(tx, ty, 0, (short)p), tile, tile.Length) > 0);
                        }
                }
                else
                {
                    var row = new byte[width * perPixel * bytes];
                    for (int y = 0; y < height; y++)
                    {
                        for (int x = 0; x < width; x++)
                            for (int k = 0; k < perPixel; k++)
                                Put(row, (x * perPixel + k) * bytes, layout.Separate ? p : k, y, x);
                        Assert.True(tif.WriteScanline(row, y, (short)p));
                    }
                }
            }
            Assert.True(tif.WriteDirectory());
        }
    }

    /// <summary>Asserts that every value is <paramref name="expected"/>(i) exactly (8-bit) or within 1e-6 (16-bit).</summary>
    static void AssertValues(ReadOnlySpan<float> actual, Func<int, double> expected, int bits, string what)
    {
        for (int i = 0; i < actual.Length; i++)
        {
            double e = expected(i);
            if (bits == 8)
                Assert.True(actual[i] == (float)e, $"{what}[{i}]: {actual[i]:R}, expected {e:R}");
            else
                Assert.True(Math.Abs(actual[i] - e) < 1e-6, $"{what}[{i}]: {actual[i]:R}, expected {e:R}");
        }
    }

    public static TheoryData<string> Layouts => [.. LayoutCases.Keys];

    static readonly Dictionary<string, Layout> LayoutCases = new()
    {
        ["gray 8"] = new(8, 1, Photometric.MINISBLACK),
        ["gray 16"] = new(16, 1, Photometric.MINISBLACK),
        ["gray 16 big-endian LZW"] = new(16, 1, Photometric.MINISBLACK) { BigEndian = true, Compression = Compression.LZW },
        ["min-is-white 8"] = new(8, 1, Photometric.MINISWHITE),
        ["min-is-white 16"] = new(16, 1, Photometric.MINISWHITE) { Compression = Compression.ADOBE_DEFLATE },
        ["gray+alpha 8"] = new(8, 2, Photometric.MINISBLACK) { Extra = ExtraSample.UNASSALPHA },
        ["rgb 8"] = new(8, 3, Photometric.RGB),
        ["rgb 8 one strip"] = new(8, 3, Photometric.RGB) { RowsPerStrip = H },
        ["rgb 8 packbits"] = new(8, 3, Photometric.RGB) { Compression = Compression.PACKBITS },
        ["rgb 16"] = new(16, 3, Photometric.RGB),
        ["rgb 16 big-endian deflate"] = new(16, 3, Photometric.RGB) { BigEndian = true, Compression = Compression.ADOBE_DEFLATE },
        ["rgb 8 separate"] = new(8, 3, Photometric.RGB) { Separate = true },
        ["rgb 16 separate LZW"] = new(16, 3, Photometric.RGB) { Separate = true, Compression = Compression.LZW },
        ["rgb 8 tiled"] = new(8, 3, Photometric.RGB) { Tile = 16, Compression = Compression.LZW },
        ["rgb 16 tiled separate"] = new(16, 3, Photometric.RGB) { Tile = 16, Separate = true },
        ["rgba 8"] = new(8, 4, Photometric.RGB) { Extra = ExtraSample.UNASSALPHA },
        ["rgba 16 deflate"] = new(16, 4, Photometric.RGB) { Extra = ExtraSample.UNASSALPHA, Compression = Compression.ADOBE_DEFLATE },
        ["rgba 8 separate"] = new(8, 4, Photometric.RGB) { Extra = ExtraSample.UNASSALPHA, Separate = true },
        ["rgba 8 unspecified extra sample"] = new(8, 4, Photometric.RGB) { Extra = ExtraSample.UNSPECIFIED },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Reads_exact_sample_values(string name)
    {
        var layout = LayoutCases[name];
        int bits = layout.Bits, samples = layout.Samples, plane = W * H;
        var values = RandomSamples(name.Length * 31 + samples, samples, W, H, bits);
        WriteTiff(PathOf("in.tif"), layout, (W, H, values));

        var img = ImageFile.Load(PathOf("in.tif"));
        Assert.Equal((W, H, 1), (img.Width, img.Height, img.Pages));
        double max = (1 << bits) - 1;
        bool gray = layout.Photometric != Photometric.RGB;
        for (int c = 0; c < 3; c++)
        {
            int source = gray ? 0 : c;
            AssertValues(img.Rgb.AsSpan(c * plane, plane), i =>
            {
                double v = values[source * plane + i];
                return (layout.Photometric == Photometric.MINISWHITE ? max - v : v) / max;
            }, bits, $"{name} channel {c}");
        }
        int colours = gray ? 1 : 3;
        if (samples > colours)
        {
            Assert.NotNull(img.Alpha);
            AssertValues(img.Alpha, i => values[colours * plane + i] / max, bits, $"{name} alpha");
        }
        else
            Assert.Null(img.Alpha);
    }

    [Fact]
    public void Associated_alpha_is_divided_out()
    {
        // 2x1 RGBA with premultiplied colour: (64, 32, 0, a 128) is straight (0.5, 0.25, 0); a = 0 stays black.
        WriteTiff(PathOf("assoc.tif"), new Layout(8, 4, Photometric.RGB) { Extra = ExtraSample.ASSOCALPHA },
                  (2, 1, [64, 0, 32, 0, 0, 0, 128, 0]));
        var img = ImageFile.Load(PathOf("assoc.tif"));
        Assert.NotNull(img.Alpha);
        Assert.Equal([128 / 255f, 0f], img.Alpha);
        Assert.Equal(0.5f, img.Rgb[0], 1e-6f);
        Assert.Equal(0.25f, img.Rgb[2], 1e-6f);
        Assert.Equal(0f, img.Rgb[4]);
        Assert.Equal([0f, 0f, 0f], [img.Rgb[1], img.Rgb[3], img.Rgb[5]]);
    }

    [Fact]
    public void Orientation_tag_is_applied()
    {
        // Stored 3 wide, 2 high; RIGHTTOP (6) means the stored image turns 90 degrees clockwise:
        // upright it is 2 wide, 3 high, with stored row 0 as its right column, top to bottom.
        ushort[] gray = [1, 2, 3, 4, 5, 6];
        WriteTiff(PathOf("turned.tif"), new Layout(8, 1, Photometric.MINISBLACK) { Orientation = Orientation.RIGHTTOP }, (3, 2, gray));
        var img = ImageFile.Load(PathOf("turned.tif"));
        Assert.Equal((2, 3), (img.Width, img.Height));
        Assert.Equal(new float[] { 4, 1, 5, 2, 6, 3 }.Select(v => v / 255f), img.Rgb[..6]);
    }

    [Fact]
    public void Palette_image_goes_through_the_rgba_reader()
    {
        // 4x2 palette image: 8-bit indices into a 16-bit colour map (256 entries per channel).
        const int w = 4, h = 2;
        byte[] indices = [0, 1, 2, 3, 3, 2, 1, 0];
        var red = new short[256];
        var green = new short[256];
        var blue = new short[256];
        (byte R, byte G, byte B)[] colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 120, 240)];
        for (int i = 0; i < colours.Length; i++)
            (red[i], green[i], blue[i]) = ((short)(colours[i].R * 257), (short)(colours[i].G * 257), (short)(colours[i].B * 257));
        using (var tif = Tiff.Open(PathOf("palette.tif"), "w"))
        {
            tif.SetField(TiffTag.IMAGEWIDTH, w);
            tif.SetField(TiffTag.IMAGELENGTH, h);
            tif.SetField(TiffTag.BITSPERSAMPLE, 8);
            tif.SetField(TiffTag.SAMPLESPERPIXEL, 1);
            tif.SetField(TiffTag.PHOTOMETRIC, Photometric.PALETTE);
            tif.SetField(TiffTag.COLORMAP, red, green, blue);
            tif.SetField(TiffTag.ROWSPERSTRIP, h);
            for (int y = 0; y < h; y++) Assert.True(tif.WriteScanline(indices[(y * w)..((y + 1) * w)], y));
        }
        var img = ImageFile.Load(PathOf("palette.tif"));
        Assert.Equal((w, h), (img.Width, img.Height));
        Assert.Null(img.Alpha);
        for (int i = 0; i < w * h; i++)
        {
            var (r, g, b) = colours[indices[i]];
            Assert.Equal([r / 255f, g / 255f, b / 255f], [img.Rgb[i], img.Rgb[w * h + i], img.Rgb[2 * w * h + i]]);
        }
    }

    [Fact]
    public void Three_page_file_decodes_the_first_page_and_counts_them_all()
    {
        var first = RandomSamples(1, 3, W, H, 8);
        WriteTiff(PathOf("scan.tif"), new Layout(8, 3, Photometric.RGB) { Compression = Compression.LZW },
                  (W, H, first), (10, 12, RandomSamples(2, 3, 10, 12, 8)), (5, 5, RandomSamples(3, 3, 5, 5, 8)));
        var img = ImageFile.Load(PathOf("scan.tif"));
        Assert.Equal((W, H, 3), (img.Width, img.Height, img.Pages));
        Assert.Equal(first.Select(v => v / 255f), img.Rgb);

        // one page, and every other format: 1
        WriteTiff(PathOf("one.tif"), new Layout(8, 3, Photometric.RGB), (W, H, first));
        Assert.Equal(1, ImageFile.Load(PathOf("one.tif")).Pages);
        ImageFile.Save(PathOf("one.png"), new float[3 * 4], 2, 2);
        Assert.Equal(1, ImageFile.Load(PathOf("one.png")).Pages);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Save_then_load_is_within_half_a_level(bool withAlpha)
    {
        var rng = new Random(4);
        var rgb = Enumerable.Range(0, 3 * W * H).Select(_ => rng.NextSingle()).ToArray();
        var alpha = withAlpha ? Enumerable.Range(0, W * H).Select(_ => rng.NextSingle()).ToArray() : null;
        ImageFile.Save(PathOf("out.tiff"), rgb, W, H, alpha);

        var img = ImageFile.Load(PathOf("out.tiff"));
        Assert.Equal((W, H), (img.Width, img.Height));
        Assert.True(rgb.Zip(img.Rgb, (a, b) => Math.Abs(a - b)).Max() <= 0.5 / 255 + 1e-6);
        if (withAlpha)
            Assert.True(alpha!.Zip(img.Alpha!, (a, b) => Math.Abs(a - b)).Max() <= 0.5 / 255 + 1e-6);
        else
            Assert.Null(img.Alpha);

        // what was written: 8-bit RGB(A), Deflate, unassociated alpha
        using var tif = Tiff.Open(PathOf("out.tiff"), "r");
        Assert.Equal(Compression.ADOBE_DEFLATE, (Compression)tif.GetField(TiffTag.COMPRESSION)[0].ToInt());
        Assert.Equal(8, tif.GetField(TiffTag.BITSPERSAMPLE)[0].ToInt());
        Assert.Equal(withAlpha ? 4 : 3, tif.GetField(TiffTag.SAMPLESPERPIXEL)[0].ToInt());
        Assert.Equal(Photometric.RGB, (Photometric)tif.GetField(TiffTag.PHOTOMETRIC)[0].ToInt());
    }

    [Fact]
    public void Saving_tiff_is_atomic_and_respects_overwrite()
    {
        var first = Enumerable.Repeat(0.2f, 3 * 4).ToArray();
        var second = Enumerable.Repeat(0.8f, 3 * 4).ToArray();
        ImageFile.Save(PathOf("a.tif"), first, 2, 2);
        Assert.Throws<IOException>(() => ImageFile.Save(PathOf("a.tif"), second, 2, 2));
        Assert.Equal(51 / 255f, ImageFile.Load(PathOf("a.tif")).Rgb[0]);
        ImageFile.Save(PathOf("a.tif"), second, 2, 2, overwrite: true);
        Assert.Equal(204 / 255f, ImageFile.Load(PathOf("a.tif")).Rgb[0]);
        Assert.Equal(["a.tif"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Tiff_is_recognised_by_its_first_bytes_whatever_the_name()
    {
        var values = RandomSamples(5, 3, W, H, 8);
        WriteTiff(PathOf("scan.tif"), new Layout(8, 3, Photometric.RGB), (W, H, values));
        File.Copy(PathOf("scan.tif"), PathOf("misnamed.jpg"));
        Assert.Equal(values.Select(v => v / 255f), ImageFile.Load(PathOf("misnamed.jpg")).Rgb);
        using var stream = File.OpenRead(PathOf("scan.tif"));
        Assert.Equal(values.Select(v => v / 255f), ImageFile.Load(stream, "upload").Rgb);
    }

    [Theory]
    [InlineData(ImageEncoding.Png, true)]
    [InlineData(ImageEncoding.Jpeg, false)]
    [InlineData(ImageEncoding.Webp, true)]
    [InlineData(ImageEncoding.Bmp, false)]
    [InlineData(ImageEncoding.Tiff, true)]
    public void Stream_save_decodes_back_at_the_same_size(ImageEncoding encoding, bool keepsAlpha)
    {
        var rng = new Random(6);
        var rgb = Enumerable.Range(0, 3 * W * H).Select(_ => rng.NextSingle()).ToArray();
        var alpha = Enumerable.Range(0, W * H).Select(i => i % 2 == 0 ? 1f : 0.5f).ToArray();
        var stream = new MemoryStream();
        stream.Write("xx"u8); // written from the current position, not from 0
        ImageFile.Save(stream, encoding, rgb, W, H, alpha);
        Assert.True(stream.CanWrite, "the stream is left open");

        stream.Position = 2;
        var img = ImageFile.Load(stream, $"stream.{encoding}");
        Assert.Equal((W, H), (img.Width, img.Height));
        Assert.Equal(keepsAlpha, img.Alpha is not null);

        // the path-based Save writes the same bytes
        string path = PathOf("same" + encoding switch { ImageEncoding.Jpeg => ".jpg", var e => "." + e.ToString().ToLowerInvariant() });
        ImageFile.Save(path, rgb, W, H, alpha);
        Assert.Equal(stream.ToArray()[2..], File.ReadAllBytes(path));
    }

    [Theory]
    [InlineData("photo.TIF", ImageEncoding.Tiff)]
    [InlineData("/some/dir/scan.tiff", ImageEncoding.Tiff)]
    [InlineData(".tif", ImageEncoding.Tiff)]
    [InlineData("a.jpeg", ImageEncoding.Jpeg)]
    [InlineData("a.jpg", ImageEncoding.Jpeg)]
    [InlineData("a.png", ImageEncoding.Png)]
    [InlineData("a.webp", ImageEncoding.Webp)]
    [InlineData("a.bmp", ImageEncoding.Bmp)]
    public void Extensions_map_to_encodings(string path, ImageEncoding expected)
    {
        Assert.True(ImageFile.TryGetEncoding(path, out var encoding));
        Assert.Equal(expected, encoding);
        Assert.Contains(Path.GetExtension(path).ToLowerInvariant(), ImageFile.SaveExtensions);
    }

    [Fact]
    public void Unknown_extensions_have_no_encoding()
    {
        Assert.False(ImageFile.TryGetEncoding("a.gif", out _));
        Assert.False(ImageFile.TryGetEncoding("tif", out _)); // a bare word is a file name without extension
        var ex = Assert.Throws<ArgumentException>(() => ImageFile.Save(PathOf("a.tga"), new float[12], 2, 2));
        Assert.Contains(".tif or .tiff", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageFile.Save(new MemoryStream(), (ImageEncoding)99, new float[12], 2, 2));
    }

    [Fact]
    public void Truncated_tiff_is_an_error_naming_the_file()
    {
        // LibTiff writes the strips first and the directory last: half the file has no directory.
        WriteTiff(PathOf("whole.tif"), new Layout(8, 3, Photometric.RGB) { Compression = Compression.ADOBE_DEFLATE },
                  (W, H, RandomSamples(7, 3, W, H, 8)));
        var whole = File.ReadAllBytes(PathOf("whole.tif"));
        File.WriteAllBytes(PathOf("cut.tif"), whole[..(whole.Length / 2)]);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(PathOf("cut.tif")));
        Assert.StartsWith(PathOf("cut.tif") + ": truncated or corrupt TIFF", ex.Message);
    }

    [Fact]
    public void Tiff_whose_pixel_data_ends_early_is_an_error()
    {
        // Directory first, then the strip: a cut in the pixels leaves a readable header.
        var gray = RandomSamples(8, 1, W, H, 8).Select(v => (byte)v).ToArray();
        var whole = DirectoryFirstTiff(W, H, gray);
        File.WriteAllBytes(PathOf("whole.tif"), whole);
        Assert.Equal(gray.Select(v => v / 255f), ImageFile.Load(PathOf("whole.tif")).Rgb[..(W * H)]);

        File.WriteAllBytes(PathOf("cut.tif"), whole[..(whole.Length - W * H / 2)]);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(PathOf("cut.tif")));
        Assert.StartsWith(PathOf("cut.tif") + ": truncated or corrupt TIFF", ex.Message);
    }

    [Fact]
    public async Task Directory_chain_that_loops_counts_each_page_once()
    {
        // The one directory's next-directory offset (after its 9 entries) points back at itself.
        var gray = RandomSamples(11, 1, W, H, 8).Select(v => (byte)v).ToArray();
        var file = DirectoryFirstTiff(W, H, gray);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8 + 2 + 12 * 9), 8);
        var img = await Task.Run(() => ImageFile.Load(new MemoryStream(file), "loop.tif"), TestContext.Current.CancellationToken)
            .WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken); // TimeoutException if it hangs
        Assert.Equal((W, H, 1), (img.Width, img.Height, img.Pages));
    }

    // Damaged counts that made LibTiff spend minutes (a SHORT tag with 738 million values in a 4 kB
    // file, found by mutating files) or run out of memory (a string of 2^31 - 1 characters).
    [Theory]
    [InlineData(3, 738197505u)]
    [InlineData(2, 0x7FFFFFFFu)]
    public async Task Entry_whose_values_lie_past_the_end_is_an_error(ushort type, uint count)
    {
        var file = DirectoryFirstTiff(W, H, new byte[W * H]);
        var entry = file.AsSpan(8 + 2 + 12 * 6); // SamplesPerPixel (277)
        BinaryPrimitives.WriteUInt16LittleEndian(entry[2..], type);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[4..], count);
        var ex = await Assert.ThrowsAsync<ImageFormatException>(() =>
            Task.Run(() => ImageFile.Load(new MemoryStream(file), "count.tif"), TestContext.Current.CancellationToken)
                .WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Equal("count.tif: truncated or corrupt TIFF (the values of tag 277 lie past the end of the file)", ex.Message);
    }

    [Fact]
    public void Corrupt_compressed_data_is_an_error()
    {
        WriteTiff(PathOf("bad.tif"), new Layout(8, 3, Photometric.RGB) { Compression = Compression.ADOBE_DEFLATE, RowsPerStrip = H },
                  (W, H, RandomSamples(9, 3, W, H, 8)));
        var bytes = File.ReadAllBytes(PathOf("bad.tif"));
        bytes.AsSpan(8, 64).Fill(0xFF); // the strip follows the 8-byte header: its zlib stream is now invalid
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(new MemoryStream(bytes), "bad.tif"));
        Assert.StartsWith("bad.tif: truncated or corrupt TIFF", ex.Message);
    }

    [Fact]
    public void Garbage_named_tif_is_not_an_image()
    {
        var bytes = new byte[4096];
        new Random(10).NextBytes(bytes);
        File.WriteAllBytes(PathOf("noise.tif"), bytes);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(PathOf("noise.tif")));
        Assert.Contains(PathOf("noise.tif"), ex.Message);
        Assert.Contains("not an image", ex.Message);

        // TIFF magic followed by garbage: LibTiff's own complaint, not a crash
        bytes[0] = bytes[1] = (byte)'I';
        (bytes[2], bytes[3]) = (42, 0);
        File.WriteAllBytes(PathOf("noise2.tif"), bytes);
        ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(PathOf("noise2.tif")));
        Assert.StartsWith(PathOf("noise2.tif") + ": truncated or corrupt TIFF", ex.Message);
    }

    [Fact]
    public void LibTiff_writes_nothing_to_stderr()
    {
        var captured = new StringWriter();
        var stderr = Console.Error;
        Console.SetError(captured);
        try
        {
            File.WriteAllBytes(PathOf("header-only.tif"), [(byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8]);
            var ex = Assert.Throws<ImageFormatException>(() => ImageFile.Load(PathOf("header-only.tif")));
            Assert.Contains("(", ex.Message); // LibTiff's messages are quoted in the exception instead
        }
        finally
        {
            Console.SetError(stderr);
        }
        Assert.Equal("", captured.ToString());
    }

    /// <summary>
    /// A little-endian 8-bit gray TIFF laid out by hand: header, the directory at offset 8, one
    /// uncompressed strip after it (the opposite of LibTiff's order).
    /// </summary>
    static byte[] DirectoryFirstTiff(int width, int height, byte[] gray)
    {
        (ushort Tag, ushort Type, uint Value)[] entries = // type 3 = SHORT, 4 = LONG; entries sorted by tag
        [
            (256, 4, (uint)width), (257, 4, (uint)height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, 0 /* strip offset, set below */), (277, 3, 1), (278, 4, (uint)height), (279, 4, (uint)gray.Length),
        ];
        int dataAt = 8 + 2 + 12 * entries.Length + 4;
        var file = new byte[dataAt + gray.Length];
        "II*\0"u8.CopyTo(file);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(4), 8);
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(8), (ushort)entries.Length);
        for (int i = 0; i < entries.Length; i++)
        {
            var e = file.AsSpan(10 + 12 * i);
            BinaryPrimitives.WriteUInt16LittleEndian(e, entries[i].Tag);
            BinaryPrimitives.WriteUInt16LittleEndian(e[2..], entries[i].Type);
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], 1); // count
            uint value = entries[i].Tag == 273 ? (uint)dataAt : entries[i].Value;
            if (entries[i].Type == 3) BinaryPrimitives.WriteUInt16LittleEndian(e[8..], (ushort)value);
            else BinaryPrimitives.WriteUInt32LittleEndian(e[8..], value);
        }
        gray.CopyTo(file, dataAt); // the next-directory offset before it stays 0
        return file;
    }
}
