namespace Chroma.Kernels;

/// <summary>
/// 2-D convolution (cross-correlation, as in every deep learning framework) with a square kernel,
/// zero padding and equal strides along both axes.
/// <code>
/// x [N, Cin, H, W]    w [Cout, Cin, K, K]    b [Cout]    y [N, Cout, Ho, Wo]
/// Ho = (H + 2 pad - K) / stride + 1,  Wo likewise
///
/// forward:  y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] * x[n, c, i*stride - pad + u, j*stride - pad + v]
///           (x outside [0,H) x [0,W) reads as 0)
/// backward: db[o]     += sum_{n,i,j} dy[n,o,i,j]
///           dw[o,c,u,v] += sum_{n,i,j} dy[n,o,i,j] * x[n, c, i*stride - pad + u, j*stride - pad + v]
///           dx[n,c,p,q] += sum of dy[n,o,i,j] * w[o,c,u,v] over all (o,i,j,u,v) with
///                          i*stride - pad + u = p and j*stride - pad + v = q
/// </code>
/// Both paths lower the convolution to matrix products (im2col): the columns of one image are the
/// matrix cols [Cin*K*K, Ho*Wo] whose column (i,j) holds the input patch under output pixel (i,j), so
/// <code>
/// y[n]  = W [Cout, Cin*K*K] * cols + b          dW += dY[n] * cols^T
/// dcols = W^T * dY[n],  then col2im adds every column entry back into the dx pixel it was read from
/// </code>
/// Images are processed in chunks (several whole images side by side when they are small, groups
/// of output rows when one image's columns are large) so the column buffer stays bounded. A 1x1
/// stride-1 unpadded convolution needs no im2col on one image: x[n] already is cols [Cin, H*W].
/// </summary>
public static partial class Conv2d
{
    /// <summary>Output size along one axis: (input + 2*padding - kernel) / stride + 1.</summary>
    /// <exception cref="ArgumentException">A size is out of range, or the padded input is smaller than the kernel.</exception>
    public static int OutputSize(int input, int kernel, int stride, int padding)
    {
        if (input < 1) throw new ArgumentException($"Conv2d: input size must be at least 1, got {input}.", nameof(input));
        if (kernel < 1) throw new ArgumentException($"Conv2d: kernel size must be at least 1, got {kernel}.", nameof(kernel));
        if (stride < 1) throw new ArgumentException($"Conv2d: stride must be at least 1, got {stride}.", nameof(stride));
        if (padding < 0) throw new ArgumentException($"Conv2d: padding must be at least 0, got {padding}.", nameof(padding));
        long padded = (long)input + 2L * padding;
        if (padded < kernel)
            throw new ArgumentException($"Conv2d: input size {input} with padding {padding} is smaller than the kernel size {kernel}.", nameof(input));
        return (int)((padded - kernel) / stride + 1);
    }

    /// <summary>
    /// y = conv(x, w) + b. <paramref name="y"/> is overwritten; <paramref name="b"/> may be null (no bias).
    /// </summary>
    /// <param name="x">Input [N, Cin, H, W].</param>
    /// <param name="w">Weights [Cout, Cin, K, K].</param>
    /// <param name="b">Bias [Cout], or null.</param>
    /// <param name="y">Output [N, Cout, Ho, Wo], Ho and Wo from <see cref="OutputSize"/>.</param>
    /// <param name="relu">Write max(0, conv(x, w) + b) instead: the ReLU of a layer whose batch norm was folded into w and b.</param>
    public static void Forward(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int padding, bool relu = false) =>
        Forward(x, w, b, y, stride, padding, algorithm: null, relu: relu);

    /// <summary><see cref="Forward(Tensor, Tensor, Tensor?, Tensor, int, int, bool)"/> with the CPU algorithm forced (tests; null: <see cref="ChooseCpuAlgorithm"/>).</summary>
    internal static void Forward(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int padding, CpuAlgorithm? algorithm,
        Gemm.CpuKernel kernel = Gemm.CpuKernel.Auto, bool relu = false)
    {
        const string op = "Conv2d.Forward";
        Check.SameDevice(op, x, w, b, y);
        var s = Shape(op, x, w, stride, padding);
        if (b is not null) Check.Shape(op, "bias b", b, s.Cout);
        Check.Shape(op, "output y", y, s.N, s.Cout, s.Ho, s.Wo);
        if (y.Length == 0) return;
        if (x.Device is GpuDevice gpu) ForwardGpu(gpu, s, x, w, b, y, relu);
        else ForwardCpu(s, x, w, b, y, CheckAlgorithm(s, algorithm), kernel, relu);
    }

