using System.Buffers;
using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace Chroma.Model;

/// <summary>A floating-point tensor: <see cref="Data"/> holds product(<see cref="Shape"/>) values, row-major, as float32 whatever the file stored.</summary>
public sealed record SafeTensor(string Name, int[] Shape, float[] Data);

/// <summary>An integer tensor (class labels): stored as I64 (I32 is widened on reading).</summary>
public sealed record SafeTensorI64(string Name, int[] Shape, long[] Data);

/// <summary>How <see cref="SafeTensorsFile.Write(string, IEnumerable{SafeTensor}, IReadOnlyDictionary{string, string}, SafeTensorDType, bool, IEnumerable{SafeTensorI64}?)"/> stores floating-point tensors.</summary>
public enum SafeTensorDType { F32, F16 }

/// <summary>A safetensors file that cannot be read, or a tensor missing from one; the message names the file and the problem.</summary>
public sealed class SafeTensorsException : Exception
{
    public SafeTensorsException(string fileName, string problem, Exception? inner = null)
        : base($"{fileName}: {problem}", inner)
    {
        FileName = fileName;
        Problem = problem;
    }

    public string FileName { get; }
    public string Problem { get; }
}

/// <summary>
/// The safetensors format (Hugging Face; what PyTorch's <c>safetensors.torch.save_file</c> writes):
/// <code>
/// [8 bytes]  N: header length, unsigned little-endian
/// [N bytes]  UTF-8 JSON object, padded with spaces to a multiple of 8:
///            {"__metadata__": {"key": "value", ...},
///             "name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
/// [rest]     data: each tensor row-major little-endian at [begin, end) from the start of this section
/// </code>
/// Reading accepts F32, F16, BF16 and F64 (converted to float32, <see cref="Tensors"/>) and I64 and I32
/// (<see cref="IntTensors"/>). Every header field is checked against the file's real size before any
/// tensor memory is allocated, so a hostile or truncated file is a <see cref="SafeTensorsException"/>
/// naming the problem, never a crash or an allocation beyond twice the file size (F16 widened to F32).
/// Tensors may be separated by gaps but must not overlap.
/// <para>
/// Writing follows the reference implementation byte for byte where it is deterministic: tensors
/// ordered by dtype (I64 before F32 before F16) then by name, contiguous from offset 0, the
/// metadata first in the header (keys sorted here), compact JSON padded with spaces to a multiple of 8.
/// </para>
/// </summary>
public sealed class SafeTensorsFile
{
    /// <summary>Largest header accepted (the reference implementation's limit).</summary>
    public const int MaxHeaderBytes = 100_000_000;

    const string MetadataKey = "__metadata__";
    const int ChunkBytes = 1 << 20; // conversion buffer; a multiple of every element size

    readonly Dictionary<string, SafeTensor> _byName;
    readonly Dictionary<string, SafeTensorI64> _intByName;

