using Chroma.Model;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>
/// The network's tensors against spec MODEL.md, written out here independently of the model code:
/// names, shapes, parameter counts, width scaling, fusion kernel, output shapes, input checks.
/// </summary>
public sealed class NetworkStructureTests
{
    /// <summary>The paper's model (width 1, 205 classes, 1x1 fusion) as counted by tools/torch/colorizer.py.</summary>
    const long PaperParameterCount = 42_367_343;

    /// <summary>
    /// Every tensor of the network from MODEL.md's table, in its order: (name, shape, trained).
    /// Channels round(c * width) half away from zero (the PyTorch reference's floor(c w + 0.5)), at least 1.
    /// </summary>
    static List<(string Name, int[] Shape, bool Trained)> Spec(double width, int classes, int fusionKernel = 1, int inputSize = 224)
    {
        int c(int channels) => Math.Max(1, (int)Math.Floor(channels * width + 0.5));
        var tensors = new List<(string, int[], bool)>();
        void Bn(string name, int ch)
        {
            tensors.Add(($"{name}.weight", [ch], true));
            tensors.Add(($"{name}.bias", [ch], true));
            tensors.Add(($"{name}.running_mean", [ch], false));
            tensors.Add(($"{name}.running_var", [ch], false));
        }
        void Conv(string name, string? bn, int cin, int cout, int k)
        {
            tensors.Add(($"{name}.weight", [cout, cin, k, k], true));
            tensors.Add(($"{name}.bias", [cout], true));
            if (bn is not null) Bn(bn, cout);
        }
        void Fc(string name, string? bn, int fin, int fout)
        {
            tensors.Add(($"{name}.weight", [fout, fin], true));
            tensors.Add(($"{name}.bias", [fout], true));
            if (bn is not null) Bn(bn, fout);
        }

        // low-level: 64, 128, 128, 256, 256, 512 (strides 2, 1, 2, 1, 2, 1), input 1 channel
        int[] low = [64, 128, 128, 256, 256, 512];
        int prev = 1;
        for (int i = 0; i < low.Length; i++) { Conv($"low.conv{i + 1}", $"low.bn{i + 1}", prev, c(low[i]), 3); prev = c(low[i]); }
        // mid-level: 512, 256
        Conv("mid.conv1", "mid.bn1", c(512), c(512), 3);
        Conv("mid.conv2", "mid.bn2", c(512), c(256), 3);
        // global: 4 convs of 512, then FC 1024, 512, 256 on the flattened (inputSize / 32)^2 x 512 map
        for (int i = 1; i <= 4; i++) Conv($"global.conv{i}", $"global.bn{i}", c(512), c(512), 3);
        int map = inputSize / 32;
        Fc("global.fc1", "global.fcbn1", c(512) * map * map, c(1024));
        Fc("global.fc2", "global.fcbn2", c(1024), c(512));
        Fc("global.fc3", "global.fcbn3", c(512), c(256));
        // fusion: [mid 256 ; global 256] -> 256
        Conv("fusion.conv", "fusion.bn", c(256) + c(256), c(256), fusionKernel);
        // colorization: 128, 64, 64, 32, then 2 outputs (no BN)
        Conv("color.conv1", "color.bn1", c(256), c(128), 3);
        Conv("color.conv2", "color.bn2", c(128), c(64), 3);
        Conv("color.conv3", "color.bn3", c(64), c(64), 3);
        Conv("color.conv4", "color.bn4", c(64), c(32), 3);
        Conv("color.conv5", null, c(32), 2, 3);
        // classification from the 512-vector: 256, then the class logits (no BN)
        Fc("class.fc1", "class.bn1", c(512), c(256));
        Fc("class.fc2", null, c(256), classes);
        return tensors;
    }

