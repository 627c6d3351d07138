using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using Chroma.Cli.Serve;
using Chroma.Model;
using Xunit;

namespace Chroma.Tests.Serve;

/// <summary>
/// A <see cref="ColorizeServer"/> hosted in the test process on 127.0.0.1 with a free port (real
/// Kestrel, so its body limit and the sockets are those `chroma serve` has), and an HttpClient for it.
/// </summary>
sealed class ServeHost : IAsyncDisposable
{
    ServeHost(ColorizeServer server, IReadOnlyList<Colorizer> colorizers)
    {
        Server = server;
        Colorizers = colorizers;
        Client = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(120) };
    }

    public ColorizeServer Server { get; }
    public HttpClient Client { get; }

    /// <summary>The workers' colorizers (owned by the server).</summary>
    public IReadOnlyList<Colorizer> Colorizers { get; }

    public Uri Url => Server.Url!;

    /// <summary>Starts a server on <paramref name="model"/> (a file; null: the built-in default) with <paramref name="workers"/> CPU colorizers.</summary>
    public static async Task<ServeHost> Start(string? model, ServeSettings? settings = null, int workers = 1)
    {
        var colorizers = Enumerable.Range(0, workers)
            .Select(_ => model is null ? Colorizer.LoadDefault(CpuDevice.Instance) : Colorizer.Load(model, CpuDevice.Instance))
            .ToList();
        var server = ColorizeServer.Create((settings ?? new ServeSettings()) with
        {
            Host = "127.0.0.1", Port = 0, ModelName = model is null ? "chroma-default (built in)" : Path.GetFileName(model), DeviceName = CpuDevice.Instance.Name,
        }, colorizers);
        await server.StartAsync();
        return new ServeHost(server, colorizers);
    }

    /// <summary>POST api/colorize with a multipart body: the file as 'image', optionally 'global', and form fields.</summary>
    public Task<HttpResponseMessage> PostMultipart(string? image, string? global = null, string query = "", params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        if (image is not null) form.Add(FileContent(image), "image", Path.GetFileName(image));
        if (global is not null) form.Add(FileContent(global), "global", Path.GetFileName(global));
        foreach (var (name, value) in fields) form.Add(new StringContent(value), name);
        return Client.PostAsync("api/colorize" + query, form);
    }

    /// <summary>POST api/colorize with the bytes themselves as the body.</summary>
    public Task<HttpResponseMessage> PostRaw(byte[] body, string? contentType, string query = "")
    {
        var content = new ByteArrayContent(body);
        if (contentType is not null) content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return Client.PostAsync("api/colorize" + query, content);
    }

    static ByteArrayContent FileContent(string path)
    {
        var content = new ByteArrayContent(File.ReadAllBytes(path));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    /// <summary>The "error" of a JSON error answer.</summary>
    public static async Task<string> ErrorOf(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("error").GetString()!;
    }

    /// <summary>Waits (up to 30 s) until <paramref name="condition"/> holds.</summary>
    public static async Task Until(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(10);
        }
    }

    /// <summary>8-bit interleaved RGB of a decoded image (PNG decodes to exactly the bytes that were encoded).</summary>
    public static byte[] Rgb24(LoadedImage image)
    {
        int plane = image.Width * image.Height;
        var rgb = new byte[3 * plane];
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                rgb[3 * i + c] = (byte)Math.Round(image.Rgb[c * plane + i] * 255f);
        return rgb;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }
}
