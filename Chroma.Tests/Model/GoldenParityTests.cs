using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>
/// Whole-network parity with the independent PyTorch implementation (tools/torch/colorizer.py):
/// the golden tensors in Fixtures/golden (see its README.md) hold PyTorch's float64 results and,
/// under f32.*, PyTorch's own float32 results for the same weights and inputs, so Chroma's error
/// is judged against what float32 arithmetic costs PyTorch on the same problem.
/// </summary>
/// <remarks>
/// Fixtures: width 0.0625, input size 64, 5 classes, 1x1 fusion. Fixtures/golden: training batch
/// N = 8 of 64x64 (one low-level pass, loss with labels, alpha 1/300); inference N = 8 with a
/// 48x40 local and a separate 64x64 global input, running statistics from the file. The ILGPU
/// simulator takes several seconds per image of that training batch, so the simulated GPU path uses
/// Fixtures/golden-gpu (N = 4, 24x40 local, another seed); a real GPU takes the full set.
/// One training run per fixture and device serves both training tests.
/// </remarks>
public sealed class GoldenParityTests(ITestOutputHelper output)
{
    const float Alpha = 1f / 300;
    /// <summary>Relative error bound (to the tensor's max |value|) where float32 accumulation is well conditioned.</summary>
    const double RelativeTolerance = 1e-4;
    /// <summary>Chroma may be this many times less accurate than PyTorch's own float32 result.</summary>
    const double Float32ErrorFactor = 10;
    /// <summary>Absolute floor for gradients, relative to the largest float64 gradient of any tensor:
    /// conv biases followed by batch norm have true gradient 0, so both errors are pure round-off.</summary>
    const double GradientFloor = 1e-7;
    /// <summary>Trained tensors of the network: 21 conv/FC layers with BN (4 each), color.conv5 and class.fc2 (2 each).</summary>
    const int TrainedTensors = 21 * 4 + 2 * 2;

    static readonly Dictionary<(string, Device), Dictionary<string, SafeTensor>> s_trainingRuns = [];

    /// <summary>The fixture folder for a device: the reduced set on the ILGPU simulator.</summary>
    static string FixtureSet(Device device) => device.Kind == DeviceKind.IlgpuCpu ? "golden-gpu" : "golden";

