using System.Diagnostics;
using System.Threading.Channels;
using Chroma.Model;

namespace Chroma.Cli.Serve;

/// <summary>What a request asked for: the uploaded bytes (still encoded) and the options, checked.</summary>
sealed class ColorizeJob
{
    public required byte[] Image { get; init; }
    public required string ImageName { get; init; }
    public byte[]? Global { get; init; }
    public string? GlobalName { get; init; }

    /// <summary>Gain on a*b*; null: the model's own.</summary>
    public float? Saturation { get; init; }

    /// <summary>Working size of the local path (<see cref="Colorizer.MaxWorkingPixels"/>); null: the server's.</summary>
    public int? MaxPixels { get; init; }

    public ImageEncoding Encoding { get; init; } = ImageEncoding.Png;

    /// <summary>Set when the request is gone (client disconnected, timed out): a worker skips the job.</summary>
    public CancellationToken Abandoned { get; init; }

    /// <summary>When the job was queued (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public long QueuedAt { get; } = Stopwatch.GetTimestamp();

    /// <summary>Set once a worker has taken the job (so a timeout can say whether it was still waiting).</summary>
    public bool Started => Volatile.Read(ref _started);
    bool _started;
    internal void MarkStarted() => Volatile.Write(ref _started, true);

    public TaskCompletionSource<ColorizeResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>An encoded colorized image and where its time went.</summary>
sealed record ColorizeResult(byte[] Bytes, int Width, int Height, TimeSpan Waited, TimeSpan Worked);

/// <summary>An error with the HTTP status it is answered with (and, for 503, when to retry).</summary>
sealed class ServeException(int status, string message, int? retryAfterSeconds = null) : Exception(message)
{
    public int Status { get; } = status;
    public int? RetryAfterSeconds { get; } = retryAfterSeconds;
}

/// <summary>
/// The colorizers of `chroma serve` behind a bounded queue. Each worker is a dedicated thread with its
/// own <see cref="Colorizer"/> (a Colorizer runs one call at a time, and its network keeps per-call
/// buffers), so at most <c>workers</c> photos are decoded, colorized and encoded at once, whatever the
/// number of requests: that and the queue bound the memory. The queue (a bounded channel of
/// <c>queue</c> jobs) holds requests that wait for a worker; when it is full <see cref="TryEnqueue"/>
/// fails and the request is answered 503 at once. A job whose request has gone (client disconnected
/// or timed out) is skipped when a worker reaches it.
/// </summary>
sealed class WorkerPool : IDisposable
{
    readonly Channel<ColorizeJob> _queue;
    readonly IReadOnlyList<Colorizer> _colorizers;
    readonly Thread[] _threads;
    readonly long _maxImagePixels;
    int _busy;
    long _jobTicksAverage = TimeSpan.TicksPerSecond; // moving average of a job's time, for Retry-After
    bool _disposed;

    /// <summary>Called on the worker thread when it takes a job, before any work: tests block it to hold a worker busy.</summary>
    internal Action<ColorizeJob>? JobStarting { get; set; }

    public WorkerPool(IReadOnlyList<Colorizer> colorizers, int queue, long maxImagePixels)
    {
        if (colorizers.Count == 0) throw new ArgumentException("WorkerPool: at least one colorizer is needed.", nameof(colorizers));
        _colorizers = colorizers;
        _maxImagePixels = maxImagePixels;
        ArgumentOutOfRangeException.ThrowIfLessThan(queue, 1);
        _queue = Channel.CreateBounded<ColorizeJob>(new BoundedChannelOptions(queue)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = colorizers.Count == 1,
            SingleWriter = false,
        });
        QueueCapacity = queue;
        _threads = colorizers.Select((c, i) => new Thread(() => Work(c)) { IsBackground = true, Name = $"chroma-serve-worker-{i}" }).ToArray();
        foreach (var t in _threads) t.Start();
    }

    public int Workers => _colorizers.Count;
    public int QueueCapacity { get; }

    /// <summary>Jobs waiting for a worker.</summary>
    public int Waiting => _queue.Reader.Count;

    /// <summary>Workers colorizing now.</summary>
    public int Busy => Volatile.Read(ref _busy);

