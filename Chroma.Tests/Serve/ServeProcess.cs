using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Chroma.Tests.Serve;

/// <summary>
/// `chroma serve` as a child process (the chroma.dll built beside the tests, run by the same dotnet
/// host), for what only a real process shows: the URL on stdout, Ctrl-C (SIGINT) and the exit code, the
/// server's own memory.
/// </summary>
sealed partial class ServeProcess : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _stdout = new(), _stderr = new();
    readonly TaskCompletionSource<string> _url = new(TaskCreationOptions.RunContinuationsAsynchronously);

    ServeProcess(Process process) => _process = process;

    public Uri Url { get; private set; } = null!;
    public int Id => _process.Id;

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Starts `chroma serve ARGS` and waits (up to 60 s) for the URL it prints when listening.</summary>
    public static async Task<ServeProcess> Start(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "chroma.dll");
        var info = new ProcessStartInfo(DotnetHost(), ["exec", dll, "serve", .. args])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        var serve = new ServeProcess(Process.Start(info)!);
        serve._process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (serve._stdout) serve._stdout.AppendLine(e.Data);
            if (e.Data.StartsWith("http://", StringComparison.Ordinal)) serve._url.TrySetResult(e.Data);
        };
        serve._process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (serve._stderr) serve._stderr.AppendLine(e.Data); };
        serve._process.BeginOutputReadLine();
        serve._process.BeginErrorReadLine();
        var exited = serve._process.WaitForExitAsync();
        var first = await Task.WhenAny(serve._url.Task, exited, Task.Delay(TimeSpan.FromSeconds(60)));
        if (first != serve._url.Task)
        {
            string why = first == exited ? $"exited with {serve._process.ExitCode}" : "printed no URL within 60 s";
            serve.Dispose();
            throw new InvalidOperationException($"chroma serve {string.Join(' ', args)} {why}:\n{serve.Stdout}{serve.Stderr}");
        }
        serve.Url = new Uri(await serve._url.Task);
        return serve;
    }

    /// <summary>The dotnet host running the tests (dotnet test sets DOTNET_HOST_PATH), else `dotnet` from PATH.</summary>
    static string DotnetHost() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>
    /// Whether this process ignores SIGINT, as a command started in the background by a
    /// non-interactive shell does (`dotnet test ... &amp;`). Its children inherit that, and the .NET
    /// runtime keeps an inherited SIG_IGN for SIGINT (as Unix programs do under nohup): Ctrl-C cannot
    /// reach them. From /proc/self/status, SigIgn, bit 1 (signal 2); false where there is no /proc.
    /// </summary>
    public static bool SigIntIgnored
    {
        get
        {
            try
            {
                var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
                return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << (SigInt - 1))) != 0;
            }
            catch (IOException) { return false; }
        }
    }

    /// <summary>
    /// Stops the server as a user does: SIGINT (Ctrl-C), whose exit code is 130; where SIGINT cannot
    /// reach it (<see cref="SigIntIgnored"/>), SIGTERM, a service manager's stop, whose exit code is 0.
    /// Returns the signal, the exit code that signal must give, and the exit code (null: still running after <paramref name="wait"/>).
    /// </summary>
    public async Task<(string Signal, int Expected, int? ExitCode)> Stop(TimeSpan wait) =>
        SigIntIgnored ? ("SIGTERM", 0, await Signal(SigTerm, wait)) : ("SIGINT", 130, await Signal(SigInt, wait));

    async Task<int?> Signal(int signal, TimeSpan wait)
    {
        if (Kill(_process.Id, signal) != 0) throw new InvalidOperationException($"kill -{signal} {_process.Id} failed: errno {Marshal.GetLastPInvokeError()}");
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
            return _process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Peak resident memory of the process so far (VmHWM in /proc/PID/status), in bytes; null where there is no /proc.</summary>
    public long? PeakResidentBytes() => ProcStatus("VmHWM:");

    /// <summary>Resident memory now (VmRSS), in bytes.</summary>
    public long? ResidentBytes() => ProcStatus("VmRSS:");

    long? ProcStatus(string key)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024; // "VmHWM:   123456 kB"
        }
        catch (IOException) { }
        return null;
    }

    const int SigInt = 2, SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        _process.Dispose();
    }
}
