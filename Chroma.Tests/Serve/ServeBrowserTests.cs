using System.Diagnostics;
using Chroma.Model;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using Xunit;

namespace Chroma.Tests.Serve;

/// <summary>
/// The page of `chroma serve` in a real browser: Debian's Chromium, headless, driven through
/// /usr/bin/chromedriver (scripts/install-chromium.sh installs both), against the server hosted on a
/// free loopback port with the built-in default model. Without Chromium these tests fail and say how to
/// install it, unless CHROMA_SKIP_BROWSER=1 (then they are skipped). With CHROMA_SERVE_SCREENSHOT=FILE
/// the first test also saves its screenshot there (scripts/serve-screenshot.sh makes
/// docs/serve-screenshot.png this way); it always leaves one beside the tests, serve-screenshot.png.
/// </summary>
public sealed class ServeBrowserTests(ServeBrowserTests.Browser browser) : IClassFixture<ServeBrowserTests.Browser>
{
    /// <summary>One Chromium and one server for the class: starting Chromium takes seconds.</summary>
    public sealed class Browser : IAsyncLifetime
    {
        public const string ChromiumPath = "/usr/bin/chromium", DriverPath = "/usr/bin/chromedriver";

        public string Folder { get; } = Directory.CreateTempSubdirectory("chroma-serve-browser-").FullName;

        /// <summary>Why the browser cannot run here, or null.</summary>
        public string? Missing { get; private set; }

