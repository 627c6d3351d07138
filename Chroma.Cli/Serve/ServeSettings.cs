using Chroma.Model;

namespace Chroma.Cli.Serve;

/// <summary>The settings of `chroma serve` (its options, checked), shared by the command and the tests that host the server.</summary>
public sealed record ServeSettings
{
    /// <summary>Default of <see cref="MaxUploadBytes"/>: 50 MiB, a 25-megapixel PNG with room to spare.</summary>
    public const int DefaultMaxUploadMb = 50;

    /// <summary>
    /// Default of <see cref="MaxImagePixels"/>: 25 megapixels, a 6000 x 4000 camera photo. One photo
    /// takes about 50 bytes per pixel while a worker has it (decoded planes, L*, a*b*, the result and its
    /// encoding), so 1.25 GB at this size, per worker.
    /// </summary>
    public const long DefaultMaxImagePixels = 25_000_000;

    public const int DefaultQueue = 16, DefaultPort = 8080;
    public const double DefaultTimeoutSeconds = 120;

    /// <summary>Address to listen on: an IP address, or "localhost" (loopback, IPv4 and IPv6).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 takes any free one (<see cref="ColorizeServer.Url"/> says which).</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>Requests that may wait for a worker; one more is answered 503 with Retry-After.</summary>
    public int Queue { get; init; } = DefaultQueue;

    /// <summary>Largest request body (all multipart parts together), enforced by Kestrel and the multipart reader.</summary>
    public long MaxUploadBytes { get; init; } = DefaultMaxUploadMb * (1L << 20);

    /// <summary>The local path's largest working size (<see cref="Colorizer.MaxWorkingPixels"/>) and the most a request's max_pixels may ask for.</summary>
    public int MaxPixels { get; init; } = Colorizer.DefaultMaxWorkingPixels;

    /// <summary>Largest photo accepted, in pixels; checked from the header before queueing and from the decoded size before colorizing (413).</summary>
    public long MaxImagePixels { get; init; } = DefaultMaxImagePixels;

    /// <summary>How long a request may take from the end of its upload (waiting and colorizing) before it is answered 504.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(DefaultTimeoutSeconds);

    /// <summary>The model's name for /api/health.</summary>
    public string ModelName { get; init; } = "";

    /// <summary>The device's name for /api/health.</summary>
    public string DeviceName { get; init; } = "";
}
