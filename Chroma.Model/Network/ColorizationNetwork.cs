using Chroma.Kernels;
using Chroma.Model.Layers;
using static Chroma.Model.Layers.Activation;

namespace Chroma.Model;

/// <summary>
/// The network of Iizuka, Simo-Serra and Ishikawa, "Let there be Color!" (SIGGRAPH 2016), at any
/// width. A grayscale image (L*/100) goes in; chrominance (sigmoid outputs, a*,b* = 100 (2s - 1))
/// at half resolution and scene-class logits come out.
/// </summary>
/// <remarks>
/// Two paths share one low-level network: the local path runs on the full image (H, W multiples of
/// 8), the global path on a <see cref="ColorizerConfig.InputSize"/>-square version of it (or of
/// another image: the paper's global-prior transfer). At training size one low-level pass feeds
/// both. Thread safety: a network holds per-call activation buffers; use it from one thread at a
/// time (one network per thread, or a lock, for concurrent callers).
/// </remarks>
public sealed class ColorizationNetwork : IDisposable
{
    readonly Conv[] _low, _mid, _global;
    readonly Dense _globalFc1, _globalFc2, _globalFc3;
    readonly Conv _fusion;
    readonly Conv _color1, _color2, _color3, _color4, _color5;
    readonly Dense _class1, _class2;
    Tensor? _localLow, _fusedInput, _up1, _up2;
    Tensor? _dLow, _dGlobalMap, _dGlobal512, _dGlobal256, _dMid, _dColor2In, _dColor4In;
    bool _sharedLowPass;

    /// <param name="initialize">False leaves every value zero, for a network whose weights are loaded next.</param>
    public ColorizationNetwork(ColorizerConfig config, Device device, int seed = 0, bool initialize = true)
    {
        config.Validate();
        Config = config;
        Device = device;
        Parameters = new ParameterStore(device);
        var p = Parameters;
        int c(int channels) => config.Scaled(channels);
        int map = config.GlobalMapSize;

        //                  weights        batch norm     in        out     k  stride
        // Low-level features: shared by the local and the global path.  -> 512 x H/8 x W/8
        _low =
        [
            new Conv(p, "low.conv1",    "low.bn1",     1,        c(64),  3, 2, BnRelu),
            new Conv(p, "low.conv2",    "low.bn2",     c(64),    c(128), 3, 1, BnRelu),
            new Conv(p, "low.conv3",    "low.bn3",     c(128),   c(128), 3, 2, BnRelu),
            new Conv(p, "low.conv4",    "low.bn4",     c(128),   c(256), 3, 1, BnRelu),
            new Conv(p, "low.conv5",    "low.bn5",     c(256),   c(256), 3, 2, BnRelu),
            new Conv(p, "low.conv6",    "low.bn6",     c(256),   c(512), 3, 1, BnRelu),
        ];
        // Mid-level features.  -> 256 x H/8 x W/8
        _mid =
        [
            new Conv(p, "mid.conv1",    "mid.bn1",     c(512),   c(512), 3, 1, BnRelu),
            new Conv(p, "mid.conv2",    "mid.bn2",     c(512),   c(256), 3, 1, BnRelu),
        ];
        // Global features, on the 224 x 224 path.  -> 512 x 7 x 7, flattened (C, H, W order)
        _global =
        [
            new Conv(p, "global.conv1", "global.bn1",  c(512),   c(512), 3, 2, BnRelu),
            new Conv(p, "global.conv2", "global.bn2",  c(512),   c(512), 3, 1, BnRelu),
            new Conv(p, "global.conv3", "global.bn3",  c(512),   c(512), 3, 2, BnRelu),
            new Conv(p, "global.conv4", "global.bn4",  c(512),   c(512), 3, 1, BnRelu),
        ];
        //                  weights        batch norm      in                   out
        _globalFc1 = new Dense(p, "global.fc1", "global.fcbn1", c(512) * map * map, c(1024), BnRelu);
        _globalFc2 = new Dense(p, "global.fc2", "global.fcbn2", c(1024),            c(512),  BnRelu);
        _globalFc3 = new Dense(p, "global.fc3", "global.fcbn3", c(512),             c(256),  BnRelu);
        // Fusion: [mid (256) ; global vector (256) tiled over H/8 x W/8] -> 256 x H/8 x W/8
        _fusion = new Conv(p, "fusion.conv", "fusion.bn", c(256) + c(256), c(256), config.FusionKernel, 1, BnRelu);
        // Colorization network, upsampling x2 after color.conv1 and color.conv3.  -> 2 x H/2 x W/2
        _color1 = new Conv(p, "color.conv1", "color.bn1", c(256), c(128), 3, 1, BnRelu);
        _color2 = new Conv(p, "color.conv2", "color.bn2", c(128), c(64),  3, 1, BnRelu);
        _color3 = new Conv(p, "color.conv3", "color.bn3", c(64),  c(64),  3, 1, BnRelu);
        _color4 = new Conv(p, "color.conv4", "color.bn4", c(64),  c(32),  3, 1, BnRelu);
        _color5 = new Conv(p, "color.conv5", null,        c(32),  2,      3, 1, SigmoidOut);
        // Classification, from the global network's 512-vector.  -> C logits
        _class1 = new Dense(p, "class.fc1", "class.bn1", c(512), c(256),         BnRelu);
        _class2 = new Dense(p, "class.fc2", null,        c(256), config.Classes, None);

        Parameters.Build(seed, initialize);
    }