    /// <summary>Seconds a client should wait before retrying a full queue: the queue's expected drain time, 1 to 60.</summary>
    public int RetryAfterSeconds
    {
        get
        {
            double job = Interlocked.Read(ref _jobTicksAverage) / (double)TimeSpan.TicksPerSecond;
            return (int)Math.Clamp(Math.Ceiling(job * (Waiting + Workers) / Workers), 1, 60);
        }
    }

    /// <summary>Queues <paramref name="job"/>; false when the queue is full (or the pool is stopping).</summary>
    public bool TryEnqueue(ColorizeJob job) => _queue.Writer.TryWrite(job);

    void Work(Colorizer colorizer)
    {
        var reader = _queue.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            if (!reader.TryRead(out var job)) continue; // another worker took it
            if (job.Abandoned.IsCancellationRequested)
            {
                job.Done.TrySetCanceled(job.Abandoned);
                continue;
            }
            Interlocked.Increment(ref _busy);
            job.MarkStarted();
            long started = Stopwatch.GetTimestamp();
            try
            {
                JobStarting?.Invoke(job);
                var (bytes, width, height) = Colorize(colorizer, job);
                long done = Stopwatch.GetTimestamp();
                // New average = 3/4 old + 1/4 this job: follows the load within a few jobs.
                long ticks = Stopwatch.GetElapsedTime(started, done).Ticks;
                Interlocked.Exchange(ref _jobTicksAverage, (3 * Interlocked.Read(ref _jobTicksAverage) + ticks) / 4);
                job.Done.TrySetResult(new ColorizeResult(bytes, width, height, Stopwatch.GetElapsedTime(job.QueuedAt, started), Stopwatch.GetElapsedTime(started, done)));
            }
            catch (Exception e)
            {
                job.Done.TrySetException(e);
            }
            finally
            {
                Interlocked.Decrement(ref _busy);
            }
        }
    }

    /// <summary>Decodes, checks the decoded size, colorizes and encodes one job on <paramref name="colorizer"/>.</summary>
    (byte[] Bytes, int Width, int Height) Colorize(Colorizer colorizer, ColorizeJob job)
    {
        var image = Decode(job.Image, job.ImageName);
        var global = job.Global is null ? null : Decode(job.Global, job.GlobalName ?? "global");
        // A request with its own saturation or working size runs on a second Colorizer over the same
        // network (settings are init-only; the network is this worker's, one call at a time). It is
        // not disposed: disposing would dispose the shared network.
        var run = job.Saturation is null && job.MaxPixels is null ? colorizer : new Colorizer(colorizer.Network)
        {
            Metadata = colorizer.Metadata,
            Saturation = job.Saturation ?? colorizer.Saturation,
            MaxWorkingPixels = job.MaxPixels ?? colorizer.MaxWorkingPixels,
            MinWorkingSide = colorizer.MinWorkingSide,
        };
        var result = run.Colorize(image, global);
        using var output = new MemoryStream();
        try
        {
            ImageFile.Save(output, job.Encoding, result.Rgb, result.Width, result.Height, result.Alpha);
        }
        catch (IOException e)
        {
            // An encoder's refusal (a side too long for JPEG or WebP) is about this image and this format.
            throw new ServeException(400, e.Message);
        }
        return (output.ToArray(), result.Width, result.Height);
    }

    /// <summary>Decodes from memory (no temporary file) and checks the decoded pixel count against the server's limit.</summary>
    LoadedImage Decode(byte[] bytes, string name)
    {
        var image = ImageFile.Load(new MemoryStream(bytes, writable: false), name);
        if ((long)image.Width * image.Height > _maxImagePixels)
            throw ColorizeServer.TooManyPixels(name, image.Width, image.Height, _maxImagePixels);
        return image;
    }

    /// <summary>Takes no more jobs and answers those still waiting with 503 (the server is stopping); jobs being colorized go on.</summary>
    public void StopTaking()
    {
        _queue.Writer.TryComplete();
        while (_queue.Reader.TryRead(out var job))
            job.Done.TrySetException(new ServeException(503, "the server is stopping; try again when it is back", retryAfterSeconds: 5));
    }

    /// <summary><see cref="StopTaking"/>, then waits for each worker to finish the job it has and disposes the colorizers.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        StopTaking();
        foreach (var t in _threads) t.Join();
        foreach (var c in _colorizers) c.Dispose();
    }
}
