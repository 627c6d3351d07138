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
/// both. This file is the paper's table and the forward's wiring only: a training-mode forward
/// records what ran on a <see cref="Tape"/>, and <see cref="Backward"/> is the tape's. A variant
/// network derives from this class and declares other mid-level layers (<see cref="MidLevel"/>); it
/// needs no backward code either. Thread safety: a network holds per-call activation buffers; use it
/// from one thread at a time (one network per thread, or a lock, for concurrent callers).
/// </remarks>
public class ColorizationNetwork : IDisposable
{
    readonly UnaryModule[] _low, _mid, _global, _globalVector, _color, _class;
    readonly Dense _globalFc3;
    readonly Keep _localLow;
    readonly FusionInput _fusionInput;
    readonly Conv _fusion;
    readonly Tape _tape = new();
    Tensor? _ab, _logits;

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
        // With a separate global input the low-level layers run twice; the local result is copied first.
        _localLow = new Keep("low.local");
        // Mid-level features (the paper's two convolutions; a derived network may declare others).  -> 256 x H/8 x W/8
        _mid = MidLevel(p, config);
        // Global features, on the 224 x 224 path.  -> 512 x 7 x 7, flattened (C, H, W order)
        _global =
        [
            new Conv(p, "global.conv1", "global.bn1",  c(512),   c(512), 3, 2, BnRelu),
            new Conv(p, "global.conv2", "global.bn2",  c(512),   c(512), 3, 1, BnRelu),
            new Conv(p, "global.conv3", "global.bn3",  c(512),   c(512), 3, 2, BnRelu),
            new Conv(p, "global.conv4", "global.bn4",  c(512),   c(512), 3, 1, BnRelu),
        ];
        //                  weights        batch norm      in                   out
        _globalVector =
        [
            new Flatten("global.flatten"),
            new Dense(p, "global.fc1", "global.fcbn1", c(512) * map * map, c(1024), BnRelu),
            new Dense(p, "global.fc2", "global.fcbn2", c(1024),            c(512),  BnRelu),
        ];
        _globalFc3 = new Dense(p, "global.fc3", "global.fcbn3", c(512), c(256), BnRelu);
        // Fusion: [mid (256) ; global vector (256) tiled over H/8 x W/8] -> 256 x H/8 x W/8
        _fusionInput = new FusionInput("fusion.input");
        _fusion = new Conv(p, "fusion.conv", "fusion.bn", c(256) + c(256), c(256), config.FusionKernel, 1, BnRelu);
        // Colorization network, upsampling x2 after color.conv1 and color.conv3.  -> 2 x H/2 x W/2
        _color =
        [
            new Conv(p, "color.conv1", "color.bn1", c(256), c(128), 3, 1, BnRelu),
            new Upsample("color.up1"),
            new Conv(p, "color.conv2", "color.bn2", c(128), c(64),  3, 1, BnRelu),
            new Conv(p, "color.conv3", "color.bn3", c(64),  c(64),  3, 1, BnRelu),
            new Upsample("color.up2"),
            new Conv(p, "color.conv4", "color.bn4", c(64),  c(32),  3, 1, BnRelu),
            new Conv(p, "color.conv5", null,        c(32),  2,      3, 1, SigmoidOut),
        ];
        // Classification, from the global network's 512-vector.  -> C logits
        _class =
        [
            new Dense(p, "class.fc1", "class.bn1", c(512), c(256),         BnRelu),
            new Dense(p, "class.fc2", null,        c(256), config.Classes, None),
        ];

        Parameters.Build(seed, initialize);
    }

    /// <summary>
    /// The mid-level network: low-level maps [N, 512 w, H/8, W/8] -> [N, 256 w, H/8, W/8] (w the width;
    /// the fusion layer reads 256 w channels). The paper's two convolutions; a derived network overrides
    /// this to declare others. Called by the constructor before the derived class's own constructor runs,
    /// so an override must use only its arguments.
    /// </summary>
    protected virtual UnaryModule[] MidLevel(ParameterStore p, ColorizerConfig config)
    {
        int c(int channels) => config.Scaled(channels);
        return
        [
            new Conv(p, "mid.conv1",    "mid.bn1",     c(512),   c(512), 3, 1, BnRelu),
            new Conv(p, "mid.conv2",    "mid.bn2",     c(512),   c(256), 3, 1, BnRelu),
        ];
    }

    public ColorizerConfig Config { get; }
    public Device Device { get; }

    /// <summary>All weights, biases and batch-norm state, named as in PyTorch (see MODEL.md).</summary>
    public ParameterStore Parameters { get; }

    /// <summary>Every module of the network, in the table's order.</summary>
    public IEnumerable<Module> Modules =>
        _low.Append<Module>(_localLow).Concat(_mid).Concat(_global).Concat(_globalVector)
            .Concat([_globalFc3, _fusionInput, _fusion]).Concat(_color).Concat(_class);

    /// <summary>The modules the last training-mode forward ran, in order (its tape).</summary>
    public IEnumerable<Module> Recorded => _tape.Recorded;

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

        var t = _tape;
        t.Begin(training);
        Tensor lowLocal, lowGlobal;
        if (global is null)
        {
            lowLocal = lowGlobal = t.Run(_low, local);
        }
        else
        {
            // The low-level layers reuse their buffers, so keep the local result before the second pass.
            lowLocal = t.Run(_localLow, t.Run(_low, local));
            lowGlobal = t.Run(_low, global);
        }

        var mid = t.Run(_mid, lowLocal);
        var global512 = t.Run(_globalVector, t.Run(_global, lowGlobal));
        // Recorded before fc3, so backward adds fc3's gradient into the 512-vector's first, then the classifier's.
        var logits = t.Run(_class, global512);
        var global256 = t.Run(_globalFc3, global512);

        var fused = t.Run(_fusion, t.Run(_fusionInput, mid, global256));
        var ab = t.Run(_color, fused);
        (_ab, _logits) = (ab, logits);
        return (ab, logits);
    }

    /// <summary>
    /// Backward of the last training-mode <see cref="Forward"/> (one shared low-level pass), derived from
    /// its tape: accumulates every parameter gradient into <see cref="ParameterStore.Gradients"/>.
    /// dAb [N,2,H/2,W/2]; dLogits [N,C] or null when classification is off.
    /// </summary>
    public void Backward(Tensor dAb, Tensor? dLogits)
    {
        if (_ab is null || _logits is null) throw new InvalidOperationException("backward needs a training-mode forward first.");
        _tape.Backward([_ab, _logits], [dAb, dLogits]);
    }

    public void Dispose()
    {
        foreach (var m in Modules) m.Dispose();
        _tape.Dispose();
        Parameters.Dispose();
        GC.SuppressFinalize(this);
    }
}
