using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text.Json;
using Chroma.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace Chroma.Cli.Serve;

/// <summary>
/// The web server of `chroma serve`: the page at <c>/</c>, <c>GET /api/health</c> and
/// <c>POST /api/colorize</c> (docs/SERVE.md), on Kestrel with minimal APIs, in front of a
/// <see cref="WorkerPool"/> of colorizers. Built here rather than in the command so that tests host it
/// in-process on an ephemeral port (<see cref="ServeSettings.Port"/> 0).
/// <para>
/// What keeps it alive under load: Kestrel's body limit (<see cref="ServeSettings.MaxUploadBytes"/>)
/// and the multipart reader's header limits; the pixel limit, checked from the image header before
/// a request waits and from the decoded size before it is colorized; the bounded queue (503 with
/// Retry-After when full); the per-request timeout (504). Uploads are read into memory and decoded
/// from there: no temporary file is written (ASP.NET's form reader, which spills files over 64 KB to
/// the temp folder, is not used).
/// </para>
/// </summary>
public sealed class ColorizeServer : IAsyncDisposable
{
    /// <summary>The formats `format` accepts, with the Content-Type and file extension of each.</summary>
    static readonly (string Name, ImageEncoding Encoding, string ContentType, string Extension)[] Formats =
    [
        ("png", ImageEncoding.Png, "image/png", ".png"),
        ("jpeg", ImageEncoding.Jpeg, "image/jpeg", ".jpg"),
        ("webp", ImageEncoding.Webp, "image/webp", ".webp"),
        ("tiff", ImageEncoding.Tiff, "image/tiff", ".tif"),
    ];

    /// <summary>Request options, as query parameters or multipart fields.</summary>
    static readonly string[] OptionNames = ["saturation", "max_pixels", "format"];

    /// <summary>Smallest max_pixels a request may ask for (as `--max-pixels`).</summary>
    const int MinWorkingPixels = 64 * 64;

    // Messages quote names ('image'); the relaxed encoder writes them as they are, not as \u0027.
    static readonly JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    readonly WebApplication _app;
    readonly WorkerPool _pool;
    readonly ServeSettings _settings;
    readonly float _modelSaturation;
    readonly byte[] _page;
    readonly ILogger _log;
    int _stopping;
    bool _started;

    ColorizeServer(WebApplication app, WorkerPool pool, ServeSettings settings, float modelSaturation)
    {
        _app = app;
        _pool = pool;
        _settings = settings;
        _modelSaturation = modelSaturation;
        _page = ReadPage();
        _log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("chroma serve");
        app.MapGet("/", ServePage);
        app.MapGet("/api/health", ServeHealth);
        app.MapPost("/api/colorize", ServeColorize);
        app.MapFallback("/api/{**path}", ServeNoEndpoint);
    }