    public ColorizerConfig Config { get; }
    public Device Device { get; }

    /// <summary>All weights, biases and batch-norm state, named as in PyTorch (see MODEL.md).</summary>
    public ParameterStore Parameters { get; }

    /// <summary>
    /// local [N,1,H,W] (L*/100, H and W multiples of 8); global [N,1,S,S] with S = InputSize, or null when
    /// local is itself S x S (training: one low-level pass feeds both paths).
    /// Returns ab [N,2,H/2,W/2] (sigmoid outputs) and logits [N,C]; both stay valid until the next call.
    /// </summary>
    public (Tensor Ab, Tensor Logits) Forward(Tensor local, Tensor? global, bool training)
    {
        int s = Config.InputSize;
        if (local.Rank != 4 || local.Dim(1) != 1 || local.Dim(2) % 8 != 0 || local.Dim(3) % 8 != 0 || local.Dim(2) == 0 || local.Dim(3) == 0)
            throw new ArgumentException($"local input must be [N, 1, H, W] with H and W positive multiples of 8, got {local.ShapeString}.");
        if (global is null && (local.Dim(2) != s || local.Dim(3) != s))
            throw new ArgumentException($"without a separate global input the local input must be {s}x{s}, got {local.ShapeString}.");
        if (global is not null && (global.Rank != 4 || global.Dim(0) != local.Dim(0) || global.Dim(1) != 1 || global.Dim(2) != s || global.Dim(3) != s))
            throw new ArgumentException($"global input must be [{local.Dim(0)}, 1, {s}, {s}], got {global.ShapeString}.");
        if (local.Device != Device || (global is not null && global.Device != Device))
            throw new ArgumentException($"inputs must be on the network's device ({Device.Name}).");

        int n = local.Dim(0);
        Tensor lowLocal, lowGlobal;
        _sharedLowPass = global is null;
        if (_sharedLowPass)
        {
            lowLocal = lowGlobal = Sequential(_low, local, training);
        }
        else
        {
            // The low-level layers reuse their buffers, so keep the local result before the second pass.
            var first = Sequential(_low, local, training);
            lowLocal = Ensure(ref _localLow, first.Shape.ToArray());
            Device.Copy(first, lowLocal);
            lowGlobal = Sequential(_low, global!, training);
        }

        var mid = Sequential(_mid, lowLocal, training);

        var globalMap = Sequential(_global, lowGlobal, training);
        var flat = globalMap.Reshape(n, globalMap.Length / n);
        var global512 = _globalFc2.Forward(_globalFc1.Forward(flat, training), training);
        var global256 = _globalFc3.Forward(global512, training);
        var logits = _class2.Forward(_class1.Forward(global512, training), training);

        var fusedInput = Ensure(ref _fusedInput, n, mid.Dim(1) + global256.Dim(1), mid.Dim(2), mid.Dim(3));
        Fusion.Forward(mid, global256, fusedInput);
        var fused = _fusion.Forward(fusedInput, training);

        var c1 = _color1.Forward(fused, training);
        var up1 = Ensure(ref _up1, n, c1.Dim(1), c1.Dim(2) * 2, c1.Dim(3) * 2);
        UpsampleNearest.Forward(c1, up1);
        var c3 = _color3.Forward(_color2.Forward(up1, training), training);
        var up2 = Ensure(ref _up2, n, c3.Dim(1), c3.Dim(2) * 2, c3.Dim(3) * 2);
        UpsampleNearest.Forward(c3, up2);
        var ab = _color5.Forward(_color4.Forward(up2, training), training);
        return (ab, logits);
    }