        internal ServeHost Host { get; private set; } = null!;
        public ChromeDriver Driver { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            var absent = new[] { ChromiumPath, DriverPath }.Where(p => !File.Exists(p)).ToList();
            if (absent.Count > 0)
            {
                Missing = $"the browser test needs Debian's chromium and chromium-driver, and {string.Join(" and ", absent)} {(absent.Count == 1 ? "does" : "do")} not exist: " +
                          "install them with `sudo bash scripts/install-chromium.sh` (CI does), or set CHROMA_SKIP_BROWSER=1 to skip this test.";
                return;
            }
            Host = await ServeHost.Start(model: null);
            var options = new ChromeOptions { BinaryLocation = ChromiumPath };
            options.AddArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,1080", $"--user-data-dir={Directory.CreateDirectory(Path.Combine(Folder, "profile")).FullName}");
            // The driver given by path: Selenium Manager (which would look for one online) is never run.
            var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(DriverPath)!, Path.GetFileName(DriverPath));
            service.SuppressInitialDiagnosticInformation = true;
            service.HideCommandPromptWindow = true;
            Driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(120));
            Driver.Manage().Timeouts().AsynchronousJavaScript = TimeSpan.FromSeconds(60);
        }

        public async ValueTask DisposeAsync()
        {
            Driver?.Quit();
            Driver?.Dispose();
            if (Host is not null) await Host.DisposeAsync();
            Directory.Delete(Folder, recursive: true);
        }
    }

    ChromeDriver Driver => browser.Driver;
    ServeHost Host => browser.Host;

    void RequireBrowser()
    {
        if (browser.Missing is not { } why) return;
        if (Environment.GetEnvironmentVariable("CHROMA_SKIP_BROWSER") == "1") Assert.Skip($"CHROMA_SKIP_BROWSER=1: {why}");
        Assert.Fail(why);
    }

    /// <summary>A fresh page: loaded, and its health request answered (body[data-ready]).</summary>
    void OpenPage()
    {
        Driver.Navigate().GoToUrl(Host.Url);
        Until(() => Driver.FindElement(By.TagName("body")).GetDomAttribute("data-ready") == "true", "the page has read api/health");
    }

    static void Until(Func<bool> condition, string what, double seconds = 120)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed.TotalSeconds > seconds) throw new TimeoutException($"timed out after {seconds} s waiting until {what}");
            Thread.Sleep(50);
        }
    }

    /// <summary>The result cards, once none of them is waiting or running any more.</summary>
    IReadOnlyList<IWebElement> FinishedResults(int count)
    {
        Until(() => Driver.FindElements(By.CssSelector("#results .result")) is var all && all.Count == count
                    && all.All(r => r.GetDomAttribute("data-state") is "done" or "error"), $"{count} photo(s) are done");
        return Driver.FindElements(By.CssSelector("#results .result"));
    }

    /// <summary>The bytes behind an image's src (a blob: URL), fetched by the page itself.</summary>
    byte[] ImageBytes(IWebElement image)
    {
        var base64 = (string?)Driver.ExecuteAsyncScript("""
            const [img, done] = arguments;
            fetch(img.src).then(r => r.arrayBuffer()).then(buffer => {
              const bytes = new Uint8Array(buffer);
              let text = '';
              for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
              done(btoa(text));
            }).catch(e => done('error: ' + e));
            """, image) ?? "error: the script returned nothing";
        Assert.False(base64.StartsWith("error:", StringComparison.Ordinal), base64);
        return Convert.FromBase64String(base64);
    }

    static LoadedImage Decode(byte[] bytes) => ImageFile.Load(new MemoryStream(bytes), "result");

    /// <summary>What POST api/colorize returns for the file (with the page's settings), as 8-bit RGB.</summary>
    async Task<byte[]> FromApi(string photo, string? global = null, params (string, string)[] fields)
    {
        var response = await Host.PostMultipart(photo, global, fields: fields);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        return ServeHost.Rgb24(Decode(await response.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken)));
    }

    string Example()
    {
        string path = Path.Combine(browser.Folder, "colorado-national-park-1941.png");
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "colorize", "colorado-national-park-1941.png"), path, overwrite: true);
        return path;
    }

    [Fact]
    public async Task A_chosen_photo_is_shown_before_and_after_with_the_colorized_result_and_a_download()
    {
        RequireBrowser();
        string photo = Example();
        OpenPage();
        Driver.FindElement(By.Id("files")).SendKeys(photo);
        var result = Assert.Single(FinishedResults(1));
        Assert.Equal("done", result.GetDomAttribute("data-state"));
        Assert.Equal("colorado-national-park-1941.png", result.FindElement(By.CssSelector(".name")).Text);
        Assert.Equal(("600", "464"), (result.GetDomAttribute("data-width"), result.GetDomAttribute("data-height")));

        // The image shown is the one the API returns for the same file, pixel for pixel, and it has colour.
        var after = result.FindElement(By.CssSelector("img.after"));
        var shown = Decode(ImageBytes(after));
        Assert.Equal(await FromApi(photo), ServeHost.Rgb24(shown));
        int n = shown.Width * shown.Height;
        double chroma = 0;
        for (int i = 0; i < n; i++)
        {
            var (_, a, b) = LabColor.FromRgb(shown.Rgb[i], shown.Rgb[n + i], shown.Rgb[2 * n + i]);
            chroma += Math.Sqrt(a * a + b * b) / n;
        }
        Assert.True(chroma > 5, $"the shown result has a mean chroma of {chroma:F2}: not colorized");
        // The original (gray) is the "before" image, the same size.
        var before = Decode(ImageBytes(result.FindElement(By.CssSelector("img.before"))));
        Assert.Equal((600, 464), (before.Width, before.Height));
        Assert.Equal(File.ReadAllBytes(photo), ImageBytes(result.FindElement(By.CssSelector("img.before"))));

        // The download link is the full-resolution result, named after the photo.
        var download = result.FindElement(By.CssSelector("a.download"));
        Assert.True(download.Displayed);
        Assert.Equal(after.GetDomAttribute("src"), download.GetDomAttribute("href"));
        Assert.Equal("colorado-national-park-1941-color.png", download.GetDomAttribute("download"));

        // The slider moves the line between before and after.
        var compare = result.FindElement(By.CssSelector(".compare"));
        Driver.ExecuteScript("const s = arguments[0]; s.value = 30; s.dispatchEvent(new Event('input'));", compare.FindElement(By.CssSelector(".compare-slider")));
        Assert.Equal("30%", (string?)Driver.ExecuteScript("return arguments[0].style.getPropertyValue('--pos');", compare));
        Driver.ExecuteScript("const s = arguments[0]; s.value = 50; s.dispatchEvent(new Event('input'));", compare.FindElement(By.CssSelector(".compare-slider")));

        var screenshot = Driver.GetScreenshot();
        screenshot.SaveAsFile(Path.Combine(AppContext.BaseDirectory, "serve-screenshot.png"));
        if (Environment.GetEnvironmentVariable("CHROMA_SERVE_SCREENSHOT") is { Length: > 0 } target) screenshot.SaveAsFile(target);
    }

    [Fact]
    public async Task An_unreadable_file_shows_the_api_message()
    {
        RequireBrowser();
        string broken = Path.Combine(browser.Folder, "broken.jpg");
        File.WriteAllText(broken, "this is a text file named like a photo");
        OpenPage();
        Driver.FindElement(By.Id("files")).SendKeys(broken);
        var result = Assert.Single(FinishedResults(1));
        Assert.Equal("error", result.GetDomAttribute("data-state"));
        var response = await Host.PostMultipart(broken);
        string message = await ServeHost.ErrorOf(response);
        Assert.Equal("broken.jpg: not an image or an unsupported format (JPEG, PNG, WebP, BMP, GIF and TIFF are supported)", message);
        Assert.Equal(message, result.FindElement(By.CssSelector(".error")).Text);
        Assert.False(result.FindElement(By.CssSelector(".compare")).Displayed);
        Assert.False(result.FindElement(By.CssSelector("a.download")).Displayed);
    }

    [Fact]
    public async Task Several_photos_the_global_photo_and_the_saturation_reach_the_server()
    {
        RequireBrowser();
        string photo = Example();
        string second = Path.Combine(browser.Folder, "second.png");
        ImageFile.Save(second, Training.Fixtures.ColourfulRgb(96, 80, seed: 2), 96, 80, overwrite: true);
        string mood = Path.Combine(browser.Folder, "mood.png");
        ImageFile.Save(mood, Training.Fixtures.ColourfulRgb(120, 90, seed: 3, cls: 2), 120, 90, overwrite: true);
        OpenPage();

        // The slider starts at the model's own saturation, from api/health.
        float modelSaturation = Host.Colorizers[0].Saturation;
        Assert.Equal(modelSaturation, float.Parse(Driver.FindElement(By.Id("saturation")).GetDomProperty("value")!, System.Globalization.CultureInfo.InvariantCulture));

        // Two photos at once, their colours taken from a third.
        Driver.FindElement(By.Id("global")).SendKeys(mood);
        Driver.FindElement(By.Id("files")).SendKeys(photo + "\n" + second);
        var results = FinishedResults(2);
        Assert.All(results, r => Assert.Equal("done", r.GetDomAttribute("data-state")));
        Assert.Equal(await FromApi(photo, mood), ServeHost.Rgb24(Decode(ImageBytes(results[0].FindElement(By.CssSelector("img.after"))))));
        Assert.Equal(await FromApi(second, mood), ServeHost.Rgb24(Decode(ImageBytes(results[1].FindElement(By.CssSelector("img.after"))))));

        // Saturation 0, and no global photo: a gray result, as the API gives it.
        Driver.FindElement(By.Id("global-clear")).Click();
        Driver.ExecuteScript("const s = document.getElementById('saturation'); s.value = 0; s.dispatchEvent(new Event('input'));");
        Assert.Equal("0.00", Driver.FindElement(By.Id("saturation-value")).Text);
        Driver.FindElement(By.Id("files")).SendKeys(second);
        var gray = FinishedResults(3)[2];
        Assert.Equal(await FromApi(second, null, ("saturation", "0")), ServeHost.Rgb24(Decode(ImageBytes(gray.FindElement(By.CssSelector("img.after"))))));
    }
}
