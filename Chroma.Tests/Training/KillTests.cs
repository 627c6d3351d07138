using System.Diagnostics;
using System.Runtime.InteropServices;
using Chroma.Model;
using Chroma.Training;
using Xunit;

namespace Chroma.Tests.Training;

/// <summary>
/// `chroma train` killed with SIGKILL at random moments (with --checkpoint-every 1 some kills land
/// while a checkpoint is being written): every checkpoint under its final name stays complete and
/// loadable, and the run resumes.
/// </summary>
public sealed class KillTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-kill-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// How to start the CLI built beside the tests: in a self-contained publish (scripts/test-cuda.sh
    /// puts the `chroma` executable beside the suite) that executable itself; otherwise `dotnet
    /// chroma.dll` (the project reference copies chroma.dll and its runtimeconfig here) on the dotnet
    /// host of the runtime running the tests. Null where neither exists.
    /// </summary>
    static (string Host, string? Dll)? ChromaCommand()
    {
        string apphost = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "chroma.exe" : "chroma");
        bool selfContained = File.Exists(Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "hostfxr.dll" : "libhostfxr.so"));
        if (selfContained && File.Exists(apphost)) return (apphost, null);
        string dll = Path.Combine(AppContext.BaseDirectory, "chroma.dll");
        if (!File.Exists(dll) || !File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json"))) return null;
        string exe = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        // DOTNET_HOST_PATH is set under `dotnet test`; otherwise the host sits three levels above
        // the shared runtime (ROOT/shared/Microsoft.NETCore.App/VERSION/).
        string?[] candidates =
        [
            Environment.GetEnvironmentVariable("DOTNET_HOST_PATH"),
            Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", exe)),
            Environment.ProcessPath is { } p && Path.GetFileName(p) == exe ? p : null,
        ];
        string? host = candidates.FirstOrDefault(c => c is not null && File.Exists(c));
        return host is null ? null : (host, dll);
    }

    sealed class Child : IDisposable
    {
        readonly Process _process;
        readonly System.Text.StringBuilder _output = new();

        public Child((string Host, string? Dll) chroma, IEnumerable<string> args)
        {
            var info = new ProcessStartInfo(chroma.Host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            if (chroma.Dll is not null) info.ArgumentList.Add(chroma.Dll);
            foreach (var a in args) info.ArgumentList.Add(a);
            info.Environment["NO_COLOR"] = "1";
            _process = new Process { StartInfo = info };
            _process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
            _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
            _process.Start();
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public bool HasExited => _process.HasExited;
        public int ExitCode => _process.ExitCode;
        public string Output { get { lock (_output) return _output.ToString(); } }

        /// <summary>SIGKILL (Process.Kill sends it on Unix): no handler, no finally block runs.</summary>
        public void Kill()
        {
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { /* already exited */ }
            Assert.True(_process.WaitForExit(10_000), "the killed trainer did not exit");
        }

        /// <summary>Waits for the exit, then (without a limit) for the redirected output to be read to its end.</summary>
        public bool WaitForExit(int ms)
        {
            if (!_process.WaitForExit(ms)) return false;
            _process.WaitForExit();
            return true;
        }

        public void Dispose()
        {
            if (!_process.HasExited) Kill();
            _process.Dispose();
        }
    }

    /// <summary>Step of the newest checkpoint, from its name (read while the trainer may be deleting old ones); -1 if none.</summary>
    static long LatestStep(string run) => Trainer.Checkpoints(run) is { Count: > 0 } c
        ? long.Parse(Path.GetFileNameWithoutExtension(c[^1])["checkpoint-".Length..], System.Globalization.CultureInfo.InvariantCulture) : -1;

    /// <summary>Every checkpoint under its final name loads (as a checkpoint and as a model); anything else is a known file or a temporary name.</summary>
    static void AssertRunFolderConsistent(string run, int round)
    {
        var known = new HashSet<string> { "run.json", "metrics.csv", "curves.png", "model.safetensors" };
        foreach (var file in Directory.GetFiles(run))
        {
            string name = Path.GetFileName(file);
            if (name.StartsWith("checkpoint-", StringComparison.Ordinal) && name.EndsWith(".safetensors", StringComparison.Ordinal))
            {
                var loaded = Checkpoint.Load(file);
                using var net = ModelFile.Load(loaded.File, file, CpuDevice.Instance);
                Assert.True(loaded.Step >= 1, $"round {round}: {name} has step {loaded.Step}");
                Assert.Equal($"checkpoint-{loaded.Step:D8}.safetensors", name);
            }
            else
                Assert.True(known.Contains(name) || Fixtures.TempFiles(run).Contains(file),
                    $"round {round}: unexpected file {name} in the run folder (half-written files may only exist under temporary names)");
        }
    }

    [Fact]
    public void Sigkill_at_random_moments_leaves_loadable_checkpoints_and_a_resumable_run()
    {
        var chroma = ChromaCommand();
        if (chroma is null) Assert.Skip("needs the chroma executable (self-contained publish) or chroma.dll and a dotnet host beside the tests");
        var clock = Stopwatch.StartNew();
        string data = Fixtures.ClassFolders(Path.Combine(_dir, "data"));
        string run = Path.Combine(_dir, "run");
        string[] common = ["train", "--data", data, "--out", run, "--width", "0.0625", "--batch", "4", "--resize", "72", "--crop", "64",
            "--checkpoint-every", "1", "--keep", "3", "--validate-every", "100000", "--val-fraction", "0.125", "--device", "cpu", "--seed", "3"];
        var rng = new Random(12345);
        const int Rounds = 5;
        TimeSpan deadline = TimeSpan.FromSeconds(55);

        var staleTemps = new List<string>();
        for (int round = 0; round < Rounds; round++)
        {
            long before = LatestStep(run);
            string[] args = round == 0 ? [.. common, "--steps", "100000"] : [.. common, "--resume"];
            using var child = new Child(chroma.Value, args);
            // Let it get past start-up and write a checkpoint of its own, then kill it a random moment later.
            while (LatestStep(run) <= before)
            {
                Assert.False(child.HasExited, $"round {round}: the trainer exited ({(child.HasExited ? child.ExitCode : 0)}) before writing a checkpoint:\n{child.Output}");
                Assert.True(clock.Elapsed < deadline, $"round {round}: no new checkpoint before the time limit:\n{child.Output}");
                Thread.Sleep(10);
            }
            Thread.Sleep(rng.Next(50, 500));
            Assert.False(child.HasExited, $"round {round}: the trainer exited on its own:\n{child.Output}");
            child.Kill();
            AssertRunFolderConsistent(run, round);
            Assert.True(LatestStep(run) > before, $"round {round}: no progress");
            // Temporary files of writes killed in an earlier round are removed when the run resumes
            // (their names are unique, so one still present is left over, not rewritten).
            var leftOver = staleTemps.Where(File.Exists).ToList();
            Assert.True(leftOver.Count == 0, $"round {round}: stale temporary files kept: {string.Join(", ", leftOver.Select(Path.GetFileName))}");
            staleTemps = Fixtures.TempFiles(run).ToList();
        }

        // The interrupted run still finishes: a short extension ends cleanly with a usable model.
        long reached = LatestStep(run);
        using (var final = new Child(chroma.Value, [.. common, "--resume", "--steps", (reached + 2).ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            Assert.True(final.WaitForExit((int)Math.Max(1000, (deadline + TimeSpan.FromSeconds(4) - clock.Elapsed).TotalMilliseconds)), "the resumed run did not finish in time");
            Assert.True(final.ExitCode == 0, $"resumed run failed ({final.ExitCode}):\n{final.Output}");
            Assert.Contains("resumed from", final.Output);
        }
        Assert.Equal(reached + 2, LatestStep(run));
        AssertRunFolderConsistent(run, Rounds);
        Assert.Empty(Fixtures.TempFiles(run));
        using (ModelFile.Load(Path.Combine(run, "model.safetensors"), CpuDevice.Instance)) { }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed.TotalSeconds:F1} s");
    }
}