    static long Count(IEnumerable<(string Name, int[] Shape, bool Trained)> spec) =>
        spec.Where(t => t.Trained).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    static void AssertMatchesSpec(ColorizationNetwork network, List<(string Name, int[] Shape, bool Trained)> spec)
    {
        var entries = network.Parameters.Entries;
        Assert.Equal(spec.Select(t => t.Name).Order(StringComparer.Ordinal), entries.Select(e => e.Name).Order(StringComparer.Ordinal));
        foreach (var (name, shape, trained) in spec)
        {
            var e = network.Parameters[name];
            Assert.True(shape.SequenceEqual(e.Shape), $"{name}: shape [{string.Join(", ", e.Shape)}], MODEL.md gives [{string.Join(", ", shape)}]");
            Assert.True(trained == e.Trained, $"{name}: trained is {e.Trained}, expected {trained}");
        }
        Assert.Equal(Count(spec), network.Parameters.ParameterCount);
    }

    [Fact]
    public void Paper_model_has_42_4_million_parameters_and_the_pytorch_names()
    {
        var spec = Spec(1.0, 205);
        // the spec written out above is the PyTorch model's (and about the paper's 42.4 M)
        Assert.Equal(PaperParameterCount, Count(spec));
        Assert.InRange(PaperParameterCount, 42_300_000, 42_500_000);
        Assert.Equal(130, spec.Count);
        Assert.Equal(88, spec.Count(t => t.Trained));

        using var network = new ColorizationNetwork(new ColorizerConfig(1.0, 205, 1, 224), CpuDevice.Instance);
        AssertMatchesSpec(network, spec);
        Assert.Equal(PaperParameterCount, network.Parameters.ParameterCount);
        // MODEL.md: 25.7 M of them are in the first global FC layer (7 x 7 x 512 -> 1024)
        int fc1 = network.Parameters["global.fc1.weight"].Length + network.Parameters["global.fc1.bias"].Length;
        Assert.Equal(512 * 7 * 7 * 1024 + 1024, fc1);
        Assert.InRange(fc1, 25_650_000, 25_750_000);
    }

    [Fact]
    public void Fusion_kernel_3_changes_only_the_fusion_weight()
    {
        const double width = 0.25;
        using var k1 = new ColorizationNetwork(new ColorizerConfig(width, 205, 1, 224), CpuDevice.Instance);
        using var k3 = new ColorizationNetwork(new ColorizerConfig(width, 205, 3, 224), CpuDevice.Instance);
        AssertMatchesSpec(k3, Spec(width, 205, fusionKernel: 3));
        var different = k1.Parameters.Entries.Zip(k3.Parameters.Entries)
            .Where(p => p.First.Name != p.Second.Name || !p.First.Shape.SequenceEqual(p.Second.Shape))
            .Select(p => p.First.Name).ToList();
        Assert.Equal(["fusion.conv.weight"], different);
        Assert.Equal([64, 128, 3, 3], k3.Parameters["fusion.conv.weight"].Shape);
        Assert.Equal([64, 128, 1, 1], k1.Parameters["fusion.conv.weight"].Shape);
        Assert.Equal(64 * 128 * (9 - 1), k3.Parameters.ParameterCount - k1.Parameters.ParameterCount);
        // and at the paper's width, counted from the spec: 42,367,343 + 256 x 512 x 8 (PyTorch: 43,415,919)
        Assert.Equal(43_415_919, Count(Spec(1.0, 205, fusionKernel: 3)));
    }

