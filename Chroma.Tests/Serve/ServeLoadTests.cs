using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Chroma.Model;
using Chroma.Tests.Training;
using Xunit;

namespace Chroma.Tests.Serve;

/// <summary>
/// `chroma serve` under load: the real command in its own process (the built-in default model, the
/// CPU, 2 workers, a queue of 4, uploads up to 1 MB) and 4 times as many concurrent clients as workers,
/// for a bounded time (CHROMA_LOAD_SECONDS, default 25), sending a mix of valid photos and uploads the
/// server must refuse; a client told 503 waits the Retry-After it was given, as the page does. Every request must get an answer with the status its kind allows; the server
/// must answer its health check afterwards and stop on Ctrl-C (SIGINT; SIGTERM where the test process
/// ignores SIGINT, see <see cref="ServeProcess.SigIntIgnored"/>). The figures (requests by status,
/// latency median and 95th percentile, the server's peak resident memory) are printed and written to
/// serve-load-report.txt beside the tests.
/// Explicit: not part of the suite (it takes half a minute of both cores); scripts/load-test.sh runs it.
/// </summary>
public sealed class ServeLoadTests : IDisposable
{
    const int Workers = 2, Clients = 4 * Workers, Queue = 4, MaxUploadMb = 1;

    readonly string _dir = Directory.CreateTempSubdirectory("chroma-serve-load-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>One kind of request: how to make its body, how often it is sent, the statuses it may get.</summary>
    sealed record Kind(string Name, int Weight, Func<HttpContent> Body, string Query, HttpStatusCode[] Allowed);

    sealed record Outcome(string Kind, HttpStatusCode? Status, double Milliseconds, string? Problem);

    static HttpContent Multipart(byte[] bytes, string fileName, string field = "image")
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(bytes);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, field, fileName);
        return form;
    }

    static HttpContent Raw(byte[] bytes, string contentType)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return content;
    }

    [Fact(Explicit = true)]
    public async Task Many_clients_with_mixed_uploads_all_get_answers_and_the_server_stays_up()
    {
        var cancel = TestContext.Current.CancellationToken;
        double seconds = double.TryParse(Environment.GetEnvironmentVariable("CHROMA_LOAD_SECONDS"), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) ? s : 25;

        byte[] example = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "colorize", "colorado-national-park-1941.png"));
        byte[] grayJpeg = File.ReadAllBytes(Fixtures.SaveGrayJpeg(Path.Combine(_dir, "gray.jpg"), 320, 240, seed: 1));
        byte[] colourPng = File.ReadAllBytes(Fixtures.SaveColourful(Path.Combine(_dir, "colour.png"), 200, 150, seed: 2));
        byte[] truncated = File.ReadAllBytes(Fixtures.SaveTruncatedJpeg(Path.Combine(_dir, "cut.jpg"), seed: 3));
        byte[] huge = File.ReadAllBytes(Fixtures.SaveHugePngHeader(Path.Combine(_dir, "huge.png")));
        var rng = new Random(4);
        byte[] noise = new byte[30_000];
        rng.NextBytes(noise);
        byte[] tooLarge = new byte[(int)(1.5 * MaxUploadMb * (1 << 20))];
        rng.NextBytes(tooLarge);

        HttpStatusCode[] Only(HttpStatusCode code) => [code];
        HttpStatusCode[] OrBusy(HttpStatusCode code) => [code, HttpStatusCode.ServiceUnavailable];
        Kind[] kinds =
        [
            new("photo 600x464 PNG", 25, () => Multipart(example, "colorado.png"), "", OrBusy(HttpStatusCode.OK)),
            new("photo 320x240 JPEG raw", 15, () => Raw(grayJpeg, "image/jpeg"), "?saturation=2", OrBusy(HttpStatusCode.OK)),
            new("photo 200x150 to JPEG", 10, () => Multipart(colourPng, "colour.png"), "?format=jpeg", OrBusy(HttpStatusCode.OK)),
            new("truncated JPEG", 8, () => Multipart(truncated, "cut.jpg"), "", OrBusy(HttpStatusCode.BadRequest)),
            new("unreadable bytes", 10, () => Multipart(noise, "noise.jpg"), "", Only(HttpStatusCode.BadRequest)),
            new("too large (1.5 MB)", 8, () => Raw(tooLarge, "image/png"), "", Only(HttpStatusCode.RequestEntityTooLarge)),
            new("10 gigapixel header", 8, () => Multipart(huge, "huge.png"), "", Only(HttpStatusCode.RequestEntityTooLarge)),
            new("wrong type", 8, () => Raw("not a photo"u8.ToArray(), "text/plain"), "", Only(HttpStatusCode.UnsupportedMediaType)),
            new("bad saturation", 8, () => Multipart(colourPng, "colour.png"), "?saturation=9", Only(HttpStatusCode.BadRequest)),
        ];
        int totalWeight = kinds.Sum(k => k.Weight);

        using var serve = await ServeProcess.Start("--port", "0", "--device", "cpu", "--workers", $"{Workers}", "--queue", $"{Queue}",
            "--max-upload-mb", $"{MaxUploadMb}", "--timeout", "60");
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 4 * Clients }) { BaseAddress = serve.Url, Timeout = TimeSpan.FromSeconds(120) };

        // Memory sampled while the clients run; VmHWM gives the peak at the end.
        long rssMax = 0;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                if (serve.ResidentBytes() is { } rss) rssMax = Math.Max(rssMax, rss);
                try { await Task.Delay(100, sampling.Token); } catch (OperationCanceledException) { }
            }
        }, cancel);

        var outcomes = new ConcurrentBag<Outcome>();
        int sent = 0, retryAfterMissing = 0;
        var clock = Stopwatch.StartNew();
        async Task Client(int id)
        {
            var random = new Random(100 + id);
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                int pick = random.Next(totalWeight);
                var kind = kinds.First(k => (pick -= k.Weight) < 0);
                Interlocked.Increment(ref sent);
                long started = Stopwatch.GetTimestamp();
                try
                {
                    using var content = kind.Body();
                    using var response = await client.PostAsync("api/colorize" + kind.Query, content, cancel);
                    await response.Content.ReadAsByteArrayAsync(cancel);
                    outcomes.Add(new Outcome(kind.Name, response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds,
                        kind.Allowed.Contains(response.StatusCode) ? null : $"{kind.Name}: {(int)response.StatusCode}"));
                    if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                    {
                        // As the page does: wait as long as the server says before the next request.
                        if (response.Headers.RetryAfter?.Delta is { } wait) await Task.Delay(wait, cancel);
                        else Interlocked.Increment(ref retryAfterMissing);
                    }
                }
                catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
                {
                    outcomes.Add(new Outcome(kind.Name, null, Stopwatch.GetElapsedTime(started).TotalMilliseconds, $"{kind.Name}: no answer ({e.GetType().Name}: {e.Message})"));
                }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(Client));
        double elapsed = clock.Elapsed.TotalSeconds;

        using var health = await client.GetAsync("api/health", cancel);
        string healthBody = await health.Content.ReadAsStringAsync(cancel);
        long? peak = serve.PeakResidentBytes();
        sampling.Cancel();
        await sampler;
        var (signal, expectedExit, exit) = await serve.Stop(TimeSpan.FromSeconds(30));

        var all = outcomes.ToList();
        var answered = all.Where(o => o.Status is not null).ToList();
        var colorized = answered.Where(o => o.Status == HttpStatusCode.OK).ToList();
        static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
        static string Latency(IEnumerable<Outcome> o)
        {
            var ms = o.Select(x => x.Milliseconds).Order().ToList();
            return string.Create(CultureInfo.InvariantCulture, $"median {Percentile(ms, 0.5):F0} ms, p95 {Percentile(ms, 0.95):F0} ms (n = {ms.Count})");
        }
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"chroma serve load test: {elapsed:F1} s, {Clients} concurrent clients, `chroma serve --device cpu --workers {Workers} --queue {Queue} --max-upload-mb {MaxUploadMb}` (built-in default model), {Environment.ProcessorCount} cores");
        report.AppendLine(CultureInfo.InvariantCulture, $"requests sent: {sent}, answered: {answered.Count}, unanswered: {all.Count - answered.Count}");
        report.AppendLine("answered by status: " + string.Join(", ", answered.GroupBy(o => (int)o.Status!).OrderBy(g => g.Key).Select(g => $"{g.Key}: {g.Count()}")));
        foreach (var kind in kinds)
        {
            var of = all.Where(o => o.Kind == kind.Name).ToList();
            report.AppendLine($"  {kind.Name,-24} {of.Count,5} sent; " + string.Join(", ", of.GroupBy(o => o.Status is { } c ? ((int)c).ToString(CultureInfo.InvariantCulture) : "none").OrderBy(g => g.Key).Select(g => $"{g.Key}: {g.Count()}")));
        }
        report.AppendLine($"latency, all answered: {Latency(answered)}");
        report.AppendLine($"latency, colorized (200): {Latency(colorized)}");
        report.AppendLine($"latency, refused before the queue (400/413/415 of kinds that cannot be queued): {Latency(answered.Where(o => o.Status is not (HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable) && kinds.First(k => k.Name == o.Kind).Allowed.Length == 1))}");
        report.AppendLine(CultureInfo.InvariantCulture, $"colorized per second: {colorized.Count / elapsed:F2}");
        report.AppendLine(CultureInfo.InvariantCulture, $"server memory: peak resident {(peak is { } p ? $"{p / 1048576.0:F0} MB" : "unknown")} (VmHWM), largest sample {rssMax / 1048576.0:F0} MB");
        report.AppendLine($"health afterwards: {(int)health.StatusCode} {healthBody}");
        report.AppendLine($"exit code after {signal}: {(exit is { } x ? x.ToString(CultureInfo.InvariantCulture) : "none, still running after 30 s")}");
        string text = report.ToString();
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "serve-load-report.txt"), text);
        TestContext.Current.TestOutputHelper?.WriteLine(text);
        Console.WriteLine(text);

        var problems = all.Where(o => o.Problem is not null).Select(o => o.Problem!).Distinct().Take(10).ToList();
        Assert.True(problems.Count == 0, $"{text}\nunexpected outcomes:\n{string.Join('\n', problems)}\nserver stderr:\n{serve.Stderr}");
        Assert.Equal(sent, answered.Count);
        Assert.Equal(0, retryAfterMissing);
        Assert.NotEmpty(colorized);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(expectedExit, exit);
    }
}
