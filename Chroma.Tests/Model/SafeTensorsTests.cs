using System.Buffers.Binary;
using System.Text;
using Chroma.Model;
using Xunit;

namespace Chroma.Tests.Model;

public sealed class SafeTensorsTests : IDisposable
{
    const string Name = "bad.safetensors";
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string PathOf(string name) => Path.Combine(_dir, name);

    static readonly Dictionary<string, string> NoMetadata = [];

    static SafeTensor Random(string name, int seed, params int[] shape) =>
        new(name, shape, TestData.ToFloat(TestData.Uniform(seed, shape.Aggregate(1, (a, b) => a * b), -3, 3)));

    /// <summary>An 8-byte little-endian length (the header's unless given), the header bytes, then the data.</summary>
    static byte[] Build(string headerJson, int dataBytes = 0, ulong? headerLength = null) =>
        Build(Encoding.UTF8.GetBytes(headerJson), new byte[dataBytes], headerLength);

    static byte[] Build(byte[] header, byte[] data, ulong? headerLength = null)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    static SafeTensorsFile ReadBytes(byte[] bytes) => SafeTensorsFile.Read(new MemoryStream(bytes), Name);

    static void AssertFails(byte[] bytes, string problem)
    {
        var ex = Assert.Throws<SafeTensorsException>(() => ReadBytes(bytes));
        Assert.StartsWith(Name + ": ", ex.Message);
        Assert.Contains(problem, ex.Message);
    }

    // ------------------------------------------------------------ round trips

    [Fact]
    public void F32_round_trip_is_exact_and_keeps_metadata()
    {
        SafeTensor[] tensors =
        [
            Random("low.conv1.weight", 1, 5, 1, 3, 3),
            Random("low.conv1.bias", 2, 5),
            Random("scalar", 3),           // shape [] holds one value
            new("empty", [0, 3], []),
        ];
        var metadata = new Dictionary<string, string> { ["width"] = "0.25", ["classes"] = "205", ["note"] = "ünïcode \"quoted\" <tag>" };
        SafeTensorsFile.Write(PathOf("w.safetensors"), tensors, metadata);

        var file = SafeTensorsFile.Read(PathOf("w.safetensors"));
        Assert.Equal(metadata, file.Metadata);
        Assert.Equal(tensors.Length, file.Tensors.Count);
        foreach (var t in tensors)
        {
            Assert.Equal(t.Shape, file[t.Name].Shape);
            Assert.Equal(t.Data, file[t.Name].Data);
        }
        Assert.Empty(file.IntTensors);
    }

    [Fact]
    public void F16_round_trip_keeps_half_precision()
    {
        var t = Random("w", 4, 7, 9);
        t.Data[0] = 65504f;      // largest half
        t.Data[1] = 1e-5f;       // subnormal in half
        SafeTensorsFile.Write(PathOf("h.safetensors"), [t], NoMetadata, SafeTensorDType.F16);
        Assert.Equal(8 + HeaderLength(PathOf("h.safetensors")) + 2 * 63, new FileInfo(PathOf("h.safetensors")).Length);

        var back = SafeTensorsFile.Read(PathOf("h.safetensors"))["w"];
        Assert.Equal(t.Shape, back.Shape);
        for (int i = 0; i < t.Data.Length; i++)
        {
            Assert.Equal((float)(Half)t.Data[i], back.Data[i]); // exactly the nearest half
            Assert.True(Math.Abs(back.Data[i] - t.Data[i]) <= Math.Abs(t.Data[i]) / 2048 + 6e-8, $"element {i}: {t.Data[i]} -> {back.Data[i]}");
        }
    }

    [Fact]
    public void I64_round_trip_is_exact()
    {
        var labels = new SafeTensorI64("labels", [2, 3], [0, 204, -1, long.MaxValue, long.MinValue, 42]);
        var w = Random("w", 5, 3);
        SafeTensorsFile.Write(PathOf("l.safetensors"), [w], NoMetadata, intTensors: [labels]);

        var file = SafeTensorsFile.Read(PathOf("l.safetensors"));
        var back = Assert.Single(file.IntTensors);
        Assert.Equal("labels", back.Name);
        Assert.Equal(labels.Shape, back.Shape);
        Assert.Equal(labels.Data, back.Data);
        Assert.True(file.TryGetInt("labels", out _));
        Assert.Equal(w.Data, file["w"].Data);
    }