    /// <summary>0.25 scales every count exactly; 0.3 rounds (19.2 -> 19, 76.8 -> 77); 5/128 hits halves (64 -> 2.5 -> 3) and the floor of 1 (32 -> 1.25 -> 1).</summary>
    [Theory]
    [InlineData(0.25, 10, 1)]
    [InlineData(0.3, 7, 3)]
    [InlineData(0.0390625, 3, 1)]
    public void Width_scales_hidden_channels_with_rounding(double width, int classes, int fusionKernel)
    {
        using var network = new ColorizationNetwork(new ColorizerConfig(width, classes, fusionKernel, 224), CpuDevice.Instance);
        AssertMatchesSpec(network, Spec(width, classes, fusionKernel));
        if (width == 0.25)
        {
            Assert.Equal([16, 1, 3, 3], network.Parameters["low.conv1.weight"].Shape);
            Assert.Equal([256, 128 * 7 * 7], network.Parameters["global.fc1.weight"].Shape);
            Assert.Equal([2, 8, 3, 3], network.Parameters["color.conv5.weight"].Shape);
            Assert.Equal([10, 64], network.Parameters["class.fc2.weight"].Shape);
        }
        if (width == 0.0390625)
            Assert.Equal([3, 1, 3, 3], network.Parameters["low.conv1.weight"].Shape); // 2.5 rounds away from zero
    }

    [Fact]
    public void Output_shapes_follow_the_local_input()
    {
        var device = CpuDevice.Instance;
        using var network = new ColorizationNetwork(new ColorizerConfig(0.0625, 7, 1, 64), device);
        using var local = TestData.Tensor(device, TestData.Uniform(1, 2 * 48 * 40, 0, 1), 2, 1, 48, 40);
        using var global = TestData.Tensor(device, TestData.Uniform(2, 2 * 64 * 64, 0, 1), 2, 1, 64, 64);
        var (ab, logits) = network.Forward(local, global, training: false);
        Assert.Equal([2, 2, 24, 20], ab.Shape.ToArray());
        Assert.Equal([2, 7], logits.Shape.ToArray());
        Assert.All(ab.ToArray(), v => Assert.InRange(v, 0f, 1f)); // sigmoid outputs

        // training size: one pass on the 64 x 64 local input feeds both paths
        using var square = TestData.Tensor(device, TestData.Uniform(3, 3 * 64 * 64, 0, 1), 3, 1, 64, 64);
        (ab, logits) = network.Forward(square, null, training: true);
        Assert.Equal([3, 2, 32, 32], ab.Shape.ToArray());
        Assert.Equal([3, 7], logits.Shape.ToArray());
    }

    [Theory]
    [InlineData(44, 40, "multiples of 8")]
    [InlineData(48, 36, "multiples of 8")]
    public void Local_input_not_a_multiple_of_8_is_rejected(int h, int w, string message)
    {
        var device = CpuDevice.Instance;
        using var network = new ColorizationNetwork(new ColorizerConfig(0.0625, 3, 1, 64), device);
        using var local = device.Zeros(1, 1, h, w);
        using var global = device.Zeros(1, 1, 64, 64);
        var e = Assert.Throws<ArgumentException>(() => network.Forward(local, global, training: false));
        Assert.Contains(message, e.Message);
        Assert.Contains($"[1, 1, {h}, {w}]", e.Message);
    }

    [Fact]
    public void Inputs_of_the_wrong_size_or_layout_are_rejected()
    {
        var device = CpuDevice.Instance;
        using var network = new ColorizationNetwork(new ColorizerConfig(0.0625, 3, 1, 64), device);
        using var local = device.Zeros(2, 1, 48, 40);
        using var twoChannels = device.Zeros(2, 2, 64, 64);
        using var wrongGlobal = device.Zeros(2, 1, 56, 56);
        using var otherBatch = device.Zeros(1, 1, 64, 64);
        // without a separate global input the local input must be the global path's size
        Assert.Contains("64x64", Assert.Throws<ArgumentException>(() => network.Forward(local, null, training: false)).Message);
        Assert.Contains("[N, 1, H, W]", Assert.Throws<ArgumentException>(() => network.Forward(twoChannels, null, training: false)).Message);
        Assert.Contains("global input must be [2, 1, 64, 64]", Assert.Throws<ArgumentException>(() => network.Forward(local, wrongGlobal, training: false)).Message);
        Assert.Contains("global input must be [2, 1, 64, 64]", Assert.Throws<ArgumentException>(() => network.Forward(local, otherBatch, training: false)).Message);
    }
}
