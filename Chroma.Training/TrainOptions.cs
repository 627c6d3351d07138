namespace Chroma.Training;

/// <summary>Everything `chroma train` can set. Defaults follow the paper where it applies (alpha, ADADELTA, 256/224).</summary>
public sealed record TrainOptions
{
    /// <summary>Training images: a folder (one sub-folder per class) or a list file.</summary>
    public required string Data { get; init; }
    /// <summary>Validation images; when null, <see cref="ValidationFraction"/> of the training images are held out.</summary>
    public string? Validation { get; init; }
    public double ValidationFraction { get; init; } = 0.05;
    /// <summary>Run folder: checkpoints, metrics.csv, curves.png, run.json, model.safetensors.</summary>
    public required string RunDirectory { get; init; }
    public bool Resume { get; init; }
    /// <summary>A model file (or checkpoint) whose tensors of matching name and shape start the network (fine-tuning); null: the paper's initialization.</summary>
    public string? Init { get; init; }

    public double Width { get; init; } = 0.25;
    public int FusionKernel { get; init; } = 1;
    public int BatchSize { get; init; } = 16;
    /// <summary>Total optimizer steps (batches); when null, <see cref="Epochs"/> decides.</summary>
    public long? Steps { get; init; }
    public double? Epochs { get; init; }
    public float Alpha { get; init; } = 1f / 300;
    /// <summary>
    /// ADADELTA's step multiplier (null: 1, ADADELTA's own step, as in the paper). The one setting
    /// besides the length that --resume may change: lowering it late in a run anneals the noisy
    /// plateau of a small batch (docs/MODEL_CARD.md gives the measured effect).
    /// </summary>
    public float? LearningRate { get; init; }
    public float Rho { get; init; } = Kernels.Adadelta.DefaultRho;
    public float Eps { get; init; } = Kernels.Adadelta.DefaultEps;
    public int Seed { get; init; }
    public int ResizeTo { get; init; } = 256;
    public int CropSize { get; init; } = 224;

    public int CheckpointEvery { get; init; } = 500;
    public int KeepCheckpoints { get; init; } = 3;
    public int ValidateEvery { get; init; } = 200;
    /// <summary>Steps between reads of the loss from the device (the progress line); the only host round trip of a step.</summary>
    public int LogEvery { get; init; } = 10;
    /// <summary>Validation uses at most this many images (the first of a fixed order).</summary>
    public int MaxValidationImages { get; init; } = 256;
    /// <summary>Images whose colour variation (see Augmentation.ColorVariation) is below this are skipped as near-gray.</summary>
    public double MinColorVariation { get; init; } = 3.0;
    /// <summary>Use the classification loss when the data has labels.</summary>
    public bool Classification { get; init; } = true;
}
