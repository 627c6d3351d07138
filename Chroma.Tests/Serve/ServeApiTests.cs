using System.Net;
using System.Text.Json;
using Chroma.Cli.Serve;
using Chroma.Model;
using Chroma.Tests.Training;
using Xunit;

namespace Chroma.Tests.Serve;

/// <summary>
/// The HTTP API of `chroma serve` (docs/SERVE.md), hosted in-process on a free loopback port with a
/// tiny random model. For the whole class TMPDIR points at an empty folder of its own, so
/// <see cref="Path.GetTempPath"/> is that folder and any temporary file the server wrote (ASP.NET's
/// form reader spills uploads over 64 KB there) would show up in it.
/// </summary>
public sealed class ServeApiTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-serve-").FullName;
    readonly string _temp;
    readonly string? _oldTemp = Environment.GetEnvironmentVariable("TMPDIR");
    readonly string _model;

    public ServeApiTests()
    {
        _model = Fixtures.SaveTinyModel(PathOf("tiny.safetensors"));
        _temp = Directory.CreateDirectory(PathOf("tmp")).FullName;
        Environment.SetEnvironmentVariable("TMPDIR", _temp);
    }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("TMPDIR", _oldTemp);
        Directory.Delete(_dir, recursive: true);
    }

    string PathOf(params string[] parts) => Path.Combine([_dir, .. parts]);

    Task<ServeHost> Start(ServeSettings? settings = null, int workers = 1) => ServeHost.Start(_model, settings, workers);

    /// <summary>What the library makes of <paramref name="path"/> on the same model: the pixels the API must return.</summary>
    byte[] Expected(string path, string? global = null, float? saturation = null, int? maxPixels = null)
    {
        using var colorizer = Colorizer.Load(_model, CpuDevice.Instance, ownsDevice: false, saturation, maxPixels ?? Colorizer.DefaultMaxWorkingPixels);
        var image = ImageFile.Load(path);
        return colorizer.Colorize(image, global is null ? null : ImageFile.Load(global)).ToPixels(PixelLayout.Rgb24);
    }

    static async Task<LoadedImage> Decode(HttpResponseMessage response)
    {
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return ImageFile.Load(new MemoryStream(await response.Content.ReadAsByteArrayAsync()), "response");
    }

    void AssertNoTemporaryFiles()
    {
        Assert.Equal(_temp, Path.GetTempPath().TrimEnd(Path.DirectorySeparatorChar));
        Assert.Empty(Directory.GetFileSystemEntries(_temp));
    }

    /// <summary>A photo of random noise: PNG cannot compress it, so it is larger than ASP.NET's 64 KB in-memory threshold.</summary>
    string NoisePng(string name, int width, int height, int seed)
    {
        var rng = new Random(seed);
        var rgb = new float[3 * width * height];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = rng.Next(256) / 255f;
        string path = PathOf(name);
        ImageFile.Save(path, rgb, width, height);
        return path;
    }

    [Fact]
    public async Task Health_gives_the_model_device_version_saturation_workers_and_queue()
    {
        await using var host = await Start(new ServeSettings { Queue = 5 }, workers: 2);
        var response = await host.Client.GetAsync("api/health", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        var h = json.RootElement;
        Assert.Equal("tiny.safetensors", h.GetProperty("model").GetString());
        Assert.Equal(CpuDevice.Instance.Name, h.GetProperty("device").GetString());
        Assert.Matches(@"^\d+\.\d+\.\d+", h.GetProperty("version").GetString());
        Assert.Equal(host.Colorizers[0].Saturation, h.GetProperty("saturation").GetSingle());
        Assert.Equal(2, h.GetProperty("workers").GetInt32());
        Assert.Equal(5, h.GetProperty("queue").GetInt32());
        Assert.Equal(0, h.GetProperty("busy").GetInt32());
        Assert.Equal(0, h.GetProperty("waiting").GetInt32());
        Assert.Equal(ServeSettings.DefaultMaxUploadMb, h.GetProperty("max_upload_mb").GetDouble());
        Assert.Equal(["png", "jpeg", "webp", "tiff"], h.GetProperty("formats").EnumerateArray().Select(f => f.GetString()));
    }

    [Fact]
    public async Task Multipart_upload_returns_a_png_of_the_input_size_and_lightness_equal_to_the_library_result()
    {
        string photo = Fixtures.SaveColourful(PathOf("in", "photo.png"), 67, 45, seed: 3);
        await using var host = await Start();
        var response = await host.PostMultipart(photo);
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("photo-color.png", response.Content.Headers.ContentDisposition?.FileName);
        var result = await Decode(response);
        Assert.Equal((67, 45), (result.Width, result.Height));
        Assert.Equal(Expected(photo), ServeHost.Rgb24(result));

        // The full-resolution L* is the input's (the model only predicts a*b*).
        var input = ImageFile.Load(photo);
        int n = 67 * 45;
        double worst = 0;
        for (int i = 0; i < n; i++)
        {
            double a = LabColor.FromRgb(input.Rgb[i], input.Rgb[n + i], input.Rgb[2 * n + i]).L;
            double b = LabColor.FromRgb(result.Rgb[i], result.Rgb[n + i], result.Rgb[2 * n + i]).L;
            worst = Math.Max(worst, Math.Abs(a - b));
        }
        Assert.True(worst < 2, $"L* differs from the input's by up to {worst:F2}");
        Assert.Contains("colorize;dur=", string.Join(",", response.Headers.GetValues("Server-Timing")));
    }

    [Fact]
    public async Task Two_workers_colorizing_at_once_give_the_results_of_one()
    {
        string[] photos = [Fixtures.SaveColourful(PathOf("a.png"), 90, 70, seed: 31), Fixtures.SaveColourful(PathOf("b.png"), 64, 96, seed: 32, cls: 1)];
        byte[][] expected = photos.Select(p => Expected(p)).ToArray();
        await using var host = await Start(new ServeSettings { Queue = 16 }, workers: 2);
        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => host.PostMultipart(photos[i % 2])));
        for (int i = 0; i < responses.Length; i++)
            Assert.Equal(expected[i % 2], ServeHost.Rgb24(await Decode(responses[i])));
    }

    [Theory]
    [InlineData("image/png")]
    [InlineData("image/jpeg")] // the type is not trusted: the bytes say what the image is
    [InlineData("application/octet-stream")]
    public async Task Raw_body_upload_returns_the_same_image(string contentType)
    {
        string photo = Fixtures.SaveColourful(PathOf("raw.png"), 40, 52, seed: 4);
        await using var host = await Start();
        var result = await Decode(await host.PostRaw(File.ReadAllBytes(photo), contentType));
        Assert.Equal(Expected(photo), ServeHost.Rgb24(result));
    }

    [Theory]
    [InlineData("jpeg", "image/jpeg", "photo-color.jpg", new byte[] { 0xFF, 0xD8, 0xFF })]
    [InlineData("jpg", "image/jpeg", "photo-color.jpg", new byte[] { 0xFF, 0xD8, 0xFF })]
    [InlineData("webp", "image/webp", "photo-color.webp", new byte[] { (byte)'R', (byte)'I', (byte)'F', (byte)'F' })]
    [InlineData("tiff", "image/tiff", "photo-color.tif", new byte[] { (byte)'I', (byte)'I', 42, 0 })]
    [InlineData("PNG", "image/png", "photo-color.png", new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' })]
    public async Task Format_chooses_the_encoding_and_its_content_type(string format, string contentType, string fileName, byte[] magic)
    {
        string photo = Fixtures.SaveColourful(PathOf("photo.png"), 48, 40, seed: 5);
        await using var host = await Start();
        // As a form field and as a query parameter.
        foreach (var response in new[] { await host.PostMultipart(photo, fields: ("format", format)), await host.PostMultipart(photo, query: $"?format={format}") })
        {
            var bytes = await response.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken);
            Assert.True(response.StatusCode == HttpStatusCode.OK, System.Text.Encoding.UTF8.GetString(bytes));
            Assert.Equal(contentType, response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(fileName, response.Content.Headers.ContentDisposition?.FileName);
            Assert.Equal(magic, bytes[..magic.Length]);
            var image = ImageFile.Load(new MemoryStream(bytes), fileName);
            Assert.Equal((48, 40), (image.Width, image.Height));
        }
    }

    [Fact]
    public async Task Global_part_takes_the_global_features_from_the_second_photo()
    {
        string photo = Fixtures.SaveColourful(PathOf("photo.png"), 56, 48, seed: 6, cls: 0);
        string mood = Fixtures.SaveColourful(PathOf("mood.png"), 72, 64, seed: 7, cls: 2);
        await using var host = await Start();
        var steered = ServeHost.Rgb24(await Decode(await host.PostMultipart(photo, global: mood)));
        Assert.Equal(Expected(photo, global: mood), steered);
        Assert.NotEqual(Expected(photo), steered);
    }

    [Fact]
    public async Task Saturation_and_max_pixels_options_are_those_of_the_library()
    {
        string photo = Fixtures.SaveColourful(PathOf("photo.png"), 64, 48, seed: 8);
        await using var host = await Start();
        Assert.Equal(Expected(photo, saturation: 2.5f), ServeHost.Rgb24(await Decode(await host.PostMultipart(photo, fields: ("saturation", "2.5")))));
        Assert.Equal(Expected(photo, saturation: 0.5f), ServeHost.Rgb24(await Decode(await host.PostRaw(File.ReadAllBytes(photo), "image/png", "?saturation=0.5"))));
        Assert.Equal(Expected(photo, maxPixels: 4096), ServeHost.Rgb24(await Decode(await host.PostMultipart(photo, fields: ("max_pixels", "4096")))));

        // Saturation 0 leaves only the lightness: a gray image.
        var gray = await Decode(await host.PostMultipart(photo, query: "?saturation=0"));
        int n = gray.Width * gray.Height;
        for (int i = 0; i < n; i++)
        {
            var (_, a, b) = LabColor.FromRgb(gray.Rgb[i], gray.Rgb[n + i], gray.Rgb[2 * n + i]);
            Assert.True(Math.Abs(a) < 1.5 && Math.Abs(b) < 1.5, $"pixel {i}: a* {a:F2}, b* {b:F2}");
        }
    }

    [Theory]
    [InlineData("?saturation=abc", "saturation: \"abc\" is not a number")]
    [InlineData("?saturation=1,5", "saturation: \"1,5\" is not a number; use 0 to 4 with a dot")]
    [InlineData("?saturation=4.5", "saturation: 4.5 is out of range; use 0 to 4")]
    [InlineData("?saturation=-1", "saturation: -1 is out of range")]
    [InlineData("?saturation=NaN", "saturation: \"NaN\" is not a number")]
    [InlineData("?max_pixels=100", "max_pixels: 100 is out of range; use 4096 to 1500000")]
    [InlineData("?max_pixels=2000000", "max_pixels: 2000000 is out of range; use 4096 to 1500000 (this server's --max-pixels)")]
    [InlineData("?max_pixels=1e6", "max_pixels: \"1e6\" is not a whole number")]
    [InlineData("?format=gif", "format: \"gif\" is not a format the server writes; use png, jpeg, webp or tiff")]
    [InlineData("?saturaton=2", "unknown field 'saturaton'; the fields are image, global, saturation, max_pixels, format")]
    [InlineData("?format=png&format=jpeg", "format: given 2 times; give it once")]
    public async Task A_bad_option_is_400_naming_it(string query, string message)
    {
        string photo = Fixtures.SaveColourful(PathOf("photo.png"), 32, 32, seed: 9);
        await using var host = await Start();
        var response = await host.PostMultipart(photo, query: query);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith(message, await ServeHost.ErrorOf(response));
    }

    [Fact]
    public async Task A_bad_form_field_is_400_naming_it()
    {
        string photo = Fixtures.SaveColourful(PathOf("photo.png"), 32, 32, seed: 10);
        await using var host = await Start();
        async Task<string> Error(HttpResponseMessage response)
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            return await ServeHost.ErrorOf(response);
        }
        Assert.StartsWith("saturation: \"lots\" is not a number", await Error(await host.PostMultipart(photo, fields: ("saturation", "lots"))));
        Assert.StartsWith("saturation: given twice", await Error(await host.PostMultipart(photo, query: "?saturation=1", fields: ("saturation", "2"))));
        Assert.StartsWith("unknown field 'colour'", await Error(await host.PostMultipart(photo, fields: ("colour", "red"))));
        Assert.StartsWith("no 'image' part", await Error(await host.PostMultipart(null, global: photo)));
    }

    [Fact]
    public async Task An_unreadable_image_is_400_with_the_decoder_message()
    {
        string text = PathOf("notes.jpg");
        File.WriteAllText(text, "these are notes, not a photo");
        string truncated = Fixtures.SaveTruncatedJpeg(PathOf("cut.jpg"), seed: 11);
        string empty = PathOf("empty.png");
        File.WriteAllBytes(empty, []);
        string photo = Fixtures.SaveColourful(PathOf("photo.png"), 32, 32, seed: 12);
        await using var host = await Start();

        async Task<string> Error(HttpResponseMessage response)
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            return await ServeHost.ErrorOf(response);
        }
        Assert.Equal("notes.jpg: not an image or an unsupported format (JPEG, PNG, WebP, BMP, GIF and TIFF are supported)", await Error(await host.PostMultipart(text)));
        Assert.Equal("image: not an image or an unsupported format (JPEG, PNG, WebP, BMP, GIF and TIFF are supported)", await Error(await host.PostRaw(File.ReadAllBytes(text), "image/jpeg")));
        // A truncated JPEG has a good header: the worker's decode finds the cut.
        Assert.StartsWith("cut.jpg: truncated or corrupt", await Error(await host.PostMultipart(truncated)));
        Assert.Equal("empty.png: empty file", await Error(await host.PostMultipart(empty)));
        Assert.StartsWith("notes.jpg: not an image", await Error(await host.PostMultipart(photo, global: text)));
        // The server goes on.
        Assert.Equal(HttpStatusCode.OK, (await host.PostMultipart(photo)).StatusCode);
    }

    [Fact]
    public async Task An_upload_over_the_limit_is_413()
    {
        string big = NoisePng("big.png", 200, 200, seed: 13); // about 120 KB
        Assert.True(new FileInfo(big).Length > 100_000);
        await using var host = await Start(new ServeSettings { MaxUploadBytes = 64 * 1024 });
        const string message = "upload too large: the request is over this server's limit of 0.06 MB (--max-upload-mb)";

        var multipart = await host.PostMultipart(big);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, multipart.StatusCode);
        Assert.Equal(message, await ServeHost.ErrorOf(multipart));
        // The server reads and drops a body declared too large (up to 4 times the limit), so the client
        // always gets the answer rather than a connection reset while it sends; a few times, on one connection.
        for (int i = 0; i < 5; i++)
        {
            var raw = await host.PostRaw(File.ReadAllBytes(big), "image/png");
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, raw.StatusCode);
            Assert.Equal(message, await ServeHost.ErrorOf(raw));
        }
        // A client that waits for 100 Continue gets the 413 without sending the body at all.
        var waiting = new HttpRequestMessage(HttpMethod.Post, "api/colorize") { Content = new ByteArrayContent(new byte[1 << 20]) };
        waiting.Content.Headers.ContentType = new("image/png");
        waiting.Headers.ExpectContinue = true;
        var answered = await host.Client.SendAsync(waiting, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answered.StatusCode);
        Assert.Equal(message, await ServeHost.ErrorOf(answered));

        // Without a Content-Length (chunked), Kestrel's body limit stops the read.
        var chunked = new StreamContent(new MemoryStream(File.ReadAllBytes(big)));
        chunked.Headers.ContentType = new("image/png");
        var request = new HttpRequestMessage(HttpMethod.Post, "api/colorize") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        var streamed = await host.Client.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, streamed.StatusCode);
        Assert.Equal(message, await ServeHost.ErrorOf(streamed));

        string small = Fixtures.SaveColourful(PathOf("small.png"), 32, 32, seed: 14);
        Assert.Equal(HttpStatusCode.OK, (await host.PostMultipart(small)).StatusCode);
    }

    [Fact]
    public async Task A_photo_over_the_pixel_limit_is_413_from_its_header()
    {
        string huge = Fixtures.SaveHugePngHeader(PathOf("huge.png")); // 100000 x 100000 in a few bytes
        string wide = Fixtures.SaveColourful(PathOf("wide.png"), 120, 50, seed: 15);
        string tiff = PathOf("scan.tif");
        ImageFile.Save(tiff, Fixtures.ColourfulRgb(100, 80, seed: 16), 100, 80);
        await using var host = await Start(new ServeSettings { MaxImagePixels = 5000 });

        async Task<string> Error(HttpResponseMessage response)
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            return await ServeHost.ErrorOf(response);
        }
        Assert.Equal("huge.png: 100000x100000 is 10000 megapixels, above this server's limit of 0.005 megapixels (--max-image-pixels)", await Error(await host.PostMultipart(huge)));
        Assert.Equal("wide.png: 120x50 is 0.006 megapixels, above this server's limit of 0.005 megapixels (--max-image-pixels)", await Error(await host.PostMultipart(wide)));
        Assert.StartsWith("image: 120x50 is 0.006 megapixels", await Error(await host.PostRaw(File.ReadAllBytes(wide), "image/png")));
        Assert.StartsWith("scan.tif: 100x80 is 0.008 megapixels", await Error(await host.PostMultipart(tiff)));
        string ok = Fixtures.SaveColourful(PathOf("ok.png"), 40, 40, seed: 17);
        Assert.StartsWith("wide.png: 120x50", await Error(await host.PostMultipart(ok, global: wide)));
        Assert.Equal(HttpStatusCode.OK, (await host.PostMultipart(ok)).StatusCode);
        Assert.Equal(0, host.Server.Pool.Waiting);
    }

    [Fact]
    public async Task An_unsupported_content_type_is_415()
    {
        await using var host = await Start();
        foreach (var type in new[] { "text/plain", "application/json", "application/x-www-form-urlencoded" })
        {
            var response = await host.PostRaw("hello"u8.ToArray(), type);
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
            Assert.StartsWith($"unsupported Content-Type '{type}': send multipart/form-data with the photo in the field 'image'", await ServeHost.ErrorOf(response));
        }
        var none = await host.PostRaw("hello"u8.ToArray(), contentType: null);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, none.StatusCode);
        Assert.StartsWith("no Content-Type: send multipart/form-data", await ServeHost.ErrorOf(none));
    }

    [Fact]
    public async Task A_full_queue_is_503_with_Retry_After_and_the_waiting_requests_are_still_done()
    {
        string photo = Fixtures.SaveColourful(PathOf("photo.png"), 40, 40, seed: 18);
        await using var host = await Start(new ServeSettings { Queue = 1 });
        using var release = new ManualResetEventSlim();
        host.Server.Pool.JobStarting = _ => release.Wait(TimeSpan.FromSeconds(60));
        try
        {
            var first = host.PostMultipart(photo);  // taken by the one worker, which blocks
            await ServeHost.Until(() => host.Server.Pool.Busy == 1, "the worker has the first photo");
            var second = host.PostMultipart(photo); // waits in the queue of 1
            await ServeHost.Until(() => host.Server.Pool.Waiting == 1, "the second photo waits");

            var third = await host.PostMultipart(photo);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, third.StatusCode);
            Assert.NotNull(third.Headers.RetryAfter?.Delta);
            Assert.InRange(third.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 60);
            Assert.Equal("the server is busy: 1 worker colorizing and 1 photo waiting, the most its queue takes (--queue); retry after "
                         + third.Headers.RetryAfter.Delta.Value.TotalSeconds + " s", await ServeHost.ErrorOf(third));

            // The health check is not queued: it answers while the worker is busy.
            using var health = JsonDocument.Parse(await host.Client.GetStringAsync("api/health", TestContext.Current.CancellationToken));
            Assert.Equal(1, health.RootElement.GetProperty("busy").GetInt32());
            Assert.Equal(1, health.RootElement.GetProperty("waiting").GetInt32());

            release.Set();
            Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await second).StatusCode);
        }
        finally
        {
            release.Set();
        }
    }

    [Fact]
    public async Task A_request_over_the_timeout_is_504_whether_colorizing_or_waiting()
    {
        string photo = Fixtures.SaveColourful(PathOf("photo.png"), 40, 40, seed: 19);
        await using var host = await Start(new ServeSettings { Timeout = TimeSpan.FromSeconds(1), Queue = 2 });
        using var release = new ManualResetEventSlim();
        host.Server.Pool.JobStarting = _ => release.Wait(TimeSpan.FromSeconds(60));
        try
        {
            var working = host.PostMultipart(photo);
            await ServeHost.Until(() => host.Server.Pool.Busy == 1, "the worker has the first photo");
            var waiting = await host.PostMultipart(photo);
            Assert.Equal(HttpStatusCode.GatewayTimeout, waiting.StatusCode);
            Assert.Equal("photo.png: waited 1 s for a worker (--timeout) without getting one; try again later", await ServeHost.ErrorOf(waiting));
            var worked = await working;
            Assert.Equal(HttpStatusCode.GatewayTimeout, worked.StatusCode);
            Assert.Equal("photo.png: not colorized within 1 s (--timeout); try a smaller photo or max_pixels", await ServeHost.ErrorOf(worked));
        }
        finally
        {
            release.Set();
        }
        // The abandoned job waiting in the queue is skipped; the server answers the next one.
        host.Server.Pool.JobStarting = null;
        Assert.Equal(HttpStatusCode.OK, (await host.PostMultipart(photo)).StatusCode);
    }

    [Fact]
    public async Task No_temporary_file_is_written_for_large_uploads_or_failures()
    {
        AssertNoTemporaryFiles();
        string big = NoisePng("noise.png", 300, 300, seed: 20); // about 270 KB, over ASP.NET's 64 KB form buffer
        string mood = NoisePng("mood.png", 200, 200, seed: 21);
        string text = PathOf("notes.txt");
        File.WriteAllText(text, new string('x', 100_000));
        await using (var host = await Start(new ServeSettings { MaxUploadBytes = 1 << 20 }))
        {
            Assert.Equal(HttpStatusCode.OK, (await host.PostMultipart(big, global: mood, fields: ("format", "tiff"))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await host.PostRaw(File.ReadAllBytes(big), "image/png")).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await host.PostMultipart(text)).StatusCode);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await host.PostRaw(new byte[2 << 20], "image/png")).StatusCode);
            AssertNoTemporaryFiles();
        }
        AssertNoTemporaryFiles();
    }

    [Fact]
    public async Task The_page_is_served_at_the_root_with_nothing_from_elsewhere()
    {
        await using var host = await Start();
        var response = await host.Client.GetAsync("/", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        string page = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        foreach (var id in new[] { "files", "drop", "saturation", "saturation-value", "format", "global", "global-clear", "recolor", "results", "server", "result-template" })
            Assert.Contains($"id=\"{id}\"", page);
        // No CDN or other origin: every URL in the page is relative (api/...), and the policy forbids the rest.
        Assert.DoesNotMatch("(src|href)=\"(https?:)?//", page);
        Assert.Contains("default-src 'none'", string.Join(";", response.Headers.GetValues("Content-Security-Policy")));
    }

    [Fact]
    public async Task Unknown_api_paths_and_methods_are_answered()
    {
        await using var host = await Start();
        var missing = await host.Client.GetAsync("api/colourise", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("no endpoint GET /api/colourise: the API has GET /api/health and POST /api/colorize", await ServeHost.ErrorOf(missing));
        var wrongMethod = await host.Client.GetAsync("api/colorize", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        Assert.Equal(["POST"], wrongMethod.Content.Headers.Allow);
        Assert.Equal("GET /api/colorize: use POST /api/colorize", await ServeHost.ErrorOf(wrongMethod));
    }
}
