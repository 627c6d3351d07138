using System.Buffers.Binary;
using SkiaSharp;

namespace Chroma.Cli.Serve;

/// <summary>
/// The pixel size of an uploaded image read from its header alone, so that `chroma serve` can refuse
/// a photo above its pixel limit before it waits for a worker or any pixel memory is allocated: a
/// 20 MB PNG or Deflate TIFF of one flat colour can claim hundreds of megapixels, gigabytes once
/// decoded. The worker checks the decoded size again (<see cref="ColorizeServer"/>), so a header
/// this reader cannot follow costs a queue slot, not memory.
/// </summary>
static class ImageHeader
{
    /// <summary>
    /// Width and height as stored (before any EXIF rotation, which keeps the pixel count), or null
    /// where the header does not tell: not an image Skia recognises, or a TIFF whose first directory
    /// does not give both sizes in the expected form.
    /// </summary>
    public static (int Width, int Height)? ReadSize(byte[] bytes)
    {
        if (bytes.Length < 8) return null;
        if (IsTiff(bytes)) return ReadTiffSize(bytes);
        using var stream = new MemoryStream(bytes, writable: false);
        using var codec = SKCodec.Create(stream);
        return codec is null || codec.Info.Width <= 0 || codec.Info.Height <= 0 ? null : (codec.Info.Width, codec.Info.Height);
    }

    /// <summary>"II*\0" or "MM\0*", and their BigTIFF forms with 43 (as <c>TiffImage.IsTiff</c> in Chroma.Model).</summary>
    public static bool IsTiff(ReadOnlySpan<byte> bytes) => bytes.Length >= 4 &&
        ((bytes[0] == 'I' && bytes[1] == 'I' && bytes[2] is 42 or 43 && bytes[3] == 0) ||
         (bytes[0] == 'M' && bytes[1] == 'M' && bytes[2] == 0 && bytes[3] is 42 or 43));

    /// <summary>
    /// Tags 256 (ImageWidth) and 257 (ImageLength) of the first directory: classic TIFF has an 8-byte
    /// header with the directory's 4-byte offset at 4, a 2-byte entry count and 12-byte entries (tag 2,
    /// type 2, count 4, value 4); BigTIFF a 16-byte header with the offset at 8, an 8-byte count and
    /// 20-byte entries (tag 2, type 2, count 8, value 8). A size is a SHORT (3), LONG (4) or, in
    /// BigTIFF, LONG8 (16) with a count of 1, so its value sits in the entry itself.
    /// </summary>
    static (int Width, int Height)? ReadTiffSize(byte[] bytes)
    {
        bool bigEndian = bytes[0] == 'M';
        bool bigTiff = (bigEndian ? bytes[3] : bytes[2]) == 43;
        ulong Read(long at, int size)
        {
            if (at < 0 || at > bytes.Length - size) return ulong.MaxValue;
            var b = bytes.AsSpan((int)at, size);
            return size switch
            {
                2 => bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(b) : BinaryPrimitives.ReadUInt16LittleEndian(b),
                4 => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(b) : BinaryPrimitives.ReadUInt32LittleEndian(b),
                _ => bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(b) : BinaryPrimitives.ReadUInt64LittleEndian(b),
            };
        }
        int offsetSize = bigTiff ? 8 : 4, countSize = bigTiff ? 8 : 2, entrySize = bigTiff ? 20 : 12;
        ulong directory = Read(bigTiff ? 8 : 4, offsetSize);
        ulong entries = Read((long)Math.Min(directory, long.MaxValue), countSize);
        if (directory >= (ulong)bytes.Length || entries == ulong.MaxValue) return null;
        long width = -1, height = -1;
        for (ulong i = 0; i < entries && (width < 0 || height < 0); i++)
        {
            long entry = (long)directory + countSize + (long)i * entrySize;
            if (entry > bytes.Length - entrySize) return null;
            ulong tag = Read(entry, 2), type = Read(entry + 2, 2), count = Read(entry + 4, offsetSize);
            if (tag is not (256 or 257) || count != 1) continue;
            long valueAt = entry + 4 + offsetSize;
            long value = type switch
            {
                3 => (long)Read(valueAt, 2),
                4 => (long)Read(valueAt, 4),
                16 when bigTiff => (long)Math.Min(Read(valueAt, 8), long.MaxValue),
                _ => -1,
            };
            if (tag == 256) width = value; else height = value;
        }
        return width is > 0 and <= int.MaxValue && height is > 0 and <= int.MaxValue ? ((int)width, (int)height) : null;
    }
}
