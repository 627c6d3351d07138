using Chroma.Kernels.Harness;
using Xunit;

namespace Chroma.Tests;

/// <summary>
/// Element-wise comparison with a mixed tolerance |a - e| &lt;= atol + rtol * |e|, reporting the worst element
/// (<see cref="Closeness.Mismatch(string, ReadOnlySpan{double}, ReadOnlySpan{double}, double, double)"/>, the op harness's comparison).
/// </summary>
public static class Compare
{
    public static void Close(string what, ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double rtol, double atol) =>
        HarnessAssert.Passes(Closeness.Mismatch(what, expected, actual, rtol, atol));

    public static void Close(string what, ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double rtol, double atol) =>
        HarnessAssert.Passes(Closeness.Mismatch(what, expected, actual, rtol, atol));
}

/// <summary>The op harness's modes return a mismatch (one line) or null; a test fails with that line.</summary>
public static class HarnessAssert
{
    public static void Passes(string? mismatch)
    {
        if (mismatch is not null) Assert.Fail(mismatch);
    }
}