    static string Fixture(string set, string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", set, name);

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Inference_matches_pytorch(string path)
    {
        var device = TestDevices.Get(path);
        string set = FixtureSet(device);
        var expected = Float64File.Read(Fixture(set, "expected.safetensors"));
        using var network = ModelFile.Load(Fixture(set, "model.safetensors"), device);
        var outputs = Run(network, set, "infer.safetensors", train: false);

        foreach (var name in new[] { "ab", "logits" })
        {
            double err = RelativeError(expected["infer." + name], TestData.ToDouble(outputs[name].Data), outputs[name].Shape);
            double torchErr = RelativeError(expected["infer." + name], expected["f32.infer." + name].Data, expected["f32.infer." + name].Shape);
            output.WriteLine($"{path} infer.{name}: relative error {err:E2} (PyTorch float32 {torchErr:E2})");
            Assert.True(err <= RelativeTolerance, $"{path}: infer.{name} relative error {err:E3} > {RelativeTolerance} (PyTorch float32: {torchErr:E3})");
        }
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Training_outputs_and_loss_match_pytorch(string path)
    {
        var (expected, outputs) = TrainingRun(TestDevices.Get(path));

        // Training-mode batch norm over small batches (only N values per feature in the FC layers)
        // amplifies round-off; the bound follows PyTorch's own float32 error.
        foreach (var name in new[] { "ab", "logits" })
        {
            double err = RelativeError(expected["train." + name], TestData.ToDouble(outputs[name].Data), outputs[name].Shape);
            double torchErr = RelativeError(expected["train." + name], expected["f32.train." + name].Data, expected["f32.train." + name].Shape);
            double bound = Math.Max(RelativeTolerance, Float32ErrorFactor * torchErr);
            output.WriteLine($"{path} train.{name}: relative error {err:E2} (PyTorch float32 {torchErr:E2}, bound {bound:E2})");
            Assert.True(err <= bound, $"{path}: train.{name} relative error {err:E3} > {bound:E3} (PyTorch float32: {torchErr:E3})");
        }
        double loss = outputs["loss"].Data[0], expectedLoss = expected["train.loss"].Data[0];
        double lossErr = Math.Abs(loss - expectedLoss) / Math.Abs(expectedLoss);
        output.WriteLine($"{path} loss {loss:G9} vs {expectedLoss:G9}: relative error {lossErr:E2}");
        Assert.True(lossErr <= RelativeTolerance, $"{path}: loss {loss:G9}, PyTorch float64 {expectedLoss:G9} (relative error {lossErr:E3})");
    }

    [Theory, MemberData(nameof(TestDevices.Paths), MemberType = typeof(TestDevices))]
    public void Gradients_match_pytorch_within_float32_error(string path)
    {
        var (expected, outputs) = TrainingRun(TestDevices.Get(path));

        const string prefix = "train.grad.";
        var gradNames = expected.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => k[prefix.Length..]).ToList();
        var chromaGrads = outputs.Keys.Where(k => k.StartsWith("grad.", StringComparison.Ordinal)).Select(k => k["grad.".Length..]).ToList();
        Assert.Equal(TrainedTensors, gradNames.Count);
        Assert.Equal(gradNames.Order(StringComparer.Ordinal), chromaGrads.Order(StringComparer.Ordinal));

        double maxGrad = gradNames.Max(n => expected[prefix + n].Data.Max(Math.Abs));
        double floor = GradientFloor * maxGrad;
        string worst = ""; double worstRatio = -1, worstErr = 0, worstTorch = 0, worstBound = 0;
        foreach (var name in gradNames)
        {
            var reference = expected[prefix + name];
            var chroma = outputs["grad." + name];
            Assert.Equal(reference.Shape, chroma.Shape);
            double err = MaxAbsError(reference.Data, chroma.Data);
            double torchErr = MaxAbsError(reference.Data, expected["f32." + prefix + name].Data);
            double bound = Float32ErrorFactor * torchErr + floor;
            double ratio = double.IsNaN(err) ? double.PositiveInfinity : err / bound;
            if (ratio > worstRatio) (worst, worstRatio, worstErr, worstTorch, worstBound) = (name, ratio, err, torchErr, bound);
        }
        output.WriteLine($"{path}: worst gradient {worst}: max abs error {worstErr:E3}, PyTorch float32 {worstTorch:E3}, " +
                         $"bound {worstBound:E3} (error / bound {worstRatio:F3}; error / PyTorch error {worstErr / worstTorch:F2})");
        Assert.True(worstRatio <= 1, $"{path}: gradient of {worst}: Chroma's max abs error {worstErr:E3} vs float64 exceeds " +
                                     $"{Float32ErrorFactor} x PyTorch float32's {worstTorch:E3} + {floor:E2}");
    }

    /// <summary>The float64 expectations and Chroma's training-mode outputs (ab, logits, loss terms, grad.*) for a device.</summary>
    static (Dictionary<string, Float64File.Tensor> Expected, Dictionary<string, SafeTensor> Outputs) TrainingRun(Device device)
    {
        string set = FixtureSet(device);
        var expected = Float64File.Read(Fixture(set, "expected.safetensors"));
        lock (s_trainingRuns)
        {
            if (!s_trainingRuns.TryGetValue((set, device), out var outputs))
            {
                using var network = ModelFile.Load(Fixture(set, "model.safetensors"), device);
                s_trainingRuns[(set, device)] = outputs = Run(network, set, "input.safetensors", train: true);
            }
            return (expected, outputs);
        }
    }

    static Dictionary<string, SafeTensor> Run(ColorizationNetwork network, string set, string input, bool train)
    {
        var file = SafeTensorsFile.Read(Fixture(set, input));
        return RawForward.Run(network, file, input, train, Alpha).ToDictionary(t => t.Name);
    }

    /// <summary>max |actual - expected| / max |expected|.</summary>
    static double RelativeError(Float64File.Tensor expected, double[] actual, int[] actualShape)
    {
        Assert.Equal(expected.Shape, actualShape);
        return MaxAbsError(expected.Data, actual) / expected.Data.Max(Math.Abs);
    }

    static double MaxAbsError(double[] expected, float[] actual) => MaxAbsError(expected, TestData.ToDouble(actual));

    static double MaxAbsError(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(actual[i] - expected[i]);
            if (double.IsNaN(d)) return double.NaN;
            max = Math.Max(max, d);
        }
        return max;
    }

    /// <summary>
    /// Reads the F32/F64 tensors of a safetensors file at full precision (Chroma's reader converts
    /// everything to float32, which would round the float64 reference to the precision under test).
    /// Trusts the file: it is a fixture written by tools/torch/safetensors_io.py.
    /// </summary>
    static class Float64File
    {
        public sealed record Tensor(int[] Shape, double[] Data);

        public static Dictionary<string, Tensor> Read(string path)
        {
            var bytes = File.ReadAllBytes(path);
            int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
            using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, headerLength));
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var entry in header.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__") continue;
                string dtype = entry.Value.GetProperty("dtype").GetString()!;
                var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
                var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt32()).ToArray();
                var raw = bytes.AsSpan(8 + headerLength + offsets[0], offsets[1] - offsets[0]);
                int size = dtype switch
                {
                    "F64" => 8,
                    "F32" => 4,
                    _ => throw new InvalidDataException($"{path}: tensor '{entry.Name}' is {dtype}; the golden file holds F64 and F32 only."),
                };
                var values = new double[raw.Length / size];
                for (int i = 0; i < values.Length; i++)
                    values[i] = size == 8 ? BinaryPrimitives.ReadDoubleLittleEndian(raw[(8 * i)..]) : BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..]);
                result[entry.Name] = new Tensor(shape, values);
            }
            return result;
        }
    }
}
