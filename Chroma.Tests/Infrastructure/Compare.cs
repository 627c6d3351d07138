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

/// <summary>
/// The op harness in tests: its modes return a mismatch (one line) or null, and a test fails with that line.
/// <see cref="Check"/> and <see cref="Grad"/> run one declared case on one device path; <see cref="PathsAndCases"/>
/// lists path x case for a [Theory] over an op's check cases.
/// </summary>
public static class HarnessAssert
{
    public static void Passes(string? mismatch)
    {
        if (mismatch is not null) Assert.Fail(mismatch);
    }

    /// <summary>Check mode: case <paramref name="caseName"/> of <paramref name="op"/> on <paramref name="path"/> against its float64 reference.</summary>
    public static void Check(OpDeclaration op, string path, string caseName, int seed)
    {
        using var run = op.Prepare(TestDevices.Get(path), op.Case(caseName), seed);
        Passes(OpHarness.Check(run));
    }

    /// <summary>Grad mode: the case's backward against its backward reference and central differences.</summary>
    public static void Grad(OpDeclaration op, string path, string caseName, int seed)
    {
        using var run = op.Prepare(TestDevices.Get(path), op.Case(caseName), seed);
        Passes(OpHarness.Grad(run));
    }

    /// <summary>(path, case name) for every device path and every check case of <paramref name="op"/> that <paramref name="where"/> keeps.</summary>
    public static TheoryData<string, string> PathsAndCases(OpDeclaration op, Func<OpCase, bool>? where = null)
    {
        var d = new TheoryData<string, string>();
        foreach (var path in TestDevices.Paths)
            foreach (var c in op.CheckCases.Where(where ?? (_ => true))) d.Add(path, c.Name);
        return d;
    }

    /// <summary>(op name, path, case name) over several ops: a theory that runs each through <see cref="Ops.Find"/>.</summary>
    public static TheoryData<string, string, string> OpsPathsAndCases(params OpDeclaration[] ops)
    {
        var d = new TheoryData<string, string, string>();
        foreach (var op in ops)
            foreach (var path in TestDevices.Paths)
                foreach (var c in op.CheckCases) d.Add(op.Name, path, c.Name);
        return d;
    }
}
