using Chroma.Model;
using Chroma.Training;
using Chroma.Training.Data;
using Xunit;

namespace Chroma.Tests.Training;

public sealed class DatasetTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-dataset-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Folder_per_class_includes_nested_folders_with_the_top_folder_as_label()
    {
        string root = Fixtures.ClassFolders(Path.Combine(_dir, "data"), perClass: 4);
        File.WriteAllText(Path.Combine(root, "forest", "notes.txt"), "not an image"); // ignored by extension
        Directory.CreateDirectory(Path.Combine(root, ".cache"));                       // hidden: not a class

        var data = Dataset.Open(root);
        Assert.Equal(Fixtures.ClassNames, data.ClassNames);
        Assert.True(data.HasLabels);
        Assert.Equal(12, data.Count);
        Assert.Contains(data.Samples, s => s.Path == Path.Combine(root, "sunset", "nested", "img03.png") && s.Label == 2);
        foreach (var s in data.Samples)
        {
            string top = Path.GetRelativePath(root, s.Path).Split(Path.DirectorySeparatorChar)[0];
            Assert.Equal(top, data.ClassNames[s.Label]);
        }
        // A fixed class order (a model's) relabels by name.
        var fixedOrder = Dataset.Open(root, [Fixtures.ClassC, Fixtures.ClassA, Fixtures.ClassB]);
        Assert.Equal(0, fixedOrder.Samples.Single(s => s.Path.EndsWith(Path.Combine("sunset", "img00.png"), StringComparison.Ordinal)).Label);
    }

    [Fact]
    public void Images_directly_under_the_root_make_an_unlabelled_dataset()
    {
        string root = Path.Combine(_dir, "flat");
        for (int i = 0; i < 3; i++) Fixtures.SaveColourful(Path.Combine(root, $"p{i}.jpg"), 33, 21, i);
        var data = Dataset.Open(root);
        Assert.Equal(3, data.Count);
        Assert.False(data.HasLabels);
        Assert.Empty(data.ClassNames);
        Assert.All(data.Samples, s => Assert.Equal(-1, s.Label));
    }

    [Fact]
    public void List_file_reads_paths_labels_and_classes_txt()
    {
        string root = Path.Combine(_dir, "places");
        Fixtures.SaveColourful(Path.Combine(root, "a", "b", "x.png"), 20, 18, 1);
        Fixtures.SaveColourful(Path.Combine(root, "with space", "y 1.png"), 20, 18, 2);
        Fixtures.SaveColourful(Path.Combine(root, "z.png"), 20, 18, 3);
        File.WriteAllLines(Path.Combine(root, "train.txt"), ["# Places-style list", "/a/b/x.png 2", "", "with space/y 1.png 0", "z.png\t1"]);
        File.WriteAllLines(Path.Combine(root, "classes.txt"), ["airfield", "bakery", "canyon", ""]);

        var data = Dataset.Open(Path.Combine(root, "train.txt"));
        Assert.Equal(["airfield", "bakery", "canyon"], data.ClassNames);
        Assert.Equal(
            [(Path.Combine(root, "a/b/x.png"), 2), (Path.Combine(root, "with space/y 1.png"), 0), (Path.Combine(root, "z.png"), 1)],
            data.Samples.Select(s => (s.Path, s.Label)));
        Assert.All(data.Samples, s => Assert.True(File.Exists(s.Path), s.Path));

        // Without classes.txt the labels name themselves.
        File.Delete(Path.Combine(root, "classes.txt"));
        Assert.Equal(["0", "1", "2"], Dataset.Open(Path.Combine(root, "train.txt")).ClassNames);
    }

    [Fact]
    public void List_file_errors_name_the_file_and_line()
    {
        string list = Path.Combine(_dir, "bad.txt");
        File.WriteAllLines(list, ["x.png 0", "y.png zero"]);
        var e = Assert.Throws<InvalidDataException>(() => Dataset.Open(list));
        Assert.Contains("bad.txt:2", e.Message);

        File.WriteAllLines(list, ["x.png 0", "y.png 3"]);
        File.WriteAllLines(Path.Combine(_dir, "classes.txt"), ["one", "two"]);
        Assert.Contains("label 3", Assert.Throws<InvalidDataException>(() => Dataset.Open(list)).Message);

        Assert.Throws<DirectoryNotFoundException>(() => Dataset.Open(Path.Combine(_dir, "missing")));
    }

    [Fact]
    public void Split_is_deterministic_disjoint_and_complete()
    {
        var samples = Enumerable.Range(0, 40).Select(i => new Sample($"/img{i:D2}.png", i % 4)).ToList();
        var data = new Dataset(samples, ["a", "b", "c", "d"], "synthetic");
        var (train1, val1) = data.Split(0.25, seed: 5);
        var (train2, val2) = data.Split(0.25, seed: 5);
        Assert.Equal(val1.Samples, val2.Samples);
        Assert.Equal(train1.Samples, train2.Samples);
        Assert.Equal(10, val1.Count);
        Assert.Equal(30, train1.Count);
        Assert.Empty(train1.Samples.Intersect(val1.Samples));
        Assert.Equal(samples.ToHashSet(), train1.Samples.Concat(val1.Samples).ToHashSet());
        Assert.Equal(data.ClassNames, val1.ClassNames);
        Assert.NotEqual(val1.Samples, data.Split(0.25, seed: 6).Validation.Samples);
        Assert.Throws<ArgumentException>(() => data.Split(1.0, 0));
    }

    [Fact]
    public void Trainer_skips_unreadable_and_near_gray_images_and_says_which()
    {
        string root = Fixtures.ClassFolders(Path.Combine(_dir, "data"), perClass: 4);
        string truncated = Fixtures.SaveTruncatedJpeg(Path.Combine(root, "beach", "cut.jpg"), 9);
        string text = Path.Combine(root, "forest", "readme.png");
        File.WriteAllText(text, "this is not a PNG");
        string gray1 = Fixtures.SaveGrayJpeg(Path.Combine(root, "sunset", "old1.jpg"), 70, 66, 1);
        string gray2 = Fixtures.SaveGrayJpeg(Path.Combine(root, "sunset", "nested", "old2.jpg"), 70, 66, 2);
        Assert.True(Augmentation.ColorVariation(ImageFile.Load(gray1)) < 0.5); // decodable, and gray

        var messages = new List<string>();
        var options = new TrainOptions
        {
            Data = root, RunDirectory = Path.Combine(_dir, "run"), Width = 0.0625, BatchSize = 2, ResizeTo = 64, CropSize = 64,
            Steps = 1, ValidationFraction = 0.2, Seed = 1,
        };
        using var trainer = new Trainer(options, CpuDevice.Instance, messages.Add);
        var used = trainer.TrainData.Samples.Concat(trainer.ValidationData.Samples).Select(s => s.Path).ToHashSet();
        Assert.Equal(12, used.Count);
        Assert.DoesNotContain(truncated, used);
        Assert.DoesNotContain(text, used);
        Assert.DoesNotContain(gray1, used);
        Assert.DoesNotContain(gray2, used);
        Assert.Contains(messages, m => m.Contains("warning", StringComparison.Ordinal) && m.Contains(truncated, StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("warning", StringComparison.Ordinal) && m.Contains(text, StringComparison.Ordinal));
        // The counts per part add up to the two gray and two unreadable files.
        int Count(string kind) => messages.Select(m => System.Text.RegularExpressions.Regex.Match(m, $@"(\d+) {kind} skipped"))
            .Where(m => m.Success).Sum(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(2, Count("near-gray"));
        Assert.Equal(2, Count("unreadable"));
    }
}
