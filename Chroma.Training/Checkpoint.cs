using System.Globalization;
using Chroma.Model;

namespace Chroma.Training;

/// <summary>
/// A training checkpoint: the model's tensors (names as in a model file, so any checkpoint is
/// also a usable model), the optimizer's two ADADELTA accumulators as <c>optim.square_avg</c> and
/// <c>optim.acc_delta</c> (flat, in parameter-buffer order), and the run's state in metadata.
/// Files are written atomically (temporary file, then rename).
/// </summary>
public static class Checkpoint
{
    public const string SquareAverage = "optim.square_avg", AccumulatedDelta = "optim.acc_delta";

    /// <summary>Writes a checkpoint of <paramref name="network"/> and optimizer buffers.</summary>
    public static void Save(string path, ColorizationNetwork network, Tensor squareAverage, Tensor accumulatedDelta,
        IReadOnlyDictionary<string, string> metadata) =>
        ModelFile.Save(network, path, SafeTensorDType.F32, metadata, overwrite: true,
        [
            new SafeTensor(SquareAverage, [squareAverage.Length], squareAverage.ToArray()),
            new SafeTensor(AccumulatedDelta, [accumulatedDelta.Length], accumulatedDelta.ToArray()),
        ]);

    /// <summary>A checkpoint read back: the file (tensors and metadata) and its step.</summary>
    public sealed record Loaded(SafeTensorsFile File, string Path, long Step)
    {
        public string Meta(string key) => File.Metadata.TryGetValue(key, out var v) ? v
            : throw new ModelFileException(Path, $"checkpoint metadata has no '{key}'");
    }

    public static Loaded Load(string path)
    {
        SafeTensorsFile file;
        try { file = SafeTensorsFile.Read(path); }
        catch (SafeTensorsException e) { throw new ModelFileException(path, e.Problem, e); } // e.Message repeats the path
        if (!file.Metadata.TryGetValue("step", out var s) || !long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long step))
            throw new ModelFileException(path, "not a training checkpoint (no 'step' in metadata)");
        return new Loaded(file, path, step);
    }

    /// <summary>Restores weights, running statistics and the optimizer buffers.</summary>
    public static void Restore(Loaded checkpoint, ColorizationNetwork network, Tensor squareAverage, Tensor accumulatedDelta)
    {
        ModelFile.CopyInto(network, checkpoint.File, checkpoint.Path, ignorePrefix: "optim.");
        foreach (var (name, target) in new[] { (SquareAverage, squareAverage), (AccumulatedDelta, accumulatedDelta) })
        {
            if (!checkpoint.File.TryGet(name, out var t)) throw new ModelFileException(checkpoint.Path, $"checkpoint has no '{name}'");
            if (t.Data.Length != target.Length) throw new ModelFileException(checkpoint.Path, $"'{name}' has {t.Data.Length} values, the model needs {target.Length}");
            target.CopyFrom(t.Data);
        }
        network.Parameters.MarkChanged();   // CopyInto marks it too; restoring is a write either way
    }
}
