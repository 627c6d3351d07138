using Chroma.Kernels;
using Xunit;

namespace Chroma.Tests.Kernels;

public class GemmTests
{
    public static TheoryData<string, bool, bool> Cases()
    {
        var d = new TheoryData<string, bool, bool>();
        foreach (var p in new[] { "cpu", "gpu" })
            foreach (var ta in new[] { false, true })
                foreach (var tb in new[] { false, true })
                    d.Add(p, ta, tb);
        return d;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Product_matches_reference(string path, bool transA, bool transB)
    {
        var dev = TestDevices.Get(path);
        const int m = 13, n = 21, k = 17;
        var a = TestData.RoundToFloat(TestData.Uniform(10, m * k));
        var b = TestData.RoundToFloat(TestData.Uniform(11, k * n));
        var c = TestData.RoundToFloat(TestData.Uniform(12, m * n));
        using var ta = TestData.Tensor(dev, a, transA ? [k, m] : [m, k]);
        using var tb = TestData.Tensor(dev, b, transB ? [n, k] : [k, n]);
        using var tc = TestData.Tensor(dev, c, m, n);
        Gemm.Multiply(ta, tb, tc, transA, transB, alpha: 0.75f, beta: 0.5f);
        var expected = Gemm.Reference.Multiply(transA, transB, m, n, k, 0.75, a, b, 0.5, c);
        Compare.Close("gemm", expected, tc.ToArray(), 1e-5, 1e-5);
    }
}
