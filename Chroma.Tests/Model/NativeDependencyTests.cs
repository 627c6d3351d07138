using System.Diagnostics;
using System.Runtime.InteropServices;
using Xunit;

namespace Chroma.Tests.Model;

/// <summary>
/// Image decoding needs nothing beyond the .NET SDK on Linux: the SkiaSharp native library that ships
/// is the NoDependencies build, which links no libfontconfig (the GPU machine and minimal containers lack it).
/// </summary>
public sealed class NativeDependencyTests
{
    [Fact]
    public void Skia_native_library_links_no_fontconfig()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            Assert.Skip("checks the linux-x64 native library");
        string library = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libSkiaSharp.so");
        if (!File.Exists(library)) library = Path.Combine(AppContext.BaseDirectory, "libSkiaSharp.so"); // a RID-specific publish
        Assert.True(File.Exists(library), $"no libSkiaSharp.so beside the tests ({AppContext.BaseDirectory})");
        if (!File.Exists("/usr/bin/ldd")) Assert.Skip("ldd is not installed");
        var ldd = Process.Start(new ProcessStartInfo("/usr/bin/ldd", [library]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string output = ldd.StandardOutput.ReadToEnd() + ldd.StandardError.ReadToEnd();
        ldd.WaitForExit();
        Assert.Equal(0, ldd.ExitCode);
        Assert.Contains("libc.so", output); // ldd really listed the dependencies
        Assert.DoesNotContain("fontconfig", output);
        Assert.DoesNotContain("not found", output);
    }
}
