using Chroma.Training.Data;
using Xunit;

namespace Chroma.Tests.Training;

public sealed class BatchLoaderTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-loader-").FullName;
    readonly Dataset _data;
    static readonly Augmentation Augment = new(72, 64);

    public BatchLoaderTests() => _data = Dataset.Open(Fixtures.ClassFolders(Path.Combine(_dir, "data"), perClass: 3));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static List<Batch> Take(BatchLoader loader, int count) => Enumerable.Range(0, count).Select(_ => loader.Next()).ToList();

    static void AssertSame(Batch expected, Batch actual)
    {
        Assert.Equal(expected.Index, actual.Index);
        Assert.Equal(expected.Labels, actual.Labels);
        Assert.Equal(expected.Inputs, actual.Inputs);
        Assert.Equal(expected.Targets, actual.Targets);
        Assert.Equal(expected.Rgb, actual.Rgb);
    }

    [Fact]
    public void Same_seed_gives_the_same_batches_whatever_the_prefetch()
    {
        // 9 images, batches of 4: batch 2 crosses into the second epoch (a new permutation).
        using var one = new BatchLoader(_data, Augment, 4, seed: 3, prefetch: 1);
        using var many = new BatchLoader(_data, Augment, 4, seed: 3, prefetch: 5);
        var a = Take(one, 5);
        var b = Take(many, 5);
        for (int i = 0; i < a.Count; i++) AssertSame(a[i], b[i]);
        Assert.Equal([0L, 1, 2, 3, 4], a.Select(x => x.Index));
        Assert.All(a, x => Assert.Equal(4 * 64 * 64, x.Inputs.Length));
        Assert.All(a, x => Assert.Equal(4 * 2 * 32 * 32, x.Targets.Length));

        // Another seed gives another stream (so the equality above is not vacuous).
        using var other = new BatchLoader(_data, Augment, 4, seed: 4, prefetch: 2);
        Assert.NotEqual(a[0].Inputs, other.Next().Inputs);
    }

    [Fact]
    public void Leaving_out_the_rgb_changes_nothing_else()
    {
        using var with = new BatchLoader(_data, Augment, 4, seed: 5);
        using var without = new BatchLoader(_data, Augment, 4, seed: 5, keepRgb: false);
        for (int k = 0; k < 3; k++)
        {
            var a = with.Next();
            var b = without.Next();
            Assert.NotNull(a.Rgb);
            Assert.Null(b.Rgb);
            AssertSame(a, b with { Rgb = a.Rgb });
        }
    }

    [Fact]
    public void Start_batch_k_reproduces_batch_k_of_a_fresh_stream()
    {
        using var fresh = new BatchLoader(_data, Augment, 4, seed: 11);
        var stream = Take(fresh, 7);
        foreach (int k in new[] { 1, 2, 6 })
        {
            using var resumed = new BatchLoader(_data, Augment, 4, seed: 11, startBatch: k);
            AssertSame(stream[k], resumed.Next());
            if (k + 1 < stream.Count) AssertSame(stream[k + 1], resumed.Next());
        }
    }

    [Fact]
    public void Each_epoch_is_a_permutation_of_the_images()
    {
        // Batches of 3 over 9 images: batches 0-2 are epoch 0, 3-5 epoch 1; labels are 3 of each class per epoch.
        using var loader = new BatchLoader(_data, new Augmentation(64, 64, Random: false), 3, seed: 2);
        var batches = Take(loader, 6);
        var epoch0 = batches.Take(3).SelectMany(b => b.Labels!).Order().ToArray();
        var epoch1 = batches.Skip(3).SelectMany(b => b.Labels!).Order().ToArray();
        Assert.Equal([0, 0, 0, 1, 1, 1, 2, 2, 2], epoch0);
        Assert.Equal(epoch0, epoch1);
        // Without random crops an image gives the same input each epoch: the two epochs hold the same 9 inputs.
        static HashSet<string> Inputs(IEnumerable<Batch> bs) => bs.SelectMany(b => Enumerable.Range(0, b.Size)
            .Select(i => Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.Inputs.AsSpan(i * 64 * 64, 64 * 64)))))).ToHashSet();
        Assert.Equal(9, Inputs(batches.Take(3)).Count);
        Assert.Equal(Inputs(batches.Take(3)), Inputs(batches.Skip(3)));
    }

    [Fact]
    public void Unreadable_image_is_replaced_and_reported()
    {
        string bad = Path.Combine(_dir, "bad.png");
        File.WriteAllBytes(bad, []);
        var samples = _data.Samples.Take(3).Append(new Sample(bad, 1)).ToList();
        using var loader = new BatchLoader(_data.With(samples), new Augmentation(64, 64, Random: false), 4, seed: 0, shuffle: false);
        var batch = loader.Next();
        Assert.Equal(samples[0].Label, batch.Labels![3]); // position 3 falls back to position 4 = image 0 of the next epoch
        Assert.Equal(batch.Inputs.AsSpan(0, 64 * 64).ToArray(), batch.Inputs.AsSpan(3 * 64 * 64, 64 * 64).ToArray());
        lock (loader.Warnings) Assert.Contains(loader.Warnings, w => w.Contains(bad, StringComparison.Ordinal));
    }
}