    /// <summary>
    /// A server for <paramref name="colorizers"/> (one per worker; the server owns and disposes them)
    /// with <paramref name="settings"/>; nothing listens before <see cref="StartAsync"/>.
    /// </summary>
    public static ColorizeServer Create(ServeSettings settings, IReadOnlyList<Colorizer> colorizers)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(colorizers);
        var endpoint = ParseHost(settings.Host);
        // The empty builder reads no appsettings.json or ASPNETCORE_* variables (ASPNETCORE_URLS cannot
        // move the server) and adds no logger: only errors are logged, to stderr.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "chroma-serve", ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = settings.MaxUploadBytes;
            // Kestrel cannot take one free port for both loopbacks: "localhost" with port 0 is IPv4's.
            if (endpoint is null && settings.Port != 0) kestrel.ListenLocalhost(settings.Port);
            else kestrel.Listen(endpoint ?? IPAddress.Loopback, settings.Port);
        });
        builder.Services.AddRoutingCore();
        // The command owns Ctrl-C (it stops the server and exits 130); the host's console lifetime would
        // also catch it, and a test process hosting several servers has no console to watch.
        builder.Services.AddSingleton<IHostLifetime, CallerLifetime>();
        builder.Logging.AddProvider(new StderrLoggerProvider()).SetMinimumLevel(LogLevel.Error);
        var app = builder.Build();
        var pool = new WorkerPool(colorizers, settings.Queue, settings.MaxImagePixels);
        return new ColorizeServer(app, pool, settings, colorizers[0].Saturation);
    }

    /// <summary>The address to listen on; null for "localhost" (IPv4 and IPv6 loopback). Anything else is an <see cref="ArgumentException"/> naming --host.</summary>
    internal static IPAddress? ParseHost(string host)
    {
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return null;
        if (IPAddress.TryParse(host.Trim('[', ']'), out var address)) return address;
        throw new ArgumentException($"--host {host}: not an IP address; use 127.0.0.1 (this machine only), ::1, localhost, 0.0.0.0 or :: (every interface) or an interface's address.");
    }

    /// <summary>The URL the server listens on (with the port taken when <see cref="ServeSettings.Port"/> is 0); set by <see cref="StartAsync"/>.</summary>
    public Uri? Url { get; private set; }

    /// <summary>The settings the server runs with.</summary>
    public ServeSettings Settings => _settings;

    internal WorkerPool Pool => _pool;

    /// <summary>Binds and starts listening; an address in use is an <see cref="IOException"/>.</summary>
    public async Task StartAsync(CancellationToken cancel = default)
    {
        await _app.StartAsync(cancel);
        _started = true;
        string url = _app.Urls.First();
        Url = new Uri(url.EndsWith('/') ? url : url + "/");
    }

    /// <summary>
    /// Stops cleanly: requests still waiting for a worker are answered 503 (the server is stopping),
    /// those being colorized get <paramref name="grace"/> to finish, then Kestrel stops and the workers
    /// and their colorizers are released.
    /// </summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (Interlocked.Exchange(ref _stopping, 1) != 0) return;
        _pool.StopTaking();
        if (_started)
        {
            using var deadline = new CancellationTokenSource(grace);
            await _app.StopAsync(deadline.Token);
        }
        _pool.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(5));
        await _app.DisposeAsync();
    }

    /// <summary>A JSON answer for any other /api request: 405 (with Allow) for a known path, else 404.</summary>
    static Task ServeNoEndpoint(HttpContext context)
    {
        string path = context.Request.Path.Value ?? "";
        string? allowed = path.TrimEnd('/') switch { "/api/colorize" => "POST", "/api/health" => "GET", _ => null };
        string what = $"{context.Request.Method} {path}";
        if (allowed is null)
            return WriteError(context, StatusCodes.Status404NotFound, $"no endpoint {what}: the API has GET /api/health and POST /api/colorize");
        context.Response.Headers.Allow = allowed;
        return WriteError(context, StatusCodes.Status405MethodNotAllowed, $"{what}: use {allowed} {path}");
    }

    Task ServePage(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/html; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        // The page loads nothing from elsewhere (no CDN): it works offline, and the policy says so.
        response.Headers.ContentSecurityPolicy = "default-src 'none'; img-src 'self' blob: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self' blob:";
        response.ContentLength = _page.Length;
        return response.Body.WriteAsync(_page).AsTask();
    }

    Task ServeHealth(HttpContext context)
    {
        var health = new
        {
            model = _settings.ModelName,
            device = _settings.DeviceName,
            version = Version,
            saturation = _modelSaturation,
            workers = _pool.Workers,
            queue = _pool.QueueCapacity,
            busy = _pool.Busy,
            waiting = _pool.Waiting,
            max_upload_mb = _settings.MaxUploadBytes / (double)(1 << 20),
            max_pixels = _settings.MaxPixels,
            max_image_pixels = _settings.MaxImagePixels,
            timeout_s = _settings.Timeout.TotalSeconds,
            formats = Formats.Select(f => f.Name).ToArray(),
        };
        context.Response.Headers.CacheControl = "no-store";
        return WriteJson(context, StatusCodes.Status200OK, health);
    }

    /// <summary>The product version (0.3.0), without the build's source revision.</summary>
    static string Version { get; } = (typeof(ColorizeServer).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "")
        .Split('+')[0];

    async Task ServeColorize(HttpContext context)
    {
        var abort = context.RequestAborted;
        try
        {
            if (Volatile.Read(ref _stopping) != 0) throw Stopping();
            var upload = await ReadUpload(context);
            CheckHeader(upload.Image, upload.ImageName);
            if (upload.Global is not null) CheckHeader(upload.Global, upload.GlobalName);

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(abort);
            deadline.CancelAfter(_settings.Timeout);
            var job = new ColorizeJob
            {
                Image = upload.Image, ImageName = upload.ImageName, Global = upload.Global, GlobalName = upload.GlobalName,
                Saturation = upload.Saturation, MaxPixels = upload.MaxPixels, Encoding = upload.Encoding, Abandoned = deadline.Token,
            };
            if (!_pool.TryEnqueue(job))
            {
                if (Volatile.Read(ref _stopping) != 0) throw Stopping();
                int retry = _pool.RetryAfterSeconds;
                throw new ServeException(StatusCodes.Status503ServiceUnavailable,
                    $"the server is busy: {Plural(_pool.Workers, "worker")} colorizing and {Plural(_pool.QueueCapacity, "photo")} waiting, the most its queue takes (--queue); retry after {retry} s",
                    retry);
            }
            ColorizeResult result;
            try
            {
                result = await job.Done.Task.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (!abort.IsCancellationRequested)
            {
                string seconds = _settings.Timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
                throw new ServeException(StatusCodes.Status504GatewayTimeout, job.Started
                    ? $"{job.ImageName}: not colorized within {seconds} s (--timeout); try a smaller photo or max_pixels"
                    : $"{job.ImageName}: waited {seconds} s for a worker (--timeout) without getting one; try again later");
            }

            var format = Formats.First(f => f.Encoding == job.Encoding);
            var response = context.Response;
            response.ContentType = format.ContentType;
            response.ContentLength = result.Bytes.Length;
            var disposition = new ContentDispositionHeaderValue("inline");
            disposition.SetHttpFileName(Path.GetFileNameWithoutExtension(job.ImageName) + "-color" + format.Extension);
            response.Headers.ContentDisposition = disposition.ToString();
            response.Headers["Server-Timing"] = string.Create(CultureInfo.InvariantCulture,
                $"queue;dur={result.Waited.TotalMilliseconds:F0}, colorize;dur={result.Worked.TotalMilliseconds:F0}");
            await response.Body.WriteAsync(result.Bytes, abort);
        }
        catch (Exception) when (abort.IsCancellationRequested)
        {
            // The client is gone: nobody to answer.
        }
        catch (Exception e) when (!context.Response.HasStarted && Describe(e) is { } error)
        {
            await WriteError(context, error.Status, error.Message, error.RetryAfter);
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            _log.LogError(e, "POST /api/colorize failed");
            await WriteError(context, StatusCodes.Status500InternalServerError, $"internal error: {e.Message}");
        }
    }

    /// <summary>The status and message of an expected failure; null for a bug (logged, 500).</summary>
    (int Status, string Message, int? RetryAfter)? Describe(Exception e) => e switch
    {
        ServeException s => (s.Status, s.Message, s.RetryAfterSeconds),
        ImageFormatException f => (StatusCodes.Status400BadRequest, f.Message, null),
        // Kestrel's body limit (MaxRequestBodySize) and a malformed request body.
        BadHttpRequestException b when b.StatusCode == StatusCodes.Status413PayloadTooLarge => (b.StatusCode, UploadTooLarge(), null),
        BadHttpRequestException b => (b.StatusCode, $"bad request: {b.Message}", null),
        InvalidDataException d => (StatusCodes.Status400BadRequest, $"malformed multipart/form-data body: {d.Message}", null),
        InsufficientMemoryException or OutOfMemoryException => (StatusCodes.Status503ServiceUnavailable,
            "not enough memory for this photo now; retry later, or send a smaller photo", 10),
        _ => ((int, string, int?)?)null,
    };

    ServeException Stopping() => new(StatusCodes.Status503ServiceUnavailable, "the server is stopping; try again when it is back", 5);

    string UploadTooLarge() => $"upload too large: the request is over this server's limit of {FormatMb(_settings.MaxUploadBytes)} (--max-upload-mb)";

    static string FormatMb(long bytes) => (bytes / (double)(1 << 20)).ToString("0.##", CultureInfo.InvariantCulture) + " MB";

    static string Plural(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    internal static ServeException TooManyPixels(string name, int width, int height, long limit) =>
        new(StatusCodes.Status413PayloadTooLarge,
            $"{name}: {width}x{height} is {Megapixels((long)width * height)} megapixels, above this server's limit of {Megapixels(limit)} megapixels (--max-image-pixels)");

    /// <summary>Pixels in megapixels with the digits that matter: 10000, 24.5, 0.006.</summary>
    internal static string Megapixels(long pixels)
    {
        double mp = pixels / 1e6;
        return mp.ToString(mp >= 100 ? "0" : mp >= 1 ? "0.#" : "0.###", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Refuses a photo whose header gives more pixels than the limit, or that is not an image at all,
    /// before it waits for a worker. Where Skia cannot read the header, ImageFile's decoder stops at the
    /// same point and says why in its own words; a TIFF whose directory <see cref="ImageHeader"/> does
    /// not follow is left to the worker, which checks the decoded size.
    /// </summary>
    void CheckHeader(byte[] bytes, string name)
    {
        if (ImageHeader.ReadSize(bytes) is { } size)
        {
            if ((long)size.Width * size.Height > _settings.MaxImagePixels)
                throw TooManyPixels(name, size.Width, size.Height, _settings.MaxImagePixels);
        }
        else if (!ImageHeader.IsTiff(bytes))
        {
            ImageFile.Load(new MemoryStream(bytes, writable: false), name); // throws ImageFormatException
        }
    }

    /// <summary>
    /// The upload and its options: a multipart/form-data body (fields image, global, and the options),
    /// or the image itself as the body (image/*, application/octet-stream) with options in the query.
    /// </summary>
    async Task<Upload> ReadUpload(HttpContext context)
    {
        var request = context.Request;
        if (request.ContentLength is { } length && length > _settings.MaxUploadBytes)
        {
            await DrainOversizedBody(context, length);
            throw new ServeException(StatusCodes.Status413PayloadTooLarge, UploadTooLarge());
        }
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, values) in request.Query)
        {
            if (values.Count != 1) throw new ServeException(StatusCodes.Status400BadRequest, $"{key}: given {values.Count} times; give it once");
            AddOption(options, key, values[0] ?? "");
        }

        string? contentType = request.ContentType;
        if (string.IsNullOrWhiteSpace(contentType) || !MediaTypeHeaderValue.TryParse(contentType, out var mediaType))
            throw UnsupportedType(contentType);
        string media = mediaType.MediaType.Value?.ToLowerInvariant() ?? "";
        byte[]? image = null, global = null;
        string imageName = "image", globalName = "global";
        if (media == "multipart/form-data")
        {
            string boundary = HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value ?? "";
            if (boundary.Length == 0) throw new ServeException(StatusCodes.Status400BadRequest, "multipart/form-data without a boundary");
            // Header limits keep a part's headers small; the body limit is Kestrel's (and ReadAll's).
            var reader = new MultipartReader(boundary, request.Body) { HeadersCountLimit = 16, HeadersLengthLimit = 16 * 1024, BodyLengthLimit = null };
            for (var section = await reader.ReadNextSectionAsync(context.RequestAborted); section is not null;
                 section = await reader.ReadNextSectionAsync(context.RequestAborted))
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase))
                    throw new ServeException(StatusCodes.Status400BadRequest, "a multipart part without a Content-Disposition: form-data header");
                string name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
                string? fileName = ClientFileName(disposition);
                switch (name)
                {
                    case "image" or "global":
                        if ((name == "image" ? image : global) is not null)
                            throw new ServeException(StatusCodes.Status400BadRequest, $"two '{name}' parts; send one photo per request");
                        var bytes = await ReadAll(section.Body, _settings.MaxUploadBytes, context.RequestAborted);
                        if (name == "image") (image, imageName) = (bytes, fileName ?? "image");
                        else (global, globalName) = (bytes, fileName ?? "global");
                        break;
                    default:
                        if (!OptionNames.Contains(name)) throw UnknownField(name);
                        var text = await ReadAll(section.Body, 256, context.RequestAborted, what: $"field '{name}'");
                        AddOption(options, name, System.Text.Encoding.UTF8.GetString(text));
                        break;
                }
            }
            if (image is null)
                throw new ServeException(StatusCodes.Status400BadRequest, "no 'image' part: send the photo as the multipart field 'image' (and optionally 'global')");
        }
        else if (media.StartsWith("image/", StringComparison.Ordinal) || media == "application/octet-stream")
        {
            image = await ReadAll(request.Body, _settings.MaxUploadBytes, context.RequestAborted);
        }
        else throw UnsupportedType(contentType);

        var (saturation, maxPixels, encoding) = ParseOptions(options);
        return new Upload(image, imageName, global, globalName, saturation, maxPixels, encoding);
    }

    /// <summary>What a request sent: the photo (and the global one) still encoded, the options checked.</summary>
    sealed record Upload(byte[] Image, string ImageName, byte[]? Global, string GlobalName, float? Saturation, int? MaxPixels, ImageEncoding Encoding);

    /// <summary>
    /// Reads and drops an upload declared too large, so that the client, which is still sending it,
    /// reads the 413 instead of a reset connection (Kestrel closes a connection whose body it cannot
    /// consume, and an HTTP/1.1 client writing its body then sees the reset before the answer). Only
    /// up to 4 times the limit, which costs time on the network but no memory; a larger body, or one
    /// whose client waits for 100 Continue (curl for bodies over 1 MB) and so never sends it, is
    /// answered at once.
    /// </summary>
    async Task DrainOversizedBody(HttpContext context, long length)
    {
        var request = context.Request;
        if (length > 4 * _settings.MaxUploadBytes || request.Headers.Expect.ToString().Contains("100-continue", StringComparison.OrdinalIgnoreCase)) return;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is not { IsReadOnly: false } limit) return;
        limit.MaxRequestBodySize = length;
        var chunk = new byte[81920];
        while (await request.Body.ReadAsync(chunk, context.RequestAborted) > 0) { }
    }

    /// <summary>The client's file name of a part, reduced to a plain name (no folders, no control characters), or null.</summary>
    static string? ClientFileName(ContentDispositionHeaderValue disposition)
    {
        string? raw = HeaderUtilities.RemoveQuotes(disposition.FileNameStar).Value is { Length: > 0 } star ? star
            : HeaderUtilities.RemoveQuotes(disposition.FileName).Value;
        if (string.IsNullOrWhiteSpace(raw)) return null;
        string name = new(Path.GetFileName(raw.Replace('\\', '/')).Where(c => !char.IsControl(c)).Take(120).ToArray());
        return name.Length == 0 ? null : name;
    }

    static ServeException UnsupportedType(string? contentType) => new(StatusCodes.Status415UnsupportedMediaType,
        (string.IsNullOrWhiteSpace(contentType) ? "no Content-Type" : $"unsupported Content-Type '{contentType}'") +
        ": send multipart/form-data with the photo in the field 'image', or the photo itself as the body with Content-Type image/* (image/jpeg, image/png, ...)");

    static ServeException UnknownField(string name) => new(StatusCodes.Status400BadRequest,
        $"unknown field '{name}'; the fields are image, global, {string.Join(", ", OptionNames)}");

    static void AddOption(Dictionary<string, string> options, string key, string value)
    {
        if (!OptionNames.Contains(key)) throw UnknownField(key);
        if (!options.TryAdd(key, value.Trim())) throw new ServeException(StatusCodes.Status400BadRequest, $"{key}: given twice; give it once");
    }

    /// <summary>saturation (0 to 4), max_pixels (4096 to the server's --max-pixels), format (png, jpeg, webp, tiff); each wrong value is a 400 naming it.</summary>
    (float? Saturation, int? MaxPixels, ImageEncoding Encoding) ParseOptions(Dictionary<string, string> options)
    {
        static ServeException Bad(string message) => new(StatusCodes.Status400BadRequest, message);
        float? saturation = null;
        if (options.TryGetValue("saturation", out var s))
        {
            if (!double.TryParse(s, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out double v)
                || !double.IsFinite(v)) // "NaN" and "Infinity" parse whatever the style
                throw Bad($"saturation: \"{s}\" is not a number; use 0 to {ModelFile.MaxSaturation} with a dot (1.5), 1 is the network's own colour");
            if (!ModelFile.IsValidSaturation(v))
                throw Bad(string.Create(CultureInfo.InvariantCulture, $"saturation: {v} is out of range; use 0 to {ModelFile.MaxSaturation} (1 is the network's own colour)"));
            saturation = (float)v;
        }
        int? maxPixels = null;
        if (options.TryGetValue("max_pixels", out var m))
        {
            if (!int.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out int v))
                throw Bad($"max_pixels: \"{m}\" is not a whole number; use {MinWorkingPixels} to {_settings.MaxPixels}");
            if (v < MinWorkingPixels || v > _settings.MaxPixels)
                throw Bad($"max_pixels: {v} is out of range; use {MinWorkingPixels} to {_settings.MaxPixels} (this server's --max-pixels)");
            maxPixels = v;
        }
        var encoding = ImageEncoding.Png;
        if (options.TryGetValue("format", out var f))
        {
            string name = f.ToLowerInvariant() switch { "jpg" => "jpeg", "tif" => "tiff", var n => n };
            encoding = Formats.FirstOrDefault(x => x.Name == name) is { Name: not null } found ? found.Encoding
                : throw Bad($"format: \"{f}\" is not a format the server writes; use png, jpeg, webp or tiff");
        }
        return (saturation, maxPixels, encoding);
    }

    /// <summary>Reads <paramref name="body"/> into memory, refusing more than <paramref name="limit"/> bytes (413).</summary>
    async Task<byte[]> ReadAll(Stream body, long limit, CancellationToken cancel, string? what = null)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        for (int n; (n = await body.ReadAsync(chunk, cancel)) > 0;)
        {
            if (buffer.Length + n > limit)
                throw what is null ? new ServeException(StatusCodes.Status413PayloadTooLarge, UploadTooLarge())
                    : new ServeException(StatusCodes.Status400BadRequest, $"{what}: longer than {limit} bytes");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    static Task WriteError(HttpContext context, int status, string message, int? retryAfter = null)
    {
        if (retryAfter is { } seconds) context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return WriteJson(context, status, new { error = message });
    }

    static Task WriteJson<T>(HttpContext context, int status, T value)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, Json);
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = bytes.Length;
        return response.Body.WriteAsync(bytes).AsTask();
    }

    static byte[] ReadPage()
    {
        using var stream = typeof(ColorizeServer).Assembly.GetManifestResourceStream("Chroma.Cli.Serve.Page.html")
            ?? throw new InvalidOperationException("Chroma.Cli.Serve.Page.html is not embedded in the chroma assembly.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>Leaves start and stop to the caller (the command watches Ctrl-C itself).</summary>
    sealed class CallerLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Errors (a bug answered 500, a failure inside Kestrel) as one "error:" line on stderr, with the exception.</summary>
    sealed class StderrLoggerProvider : ILoggerProvider
    {
        static readonly Lock Gate = new();

        public ILogger CreateLogger(string categoryName) => new StderrLogger(categoryName);

        public void Dispose() { }

        sealed class StderrLogger(string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (!IsEnabled(logLevel)) return;
                string message = $"{category}: {formatter(state, exception)}" + (exception is null ? "" : $"\n{exception}");
                lock (Gate) CliConsole.WriteError(message);
            }
        }
    }
}
