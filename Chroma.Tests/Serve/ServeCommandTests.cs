using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Chroma.Tests.Training;
using Xunit;

namespace Chroma.Tests.Serve;

/// <summary>`chroma serve` on the command line: its options' checks, the URL on stdout, Ctrl-C.</summary>
public sealed class ServeCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("chroma-serve-cli-").FullName;
    readonly string _model;

    public ServeCommandTests() => _model = Fixtures.SaveTinyModel(Path.Combine(_dir, "tiny.safetensors"));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("--port 70000", "--port must be between 0 and 65535")]
    [InlineData("--port http", "--port: \"http\" is not a whole number")]
    [InlineData("--workers 0", "--workers must be between 1 and 64")]
    [InlineData("--queue 0", "--queue must be between 1 and 100000")]
    [InlineData("--max-upload-mb 0", "--max-upload-mb must be between 1 and 2047")]
    [InlineData("--max-pixels 100", "--max-pixels must be at least 4096")]
    [InlineData("--max-image-pixels 100", "--max-image-pixels must be between 4096 and 250000000")]
    [InlineData("--timeout 0", "--timeout must be more than 0")]
    [InlineData("--timeout 1,5", "--timeout: \"1,5\" is not a number; use a dot: 1.5")]
    [InlineData("--host example.org", "--host example.org: not an IP address; use 127.0.0.1 (this machine only)")]
    [InlineData("--device tpu", "--device: \"tpu\" is not a device")]
    [InlineData("--prot 80", "chroma serve: unknown option '--prot' (did you mean --port?)")]
    public void Bad_options_are_usage_errors_before_anything_starts(string options, string message)
    {
        var r = Cli.Cli.Run(["serve", "--model", _model, .. options.Split(' ')]);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains(message, r.Stderr);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void A_missing_model_is_a_usage_error()
    {
        var r = Cli.Cli.Run("serve", "--model", Path.Combine(_dir, "missing.safetensors"));
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("--model", r.Stderr);
        Assert.Contains("missing.safetensors: not found", r.Stderr);
    }

    [Fact]
    public void A_port_in_use_is_an_error_naming_it()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var r = Cli.Cli.Run("serve", "--model", _model, "--device", "cpu", "--port", port.ToString());
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains($"cannot listen on 127.0.0.1 port {port}", r.Stderr);
    }

    [Fact]
    public void Help_lists_the_options()
    {
        var r = Cli.Cli.Run("serve", "--help");
        Assert.Equal(0, r.ExitCode);
        foreach (var option in new[] { "--port", "--host", "--model", "--device", "--workers", "--queue", "--max-upload-mb", "--max-pixels", "--max-image-pixels", "--timeout" })
            Assert.Contains(option, r.Stdout);
    }

    [Fact]
    public async Task Prints_the_url_serves_and_exits_130_on_ctrl_c_or_0_on_sigterm()
    {
        using var serve = await ServeProcess.Start("--port", "0", "--model", _model, "--device", "cpu", "--workers", "2", "--queue", "3");
        Assert.Equal($"{serve.Url}\n", serve.Stdout.Replace("\r", ""));
        Assert.Equal("127.0.0.1", serve.Url.Host);
        await ServeHost.Until(() => serve.Stderr.Contains("chroma serve: tiny.safetensors on CPU"), "the server says what it serves on stderr");

        using var client = new HttpClient { BaseAddress = serve.Url };
        using var health = JsonDocument.Parse(await client.GetStringAsync("api/health", TestContext.Current.CancellationToken));
        Assert.Equal(2, health.RootElement.GetProperty("workers").GetInt32());
        Assert.Equal(3, health.RootElement.GetProperty("queue").GetInt32());
        string photo = Fixtures.SaveColourful(Path.Combine(_dir, "photo.png"), 30, 20, seed: 1);
        var content = new ByteArrayContent(File.ReadAllBytes(photo));
        content.Headers.ContentType = new("image/png");
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("api/colorize", content, TestContext.Current.CancellationToken)).StatusCode);

        var (signal, expected, exit) = await serve.Stop(TimeSpan.FromSeconds(30));
        Assert.True(exit == expected, $"after {signal}: exit code {exit?.ToString() ?? "none (still running)"}, expected {expected}\n{serve.Stderr}");
        Assert.Contains("chroma serve: stopping", serve.Stderr);
        Assert.DoesNotContain("error", serve.Stderr);
    }
}