    /// <summary>
    /// Accumulates the gradients of a convolution given the output gradient <paramref name="dy"/>:
    /// dx += (skipped when null, e.g. for the first layer), dw +=, db += (skipped when null).
    /// </summary>
    /// <param name="x">The forward input [N, Cin, H, W].</param>
    /// <param name="w">Weights [Cout, Cin, K, K].</param>
    /// <param name="dy">Output gradient [N, Cout, Ho, Wo].</param>
    /// <param name="dx">Input gradient [N, Cin, H, W], or null.</param>
    /// <param name="dw">Weight gradient [Cout, Cin, K, K].</param>
    /// <param name="db">Bias gradient [Cout], or null.</param>
    public static void Backward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db, int stride, int padding) =>
        Backward(x, w, dy, dx, dw, db, stride, padding, algorithm: null);

    /// <summary><see cref="Backward(Tensor, Tensor, Tensor, Tensor?, Tensor, Tensor?, int, int)"/> with the CPU algorithm of the input gradient forced (tests).</summary>
    internal static void Backward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db, int stride, int padding, CpuAlgorithm? algorithm,
        Gemm.CpuKernel kernel = Gemm.CpuKernel.Auto)
    {
        const string op = "Conv2d.Backward";
        Check.SameDevice(op, x, w, dy, dx, dw, db);
        var s = Shape(op, x, w, stride, padding);
        Check.Shape(op, "output gradient dy", dy, s.N, s.Cout, s.Ho, s.Wo);
        if (dx is not null) Check.Shape(op, "input gradient dx", dx, s.N, s.Cin, s.H, s.W);
        Check.Shape(op, "weight gradient dw", dw, s.Cout, s.Cin, s.K, s.K);
        if (db is not null) Check.Shape(op, "bias gradient db", db, s.Cout);
        if (dy.Length == 0) return;
        if (x.Device is GpuDevice gpu) BackwardGpu(gpu, s, x, w, dy, dx, dw, db);
        else BackwardCpu(s, x, w, dy, dx, dw, db, CheckAlgorithm(s, algorithm), kernel);
    }

    static CpuAlgorithm CheckAlgorithm(in ConvArgs s, CpuAlgorithm? forced)
    {
        if (forced is not { } a) return ChooseCpuAlgorithm(s);
        if (a == CpuAlgorithm.Winograd4x4 && !(s.K == 3 && s.Stride == 1 && s.Pad <= 2))
            throw new ArgumentException($"Conv2d: Winograd needs a 3x3 kernel, stride 1 and padding 0..2, got {s.K}x{s.K}, stride {s.Stride}, padding {s.Pad}.");
        return a;
    }

    /// <summary>Checks x and w against each other and derives every size of the convolution.</summary>
    static ConvArgs Shape(string op, Tensor x, Tensor w, int stride, int padding)
    {
        Check.Rank(op, "input x", x, 4);
        Check.Rank(op, "weight w", w, 4);
        if (stride < 1) throw new ArgumentException($"{op}: stride must be at least 1, got {stride}.", nameof(stride));
        if (padding < 0) throw new ArgumentException($"{op}: padding must be at least 0, got {padding}.", nameof(padding));
        int n = x.Dim(0), cin = x.Dim(1), h = x.Dim(2), wd = x.Dim(3);
        int cout = w.Dim(0), k = w.Dim(2);
        if (w.Dim(3) != k) throw new ArgumentException($"{op}: weight w must have a square kernel [Cout, Cin, K, K], got {w.ShapeString}.");
        if (w.Dim(1) != cin)
            throw new ArgumentException($"{op}: weight w {w.ShapeString} expects {w.Dim(1)} input channels, but input x {x.ShapeString} has {cin}.");
        if (k < 1) throw new ArgumentException($"{op}: weight w {w.ShapeString} has an empty kernel.");
        if (cin < 1 || h < 1 || wd < 1) throw new ArgumentException($"{op}: input x {x.ShapeString} has no channels or an empty image.");
        if (h + 2L * padding < k || wd + 2L * padding < k)
            throw new ArgumentException($"{op}: input x {x.ShapeString} with padding {padding} is smaller than the {k}x{k} kernel.");
        int ho = OutputSize(h, k, stride, padding), wo = OutputSize(wd, k, stride, padding);
        return new ConvArgs(n, cin, h, wd, cout, k, stride, padding, ho, wo, 0, n, 0, ho);
    }

    /// <summary>
    /// Splits the batch into chunks whose column buffer [Cin*K*K, columns] holds about
    /// <paramref name="budget"/> floats: several whole images side by side when one image's columns
    /// fit (and, whatever the budget, at least <paramref name="minColumns"/> columns when images are
    /// small, so the matrix products stay wide), else groups of output rows of one image.
    /// </summary>
    /// <returns>Images per chunk (1 when splitting rows) and output rows per chunk (Ho for whole images).</returns>
    internal static (int Images, int Rows) PlanChunks(in ConvArgs s, long budget, int minColumns)
    {
        long ckk = s.Ckk, pixels = (long)s.Ho * s.Wo;
        if (ckk * pixels <= budget || pixels < minColumns)
        {
            long byBudget = budget / Math.Max(1, ckk * pixels);
            long byWidth = (minColumns + pixels - 1) / pixels;
            return ((int)Math.Clamp(Math.Max(byBudget, byWidth), 1, Math.Max(1, s.N)), s.Ho);
        }
        long rows = Math.Max(budget / (ckk * s.Wo), (minColumns + s.Wo - 1) / s.Wo);
        return (1, (int)Math.Clamp(rows, 1, s.Ho));
    }

    /// <summary>
    /// Sizes of one convolution and the chunk being processed (images [Image0, Image0+Images),
    /// output rows [Row0, Row0+Rows) of each), passed to GPU kernels as one struct (public because
    /// ILGPU's CPU accelerator emits code in another assembly that must see kernel parameter types).
    /// </summary>
    public readonly record struct ConvArgs(int N, int Cin, int H, int W, int Cout, int K, int Stride, int Pad, int Ho, int Wo,
        int Image0, int Images, int Row0, int Rows)
    {
        /// <summary>Rows of the column matrix: one per (input channel, kernel row, kernel column).</summary>
        public int Ckk => Cin * K * K;
        public int HW => H * W;
        public int HoWo => Ho * Wo;
        /// <summary>Columns one image contributes to the chunk.</summary>
        public int ChunkPixels => Rows * Wo;
        /// <summary>Columns of the chunk's column matrix [Ckk, Width]: image-major, then output row, then x.</summary>
        public int Width => Images * Rows * Wo;
        /// <summary>1x1 stride-1 unpadded: the columns of one image are the image itself.</summary>
        public bool IsPointwise => K == 1 && Stride == 1 && Pad == 0;
        /// <summary>First input row the chunk's output rows read.</summary>
        public int InputRow0 => Row0 * Stride - Pad < 0 ? 0 : Row0 * Stride - Pad;
        /// <summary>One past the last input row the chunk's output rows read.</summary>
        public int InputRowEnd => (Row0 + Rows - 1) * Stride - Pad + K > H ? H : (Row0 + Rows - 1) * Stride - Pad + K;
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        /// <summary>Direct convolution; <paramref name="bias"/> may be null. Returns y [N, Cout, Ho, Wo].</summary>
        public static double[] Forward(double[] x, int n, int cin, int h, int w, double[] weight, double[]? bias,
            int cout, int k, int stride, int padding)
        {
            if (x.Length != n * cin * h * w) throw new ArgumentException($"Conv2d.Reference: x has {x.Length} values, expected {n * cin * h * w}.");
            if (weight.Length != cout * cin * k * k) throw new ArgumentException($"Conv2d.Reference: weight has {weight.Length} values, expected {cout * cin * k * k}.");
            if (bias is not null && bias.Length != cout) throw new ArgumentException($"Conv2d.Reference: bias has {bias.Length} values, expected {cout}.");
            int ho = OutputSize(h, k, stride, padding), wo = OutputSize(w, k, stride, padding);
            var y = new double[n * cout * ho * wo];
            for (int img = 0; img < n; img++)
                for (int o = 0; o < cout; o++)
                    for (int i = 0; i < ho; i++)
                        for (int j = 0; j < wo; j++)
                        {
                            double sum = bias is null ? 0 : bias[o];
                            for (int c = 0; c < cin; c++)
                                for (int u = 0; u < k; u++)
                                {
                                    int iy = i * stride - padding + u;
                                    if (iy < 0 || iy >= h) continue;
                                    for (int v = 0; v < k; v++)
                                    {
                                        int ix = j * stride - padding + v;
                                        if (ix < 0 || ix >= w) continue;
                                        sum += weight[((o * cin + c) * k + u) * k + v] * x[((img * cin + c) * h + iy) * w + ix];
                                    }
                                }
                            y[((img * cout + o) * ho + i) * wo + j] = sum;
                        }
            return y;
        }

        /// <summary>
        /// The gradients of <see cref="Forward"/> for output gradient <paramref name="dy"/>, by the
        /// definition (every (n, o, i, j, c, u, v) term once): returns (dx, dw, db), each starting at 0.
        /// </summary>
        public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] x, int n, int cin, int h, int w, double[] weight,
            double[] dy, int cout, int k, int stride, int padding)
        {
            int ho = OutputSize(h, k, stride, padding), wo = OutputSize(w, k, stride, padding);
            if (dy.Length != n * cout * ho * wo) throw new ArgumentException($"Conv2d.Reference: dy has {dy.Length} values, expected {n * cout * ho * wo}.");
            var dx = new double[x.Length]; var dw = new double[weight.Length]; var db = new double[cout];
            for (int img = 0; img < n; img++)
                for (int o = 0; o < cout; o++)
                    for (int i = 0; i < ho; i++)
                        for (int j = 0; j < wo; j++)
                        {
                            double g = dy[((img * cout + o) * ho + i) * wo + j];
                            db[o] += g;
                            for (int c = 0; c < cin; c++)
                                for (int u = 0; u < k; u++)
                                {
                                    int iy = i * stride - padding + u;
                                    if (iy < 0 || iy >= h) continue;
                                    for (int v = 0; v < k; v++)
                                    {
                                        int ix = j * stride - padding + v;
                                        if (ix < 0 || ix >= w) continue;
                                        int xi = ((img * cin + c) * h + iy) * w + ix, wi = ((o * cin + c) * k + u) * k + v;
                                        dw[wi] += g * x[xi];
                                        dx[xi] += g * weight[wi];
                                    }
                                }
                        }
            return (dx, dw, db);
        }
    }
}