    SafeTensorsFile(string name, Dictionary<string, string> metadata, List<SafeTensor> tensors, List<SafeTensorI64> intTensors)
    {
        FileName = name;
        Metadata = metadata;
        Tensors = tensors;
        IntTensors = intTensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        _intByName = intTensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The file (or stream) name used in messages.</summary>
    public string FileName { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Floating-point tensors in header order, converted to float32.</summary>
    public IReadOnlyList<SafeTensor> Tensors { get; }

    /// <summary>Integer tensors (I64, or I32 widened) in header order.</summary>
    public IReadOnlyList<SafeTensorI64> IntTensors { get; }

    /// <summary>The floating-point tensor called <paramref name="name"/>; a <see cref="SafeTensorsException"/> if there is none.</summary>
    public SafeTensor this[string name] => TryGet(name, out var tensor) ? tensor
        : throw new SafeTensorsException(FileName, _intByName.ContainsKey(name)
            ? $"tensor '{name}' holds integers; read it through IntTensors"
            : $"no tensor named '{name}' ({_byName.Count} floating-point tensors in the file)");

    public bool TryGet(string name, out SafeTensor tensor) => _byName.TryGetValue(name, out tensor!);

    public bool TryGetInt(string name, out SafeTensorI64 tensor) => _intByName.TryGetValue(name, out tensor!);

    public static SafeTensorsFile Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return Read(stream, path);
    }

    /// <summary>Reads a safetensors file from the current position of <paramref name="stream"/> to its end.</summary>
    public static SafeTensorsFile Read(Stream stream, string nameForMessages)
    {
        ArgumentNullException.ThrowIfNull(stream);
        RequireLittleEndian();
        if (!stream.CanSeek)
        {
            // The size must be known before trusting the header; a copy is bounded by what the stream really holds.
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            copy.Position = 0;
            return new Reader(copy, nameForMessages).Read();
        }
        return new Reader(stream, nameForMessages).Read();
    }

    /// <summary>
    /// Writes the tensors atomically (temporary file in the same folder, then a rename). Floating-point
    /// tensors are stored as <paramref name="dtype"/> (F16 rounds to nearest; magnitudes above 65504
    /// become infinite); <paramref name="intTensors"/> as I64. With <paramref name="overwrite"/> false an
    /// existing file is an <see cref="IOException"/>.
    /// </summary>
    public static void Write(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata,
                             SafeTensorDType dtype = SafeTensorDType.F32, bool overwrite = true, IEnumerable<SafeTensorI64>? intTensors = null)
    {
        var (floats, ints) = Validate(tensors, intTensors, metadata);
        AtomicFile.Write(path, overwrite, stream => WriteTo(stream, floats, ints, metadata, dtype));
    }

    /// <summary>Writes the tensors to <paramref name="stream"/> at its current position.</summary>
    public static void Write(Stream stream, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata,
                             SafeTensorDType dtype = SafeTensorDType.F32, IEnumerable<SafeTensorI64>? intTensors = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (floats, ints) = Validate(tensors, intTensors, metadata);
        WriteTo(stream, floats, ints, metadata, dtype);
    }

    static void RequireLittleEndian()
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors I/O assumes a little-endian machine.");
    }

    // ---------------------------------------------------------------- writing

    static (List<SafeTensor> Floats, List<SafeTensorI64> Ints) Validate(IEnumerable<SafeTensor> tensors, IEnumerable<SafeTensorI64>? intTensors,
                                                                        IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(metadata);
        RequireLittleEndian();
        var floats = tensors.ToList();
        var ints = intTensors?.ToList() ?? [];
        var names = new HashSet<string>(StringComparer.Ordinal);
        void Check(string name, int[] shape, long length)
        {
            if (string.IsNullOrEmpty(name) || name == MetadataKey)
                throw new ArgumentException($"SafeTensorsFile.Write: invalid tensor name '{name}'.");
            if (!names.Add(name)) throw new ArgumentException($"SafeTensorsFile.Write: two tensors are named '{name}'.");
            long count = 1;
            foreach (int d in shape)
            {
                if (d < 0) throw new ArgumentException($"SafeTensorsFile.Write: tensor '{name}' has a negative dimension in [{string.Join(", ", shape)}].");
                count *= d;
            }
            if (count != length)
                throw new ArgumentException($"SafeTensorsFile.Write: tensor '{name}' has shape [{string.Join(", ", shape)}] ({count} values) but holds {length}.");
        }
        foreach (var t in floats) Check(t.Name, t.Shape, t.Data.Length);
        foreach (var t in ints) Check(t.Name, t.Shape, t.Data.Length);
        foreach (var key in metadata.Keys)
            if (metadata[key] is null) throw new ArgumentException($"SafeTensorsFile.Write: metadata '{key}' has no value.");
        return (floats, ints);
    }