    static long HeaderLength(string path) => (long)BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path).AsSpan(0, 8));

    // ------------------------------------------------------------ byte layout

    [Fact]
    public void Layout_matches_the_reference_writer_byte_for_byte()
    {
        // What safetensors.torch.save_file({"a": torch.tensor([1.0, 2.0])}) writes: compact JSON
        // (54 bytes) padded with 2 spaces to 56, the length as u64 LE, then the raw floats.
        var stream = new MemoryStream();
        SafeTensorsFile.Write(stream, [new SafeTensor("a", [2], [1f, 2f])], NoMetadata);
        const string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ";
        byte[] expected = [56, 0, 0, 0, 0, 0, 0, 0, .. Encoding.ASCII.GetBytes(header), 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40];
        Assert.Equal(expected, stream.ToArray());
    }

    // The serialization test of the reference implementation (Rust crate safetensors, test_serialization):
    // one I32 tensor "test" [2, 2] of zeros; a 60-byte header padded with 4 spaces to 64.
    static readonly byte[] ReferenceI32File =
    [
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 116, 101, 115, 116, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 73, 51, 50, 34,
        44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 50, 44, 50, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115,
        34, 58, 91, 48, 44, 49, 54, 93, 125, 125, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    [Fact]
    public void Reads_the_reference_file_and_writes_the_same_layout()
    {
        var file = ReadBytes(ReferenceI32File);
        var test = Assert.Single(file.IntTensors);
        Assert.Equal("test", test.Name);
        Assert.Equal([2, 2], test.Shape);
        Assert.Equal(new long[4], test.Data);

        // The same tensor as F32 (the writer stores integers as I64 only): identical bytes but for the dtype name.
        var stream = new MemoryStream();
        SafeTensorsFile.Write(stream, [new SafeTensor("test", [2, 2], new float[4])], NoMetadata);
        var expected = (byte[])ReferenceI32File.Clone();
        expected[26] = (byte)'F'; // "I32" -> "F32"
        Assert.Equal(expected, stream.ToArray());
    }

    [Fact]
    public void Layout_puts_metadata_first_and_orders_tensors_by_dtype_then_name()
    {
        var stream = new MemoryStream();
        SafeTensorsFile.Write(stream, [new SafeTensor("b", [1], [3f]), new SafeTensor("a", [1], [2f])],
            new Dictionary<string, string> { ["format"] = "pt" }, intTensors: [new SafeTensorI64("z", [1], [7])]);
        var bytes = stream.ToArray();
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        Assert.Equal(
            "{\"__metadata__\":{\"format\":\"pt\"}," +
            "\"z\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}," +
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}," +
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
            Encoding.UTF8.GetString(bytes, 8, (int)n).TrimEnd(' '));
        Assert.Equal(8 + n + 16, bytes.Length);
    }

    // ------------------------------------------------------------ other dtypes and orders

    [Fact]
    public void Reads_bf16_f64_and_i32_and_tensors_in_any_order_with_gaps()
    {
        // Header order differs from data order; 4 unused bytes between "d" and "h".
        var data = new MemoryStream();
        void Put(ReadOnlySpan<byte> b) => data.Write(b);
        Put(BitConverter.GetBytes(0.1)); Put(BitConverter.GetBytes(-2.5));                          // d: F64 [0, 16)
        Put([9, 9, 9, 9]);                                                                            // gap [16, 20)
        Put(BitConverter.GetBytes((ushort)0x3FC0)); Put(BitConverter.GetBytes((ushort)0xC120));       // b: BF16 1.5, -10 [20, 24)
        Put(BitConverter.GetBytes(-7)); Put(BitConverter.GetBytes(int.MaxValue));                     // i: I32 [24, 32)
        var header = "{\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[24,32]}," +
                     "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[20,24]}," +
                     "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
        var file = ReadBytes(Build(Encoding.UTF8.GetBytes(header), data.ToArray()));
        Assert.Equal(["b", "d"], file.Tensors.Select(t => t.Name));
        Assert.Equal([1.5f, -10f], file["b"].Data);
        Assert.Equal([1, 2], file["b"].Shape);
        Assert.Equal([0.1f, -2.5f], file["d"].Data);
        Assert.True(file.TryGetInt("i", out var i));
        Assert.Equal([-7L, int.MaxValue], i.Data);
    }

    [Fact]
    public void Reads_a_stream_that_cannot_seek()
    {
        var stream = new MemoryStream();
        SafeTensorsFile.Write(stream, [Random("w", 6, 4, 3)], NoMetadata);
        var file = SafeTensorsFile.Read(new ForwardOnlyStream(stream.ToArray()), "pipe");
        Assert.Equal(Random("w", 6, 4, 3).Data, file["w"].Data);
    }

    // ------------------------------------------------------------ lookups and writing

    [Fact]
    public void Missing_tensor_is_an_error_naming_tensor_and_file()
    {
        SafeTensorsFile.Write(PathOf("w.safetensors"), [Random("a", 7, 2)], NoMetadata, intTensors: [new SafeTensorI64("n", [1], [1])]);
        var file = SafeTensorsFile.Read(PathOf("w.safetensors"));
        var ex = Assert.Throws<SafeTensorsException>(() => file["low.conv9.weight"]);
        Assert.Contains("low.conv9.weight", ex.Message);
        Assert.Contains(PathOf("w.safetensors"), ex.Message);
        Assert.Contains("IntTensors", Assert.Throws<SafeTensorsException>(() => file["n"]).Message);
        Assert.False(file.TryGet("missing", out _));
    }

    [Fact]
    public void Write_is_atomic_and_refuses_to_overwrite_when_asked()
    {
        string path = PathOf("w.safetensors");
        SafeTensorsFile.Write(path, [Random("a", 8, 3)], NoMetadata);
        SafeTensorsFile.Write(path, [Random("a", 9, 3)], NoMetadata); // overwrite is the default
        Assert.Equal(Random("a", 9, 3).Data, SafeTensorsFile.Read(path)["a"].Data);

        var ex = Assert.Throws<IOException>(() => SafeTensorsFile.Write(path, [Random("a", 10, 3)], NoMetadata, overwrite: false));
        Assert.Contains(path, ex.Message);
        Assert.Equal(Random("a", 9, 3).Data, SafeTensorsFile.Read(path)["a"].Data);
        Assert.Equal(["w.safetensors"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Write_checks_its_arguments()
    {
        var stream = new MemoryStream();
        Assert.Contains("holds 5", Assert.Throws<ArgumentException>(() =>
            SafeTensorsFile.Write(stream, [new SafeTensor("a", [2, 3], new float[5])], NoMetadata)).Message);
        Assert.Contains("two tensors", Assert.Throws<ArgumentException>(() =>
            SafeTensorsFile.Write(stream, [new SafeTensor("a", [1], [1f])], NoMetadata, intTensors: [new SafeTensorI64("a", [1], [1])])).Message);
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(stream, [new SafeTensor("__metadata__", [1], [1f])], NoMetadata));
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(stream, [new SafeTensor("a", [-1], [])], NoMetadata));
        Assert.Equal(0, stream.Length);
    }

    // ------------------------------------------------------------ validation: one test per problem

    [Fact]
    public void File_shorter_than_8_bytes() => AssertFails([1, 2, 3], "file too short (3 bytes)");

    [Fact]
    public void Header_length_beyond_the_file() =>
        AssertFails(Build("{}", headerLength: 1000), "header length 1000 exceeds the file size (2 bytes after the 8-byte prefix)");

    [Fact]
    public void Header_length_over_100_MB() =>
        AssertFails(Build("{}", headerLength: 200_000_000), "header length 200000000 exceeds the limit of 100000000 bytes");

    [Fact]
    public void Header_length_that_would_overflow_a_signed_size() =>
        AssertFails(Build("{}", headerLength: ulong.MaxValue), "exceeds the limit");

    [Fact]
    public void Header_not_utf8() =>
        AssertFails(Build([(byte)'{', (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)':', (byte)'1', (byte)'}'], []), "header is not valid UTF-8");

    [Fact]
    public void Header_duplicate_tensor_names() =>
        AssertFails(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}," +
                          "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "duplicate entry 'a'");

    [Fact]
    public void Overlapping_tensors() =>
        AssertFails(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "tensors 'a' [0, 8) and 'b' [4, 12) overlap");

    [Fact]
    public void Data_section_shorter_than_claimed()
    {
        var stream = new MemoryStream();
        SafeTensorsFile.Write(stream, [Random("w", 11, 10)], NoMetadata);
        var whole = stream.ToArray();
        File.WriteAllBytes(PathOf("cut.safetensors"), whole[..^6]);
        var ex = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Read(PathOf("cut.safetensors")));
        Assert.StartsWith(PathOf("cut.safetensors") + ": ", ex.Message);
        Assert.Contains("tensor 'w': data_offsets [0, 40] reach past the data section, which holds only 34 bytes", ex.Message);
    }

    const string Ok = "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";

    [Theory]
    [InlineData("{\"a\":", "header is not valid JSON")]
    [InlineData("{\"a\":{" + Ok + "}} x", "header is not valid JSON")]
    [InlineData("[1, 2]", "header is an array, not a JSON object")]
    [InlineData("{\"a\":5}", "tensor 'a': entry must be an object, got a number")]
    [InlineData("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor 'a': missing \"dtype\"")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "tensor 'a': missing \"shape\"")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "tensor 'a': missing \"data_offsets\"")]
    [InlineData("{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor 'a': \"dtype\" must be a string, got a number")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", "tensor 'a': \"shape\" must be an array, got a string")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"begin\":0}}}", "tensor 'a': \"data_offsets\" must be an array, got an object")]
    [InlineData("{\"__metadata__\":[1]," + "\"a\":{" + Ok + "}}", "__metadata__ must be an object of strings, got an array")]
    [InlineData("{\"__metadata__\":{\"width\":1}," + "\"a\":{" + Ok + "}}", "__metadata__ entry 'width' must be a string, got a number")]
    [InlineData("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", "duplicate key 'k' in __metadata__")]
    [InlineData("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor 'a': unknown dtype 'Q7'")]
    [InlineData("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", "tensor 'a': dtype U8 is not supported")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "tensor 'a': negative dimension in shape [-2]")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", "tensor 'a': shape must be a list of integers")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", "tensor 'a': shape must be a list of integers")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,8]}}", "tensor 'a': dimension 4294967296 in shape [4294967296] is too large")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", "overflows")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[65536,65536,65536,65536],\"data_offsets\":[0,8]}}", "overflows")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "tensor 'a': data_offsets [8, 0] end before they begin")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "tensor 'a': data_offsets must be [begin, end], got [0]")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", "tensor 'a': data_offsets must be two non-negative integers")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "tensor 'a': data_offsets [8, 16] reach past the data section, which holds only 8 bytes")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "tensor 'a': data_offsets [0, 8] span 8 bytes but shape [3] of F32 needs 12")]
    [InlineData("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor 'a': data_offsets [0, 8] span 8 bytes but shape [2] of F16 needs 4")]
    public void Invalid_header(string header, string problem) => AssertFails(Build(header, dataBytes: 8), problem);

    [Fact]
    public void Hostile_shape_claiming_terabytes_allocates_nothing()
    {
        // 2^20 x 2^20 floats (4 TiB) "stored" in 8 bytes: rejected from the header, before any allocation.
        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertFails(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],\"data_offsets\":[0,4398046511104]}}", 8), "reach past the data section");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10_000_000);
    }

    /// <summary>A stream that can only be read forwards (a pipe).</summary>
    sealed class ForwardOnlyStream(byte[] bytes) : Stream
    {
        readonly MemoryStream _inner = new(bytes);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 7)); // short reads too
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