    /// <summary>
    /// Backward of the last training-mode <see cref="Forward"/> (one shared low-level pass):
    /// accumulates every parameter gradient into <see cref="ParameterStore.Gradients"/>.
    /// dAb [N,2,H/2,W/2]; dLogits [N,C] or null when classification is off.
    /// </summary>
    public void Backward(Tensor dAb, Tensor? dLogits)
    {
        if (!_sharedLowPass) throw new InvalidOperationException("backward needs a training forward with one low-level pass (no separate global input).");

        // Colorization network, output to fusion.
        var dUp2 = _color4.Backward(_color5.Backward(dAb));
        var dC3 = EnsureZeroed(ref _dColor4In, _color3.OutChannels, dUp2);
        UpsampleNearest.Backward(dUp2, dC3);
        var dUp1 = _color2.Backward(_color3.Backward(dC3));
        var dC1 = EnsureZeroed(ref _dColor2In, _color1.OutChannels, dUp1);
        UpsampleNearest.Backward(dUp1, dC1);
        var dFused = _color1.Backward(dC1);

        // Fusion splits the gradient between the mid-level maps and the global vector.
        var dFusedInput = _fusion.Backward(dFused);
        var fusedShape = dFusedInput.Shape;
        int n = fusedShape[0];
        var dMid = EnsureZeroedShape(ref _dMid, n, _mid[^1].OutChannels, fusedShape[2], fusedShape[3]);
        var dGlobal256 = EnsureZeroedShape(ref _dGlobal256, n, _globalFc3.OutFeatures);
        Fusion.Backward(dFusedInput, dMid, dGlobal256);

        // Global vector: fc3 and the classifier both read the 512-vector.
        var dGlobal512 = EnsureZeroedShape(ref _dGlobal512, n, _globalFc2.OutFeatures);
        _globalFc3.Backward(dGlobal256, dGlobal512);
        if (dLogits is not null) _class1.Backward(_class2.Backward(dLogits), dGlobal512);
        var dFc1Out = _globalFc2.Backward(dGlobal512);
        var last = _global[^1];
        var dGlobalMap = EnsureZeroedShape(ref _dGlobalMap, n, last.OutChannels, Config.GlobalMapSize, Config.GlobalMapSize);
        _globalFc1.Backward(dFc1Out, dGlobalMap.Reshape(n, dGlobalMap.Length / n));

        // Both paths meet at the low-level output.
        var lowOut = _low[^1];
        int h8 = fusedShape[2], w8 = fusedShape[3];
        var dLow = EnsureZeroedShape(ref _dLow, n, lowOut.OutChannels, h8, w8);
        SequentialBackward(_global, dGlobalMap, dLow);
        SequentialBackward(_mid, dMid, dLow);
        SequentialBackward(_low, dLow, null);
    }

    static Tensor Sequential(Conv[] layers, Tensor x, bool training)
    {
        foreach (var layer in layers) x = layer.Forward(x, training);
        return x;
    }

    /// <summary>Backward through a chain; the first layer accumulates into <paramref name="dx"/> (null: not needed).</summary>
    static void SequentialBackward(Conv[] layers, Tensor dy, Tensor? dx)
    {
        for (int i = layers.Length - 1; i > 0; i--) dy = layers[i].Backward(dy);
        layers[0].Backward(dy, dx);
    }

    Tensor Ensure(ref Tensor? t, params int[] shape)
    {
        if (t is not null && t.Shape.SequenceEqual(shape)) return t;
        t?.Dispose();
        t = Device.Zeros(shape);
        return t;
    }

    Tensor EnsureZeroedShape(ref Tensor? t, params int[] shape)
    {
        bool reused = t is not null && t.Shape.SequenceEqual(shape);
        var r = Ensure(ref t, shape);
        if (reused) r.Clear();
        return r;
    }

    // Gradient of an upsampling input: [N, C, H/2, W/2] for an upsampled gradient [N, C, H, W].
    Tensor EnsureZeroed(ref Tensor? t, int channels, Tensor upsampledGrad) =>
        EnsureZeroedShape(ref t, upsampledGrad.Dim(0), channels, upsampledGrad.Dim(2) / 2, upsampledGrad.Dim(3) / 2);

    /// <summary>Every layer, for disposal.</summary>
    IEnumerable<Layer> Layers =>
        _low.Concat(_mid).Concat(_global).Cast<Layer>()
            .Concat([_globalFc1, _globalFc2, _globalFc3, _fusion, _color1, _color2, _color3, _color4, _color5, _class1, _class2]);

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        foreach (var t in new[] { _localLow, _fusedInput, _up1, _up2, _dLow, _dGlobalMap, _dGlobal512, _dGlobal256, _dMid, _dColor2In, _dColor4In })
            t?.Dispose();
        Parameters.Dispose();
    }
}