    static void WriteTo(Stream stream, List<SafeTensor> floats, List<SafeTensorI64> ints, IReadOnlyDictionary<string, string> metadata, SafeTensorDType dtype)
    {
        // The reference implementation orders by dtype, descending in its enum (I64 > F32 > F16), then by
        // name as UTF-8 bytes; every offset is then a multiple of its element size.
        int floatSize = dtype == SafeTensorDType.F16 ? 2 : 4;
        string floatName = dtype == SafeTensorDType.F16 ? "F16" : "F32";
        var orderedInts = ints.OrderBy(t => t.Name, Utf8Order.Instance).ToList();
        var orderedFloats = floats.OrderBy(t => t.Name, Utf8Order.Instance).ToList();

        var header = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(header, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject(MetadataKey);
                foreach (var key in metadata.Keys.Order(StringComparer.Ordinal)) json.WriteString(key, metadata[key]);
                json.WriteEndObject();
            }
            long offset = 0;
            void Entry(string name, string type, int[] shape, long bytes)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", type);
                json.WriteStartArray("shape");
                foreach (int d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            foreach (var t in orderedInts) Entry(t.Name, "I64", t.Shape, 8L * t.Data.Length);
            foreach (var t in orderedFloats) Entry(t.Name, floatName, t.Shape, (long)floatSize * t.Data.Length);
            json.WriteEndObject();
        }

        int padding = (8 - header.WrittenCount % 8) % 8;
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)(header.WrittenCount + padding));
        stream.Write(prefix);
        stream.Write(header.WrittenSpan);
        for (int i = 0; i < padding; i++) stream.WriteByte((byte)' ');

        foreach (var t in orderedInts) stream.Write(MemoryMarshal.AsBytes(t.Data.AsSpan()));
        if (dtype == SafeTensorDType.F32)
        {
            foreach (var t in orderedFloats) stream.Write(MemoryMarshal.AsBytes(t.Data.AsSpan()));
            return;
        }
        var halves = ArrayPool<Half>.Shared.Rent(ChunkBytes / 2);
        try
        {
            foreach (var t in orderedFloats)
                for (int start = 0; start < t.Data.Length; start += ChunkBytes / 2)
                {
                    int n = Math.Min(ChunkBytes / 2, t.Data.Length - start);
                    TensorPrimitives.ConvertToHalf(t.Data.AsSpan(start, n), halves.AsSpan(0, n));
                    stream.Write(MemoryMarshal.AsBytes(halves.AsSpan(0, n)));
                }
        }
        finally
        {
            ArrayPool<Half>.Shared.Return(halves);
        }
    }

    /// <summary>Orders names as the reference implementation does (Rust string order: UTF-8 bytes).</summary>
    sealed class Utf8Order : IComparer<string>
    {
        public static readonly Utf8Order Instance = new();
        public int Compare(string? x, string? y) =>
            Encoding.UTF8.GetBytes(x ?? "").AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(y ?? ""));
    }

    // ---------------------------------------------------------------- reading

    enum Stored { F32, F16, BF16, F64, I64, I32 }

    sealed record Entry(string Name, Stored Type, int[] Shape, long Count, long Begin, long End);

    sealed class Reader(Stream stream, string name)
    {
        static readonly HashSet<string> KnownUnsupported =
            ["BOOL", "U8", "I8", "I16", "U16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"];

        readonly long _origin = stream.Position;
        readonly long _length = stream.Length - stream.Position;

        SafeTensorsException Error(string problem, Exception? inner = null) => new(name, problem, inner);

        public SafeTensorsFile Read()
        {
            if (_length < 8)
                throw Error($"file too short ({_length} bytes): a safetensors file starts with an 8-byte header length");
            Span<byte> prefix = stackalloc byte[8];
            ReadExactly(prefix, "the header length");
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > MaxHeaderBytes)
                throw Error($"not a safetensors file? header length {headerLength} exceeds the limit of {MaxHeaderBytes} bytes");
            if (headerLength > (ulong)(_length - 8))
                throw Error($"not a safetensors file, or truncated: header length {headerLength} exceeds the file size ({_length - 8} bytes after the 8-byte prefix)");
            var header = new byte[(int)headerLength];
            ReadExactly(header, "the header");
            long dataLength = _length - 8 - (long)headerLength;

            var (metadata, entries) = ParseHeader(header, dataLength);

            // Tensors in file order: reject overlaps, then read sequentially.
            var byOffset = entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin).ToList();
            for (int i = 1; i < byOffset.Count; i++)
                if (byOffset[i].Begin < byOffset[i - 1].End)
                    throw Error($"tensors '{byOffset[i - 1].Name}' [{byOffset[i - 1].Begin}, {byOffset[i - 1].End}) and " +
                                $"'{byOffset[i].Name}' [{byOffset[i].Begin}, {byOffset[i].End}) overlap");

            long dataStart = _origin + 8 + (long)headerLength;
            var floats = new Dictionary<string, float[]>();
            var ints = new Dictionary<string, long[]>();
            var chunk = ArrayPool<byte>.Shared.Rent(ChunkBytes);
            try
            {
                foreach (var e in entries.OrderBy(e => e.Begin))
                {
                    stream.Position = dataStart + e.Begin;
                    if (e.Type is Stored.I64 or Stored.I32)
                    {
                        var values = new long[e.Count];
                        ReadTensor(e, chunk, (bytes, at) => ConvertInts(e.Type, bytes, values.AsSpan(at)));
                        ints[e.Name] = values;
                    }
                    else
                    {
                        var values = new float[e.Count];
                        ReadTensor(e, chunk, (bytes, at) => ConvertFloats(e.Type, bytes, values.AsSpan(at)));
                        floats[e.Name] = values;
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(chunk);
            }

            return new SafeTensorsFile(name, metadata,
                entries.Where(e => floats.ContainsKey(e.Name)).Select(e => new SafeTensor(e.Name, e.Shape, floats[e.Name])).ToList(),
                entries.Where(e => ints.ContainsKey(e.Name)).Select(e => new SafeTensorI64(e.Name, e.Shape, ints[e.Name])).ToList());
        }

        delegate void ChunkConverter(ReadOnlySpan<byte> bytes, int firstElement);

        void ReadTensor(Entry e, byte[] chunk, ChunkConverter convert)
        {
            int size = ElementSize(e.Type);
            long remaining = e.End - e.Begin;
            int element = 0;
            while (remaining > 0)
            {
                int n = (int)Math.Min(chunk.Length, remaining);
                ReadExactly(chunk.AsSpan(0, n), $"tensor '{e.Name}'");
                convert(chunk.AsSpan(0, n), element);
                element += n / size;
                remaining -= n;
            }
        }

        void ReadExactly(Span<byte> buffer, string what)
        {
            try
            {
                stream.ReadExactly(buffer);
            }
            catch (EndOfStreamException ex)
            {
                throw Error($"file truncated while reading {what}", ex);
            }
        }

        (Dictionary<string, string> Metadata, List<Entry> Entries) ParseHeader(byte[] header, long dataLength)
        {
            if (!Utf8.IsValid(header)) throw Error("header is not valid UTF-8");
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(header);
            }
            catch (JsonException ex)
            {
                throw Error($"header is not valid JSON ({ex.Message})", ex);
            }
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw Error($"header is {Kind(root.ValueKind)}, not a JSON object");

                var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
                var entries = new List<Entry>();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var property in root.EnumerateObject())
                {
                    // JsonDocument keeps duplicate keys; the format allows one entry per name.
                    if (!seen.Add(property.Name)) throw Error($"duplicate entry '{property.Name}' in the header");
                    if (property.Name == MetadataKey) ParseMetadata(property.Value, metadata);
                    else entries.Add(ParseEntry(property.Name, property.Value, dataLength));
                }
                return (metadata, entries);
            }
        }

        void ParseMetadata(JsonElement value, Dictionary<string, string> metadata)
        {
            if (value.ValueKind == JsonValueKind.Null) return;
            if (value.ValueKind != JsonValueKind.Object) throw Error($"{MetadataKey} must be an object of strings, got {Kind(value.ValueKind)}");
            foreach (var item in value.EnumerateObject())
            {
                if (item.Value.ValueKind != JsonValueKind.String)
                    throw Error($"{MetadataKey} entry '{item.Name}' must be a string, got {Kind(item.Value.ValueKind)}");
                if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                    throw Error($"duplicate key '{item.Name}' in {MetadataKey}");
            }
        }

        Entry ParseEntry(string tensor, JsonElement value, long dataLength)
        {
            string At(string problem) => $"tensor '{tensor}': {problem}";
            if (value.ValueKind != JsonValueKind.Object) throw Error(At($"entry must be an object, got {Kind(value.ValueKind)}"));

            JsonElement Field(string field, JsonValueKind kind)
            {
                if (!value.TryGetProperty(field, out var v)) throw Error(At($"missing \"{field}\""));
                if (v.ValueKind != kind) throw Error(At($"\"{field}\" must be {Kind(kind)}, got {Kind(v.ValueKind)}"));
                return v;
            }

            string dtype = Field("dtype", JsonValueKind.String).GetString()!;
            Stored type = dtype switch
            {
                "F32" => Stored.F32, "F16" => Stored.F16, "BF16" => Stored.BF16, "F64" => Stored.F64,
                "I64" => Stored.I64, "I32" => Stored.I32,
                _ when KnownUnsupported.Contains(dtype) => throw Error(At($"dtype {dtype} is not supported (supported: F32, F16, BF16, F64, I64, I32)")),
                _ => throw Error(At($"unknown dtype '{dtype}'")),
            };

            var shapeJson = Field("shape", JsonValueKind.Array);
            var shape = new int[shapeJson.GetArrayLength()];
            long count = 1;
            bool overflow = false;
            int k = 0;
            foreach (var d in shapeJson.EnumerateArray())
            {
                if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim))
                    throw Error(At($"shape must be a list of integers, got {shapeJson.GetRawText()}"));
                if (dim < 0) throw Error(At($"negative dimension in shape {shapeJson.GetRawText()}"));
                if (dim > int.MaxValue) throw Error(At($"dimension {dim} in shape {shapeJson.GetRawText()} is too large"));
                shape[k++] = (int)dim;
                if (dim != 0 && count > long.MaxValue / dim) overflow = true;
                else count *= dim;
            }
            if (shape.Contains(0)) { count = 0; overflow = false; }
            if (overflow) throw Error(At($"shape {shapeJson.GetRawText()} overflows (too many elements)"));

            var offsetsJson = Field("data_offsets", JsonValueKind.Array);
            if (offsetsJson.GetArrayLength() != 2) throw Error(At($"data_offsets must be [begin, end], got {offsetsJson.GetRawText()}"));
            long begin = Offset(offsetsJson[0]), end = Offset(offsetsJson[1]);
            long Offset(JsonElement o) => o.ValueKind == JsonValueKind.Number && o.TryGetInt64(out long v) && v >= 0 ? v
                : throw Error(At($"data_offsets must be two non-negative integers, got {offsetsJson.GetRawText()}"));
            if (begin > end) throw Error(At($"data_offsets [{begin}, {end}] end before they begin"));

            int size = ElementSize(type);
            if (count > long.MaxValue / size || end - begin != count * size)
                throw Error(At($"data_offsets [{begin}, {end}] span {end - begin} bytes but shape {shapeJson.GetRawText()} of {dtype} needs {(count > long.MaxValue / size ? "more than 2^63" : (count * size).ToString())}"));
            if (end > dataLength)
                throw Error(At($"data_offsets [{begin}, {end}] reach past the data section, which holds only {dataLength} bytes (file truncated or offsets wrong)"));
            if (count > Array.MaxLength) throw Error(At($"{count} elements do not fit in one array"));
            return new Entry(tensor, type, shape, count, begin, end);
        }

        static string Kind(JsonValueKind kind) => kind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            JsonValueKind.Null => "null",
            _ => "nothing",
        };
    }

    static int ElementSize(Stored type) => type switch
    {
        Stored.F16 or Stored.BF16 => 2,
        Stored.F32 or Stored.I32 => 4,
        _ => 8,
    };

    static void ConvertFloats(Stored type, ReadOnlySpan<byte> bytes, Span<float> dst)
    {
        switch (type)
        {
            case Stored.F32:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(dst);
                break;
            case Stored.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), dst);
                break;
            case Stored.BF16:
                // bfloat16 is the top half of a float32
                var bf = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < bf.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(bf[i] << 16);
                break;
            case Stored.F64:
                var f64 = MemoryMarshal.Cast<byte, double>(bytes);
                for (int i = 0; i < f64.Length; i++) dst[i] = (float)f64[i];
                break;
            default:
                throw new InvalidOperationException($"{type} is not a floating-point dtype.");
        }
    }

    static void ConvertInts(Stored type, ReadOnlySpan<byte> bytes, Span<long> dst)
    {
        if (type == Stored.I64)
        {
            MemoryMarshal.Cast<byte, long>(bytes).CopyTo(dst);
            return;
        }
        var i32 = MemoryMarshal.Cast<byte, int>(bytes);
        for (int i = 0; i < i32.Length; i++) dst[i] = i32[i];
    }
}
