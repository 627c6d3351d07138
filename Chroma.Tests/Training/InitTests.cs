using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Training;

/// <summary>`chroma train --init MODEL`: a new run starts from a model's matching tensors and reports what it took.</summary>
public sealed class InitTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-init-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    TrainOptions Options(string data, string run, string init) => new()
    {
        Data = data, RunDirectory = Path.Combine(_dir, run), Width = 0.0625, BatchSize = 2, ResizeTo = 72, CropSize = 64,
        ValidationFraction = 0.25, Seed = 9, Steps = 1, Init = init,
    };

    [Fact]
    public void Matching_tensors_are_taken_the_rest_initialized_and_reported()
    {
        // The model has 3 classes; this data has 2, so the last classification layer differs in shape.
        string model = Fixtures.SaveTinyModel(Path.Combine(_dir, "model.safetensors"), seed: 4);
        string data = Fixtures.ClassFolders(Path.Combine(_dir, "data"), perClass: 4);
        Directory.Delete(Path.Combine(data, Fixtures.ClassC), recursive: true);
        var messages = new List<string>();
        using var trainer = new Trainer(Options(data, "run", model), CpuDevice.Instance, messages.Add);
        using var source = ModelFile.Load(model, CpuDevice.Instance);
        using var fresh = new ColorizationNetwork(trainer.Network.Config, CpuDevice.Instance, seed: 9);

        var store = trainer.Network.Parameters;
        var differing = new List<string>();
        foreach (var e in store.Entries)
        {
            var actual = e.Value.ToArray();
            if (e.Name.StartsWith("class.fc2.", StringComparison.Ordinal))
            {
                // Not taken: initialized as a run without --init would be (same seed).
                Assert.Equal(fresh.Parameters[e.Name].Value.ToArray(), actual);
                differing.Add(e.Name);
            }
            else Assert.Equal(source.Parameters[e.Name].Value.ToArray(), actual);
        }
        Assert.Equal(["class.fc2.bias", "class.fc2.weight"], differing.Order());

        int total = store.Entries.Count;
        Assert.Contains(messages, m => m.StartsWith($"init from {model}: took {total - 2} of this network's {total} tensors", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("not taken, other shape: class.fc2.weight: [3, ", StringComparison.Ordinal) && m.EndsWith("] here", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("not taken, other shape: class.fc2.bias: [3] in the file, [2] here", StringComparison.Ordinal));

        // The run trains from there.
        trainer.Run(CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(trainer.Options.RunDirectory, "model.safetensors")));
    }

    [Fact]
    public void A_bad_init_file_is_a_clear_error_and_leaves_no_run_behind()
    {
        string data = Fixtures.ClassFolders(Path.Combine(_dir, "data"), perClass: 4);
        string missing = Path.Combine(_dir, "nope.safetensors");
        var e = Assert.Throws<ModelFileException>(() => new Trainer(Options(data, "run", missing), CpuDevice.Instance));
        Assert.Contains(missing, e.Message);
        Assert.False(File.Exists(Path.Combine(_dir, "run", "run.json")));

        string garbage = Path.Combine(_dir, "garbage.safetensors");
        File.WriteAllText(garbage, "not a model");
        e = Assert.Throws<ModelFileException>(() => new Trainer(Options(data, "run", garbage), CpuDevice.Instance));
        Assert.Contains(garbage, e.Message);
        // A retry with a good file works in the same folder.
        string model = Fixtures.SaveTinyModel(Path.Combine(_dir, "model.safetensors"));
        using var trainer = new Trainer(Options(data, "run", model), CpuDevice.Instance);
        Assert.Equal(0, trainer.Step);
    }
}
