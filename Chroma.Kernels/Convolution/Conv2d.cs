namespace Chroma.Kernels;

/// <summary>
/// 2-D convolution (cross-correlation, as in every deep learning framework) with a square kernel,
/// zero padding, equal strides and dilations along both axes, and grouped channels, as PyTorch's
/// nn.Conv2d.
/// <code>
/// x [N, Cin, H, W]    w [Cout, Cin/G, K, K]    b [Cout]    y [N, Cout, Ho, Wo]
/// Ho = (H + 2 pad - dil (K - 1) - 1) / stride + 1,  Wo likewise
/// G groups: output channel o belongs to group g = o / (Cout/G) and reads input channels
/// g Cin/G + c, c &lt; Cin/G (G = 1: every channel; G = Cin: depthwise)
///
/// forward:  y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] * x[n, g Cin/G + c, i*stride - pad + u*dil, j*stride - pad + v*dil]
///           (x outside [0,H) x [0,W) reads as 0)
/// backward: db[o]     += sum_{n,i,j} dy[n,o,i,j]
///           dw[o,c,u,v] += sum_{n,i,j} dy[n,o,i,j] * x[n, g Cin/G + c, i*stride - pad + u*dil, j*stride - pad + v*dil]
///           dx[n,g Cin/G + c,p,q] += sum of dy[n,o,i,j] * w[o,c,u,v] over all (o in group g, i, j, u, v) with
///                          i*stride - pad + u*dil = p and j*stride - pad + v*dil = q
/// </code>
/// Both paths lower the convolution to matrix products (im2col), one per group: the columns of one
/// image and group are the matrix cols [Cin/G*K*K, Ho*Wo] whose column (i,j) holds the group's input
/// patch under output pixel (i,j) (dilation only changes which pixels the patch takes), so with
/// W_g = w[g Cout/G .. (g+1) Cout/G] as [Cout/G, Cin/G*K*K]
/// <code>
/// y[n, group g]  = W_g * cols_g + b          dW_g += dY[n, group g] * cols_g^T
/// dcols_g = W_g^T * dY[n, group g],  then col2im adds every column entry back into the dx pixel it was read from
/// </code>
/// Images are processed in chunks (several whole images side by side when they are small, groups
/// of output rows when one image's columns are large) so the column buffer stays bounded. A 1x1
/// stride-1 unpadded convolution needs no im2col on one image: x[n] already is cols [Cin, H*W].
/// The paper's network uses dilation 1 and one group only; those take exactly the paths they took
/// before dilation and groups existed (G = 1 is one sub-problem, dilation 1 multiplies by 1 once per row).
/// </summary>
public static partial class Conv2d
{
    /// <summary>Output size along one axis: (input + 2*padding - kernel) / stride + 1.</summary>
    /// <exception cref="ArgumentException">A size is out of range, or the padded input is smaller than the kernel.</exception>
    public static int OutputSize(int input, int kernel, int stride, int padding) => OutputSize(input, kernel, stride, padding, dilation: 1);

    /// <summary>
    /// Output size along one axis, as PyTorch: (input + 2*padding - dilation*(kernel - 1) - 1) / stride + 1
    /// (the dilated kernel spans dilation*(kernel - 1) + 1 input pixels).
    /// </summary>
    /// <exception cref="ArgumentException">A size is out of range, or the padded input is smaller than the dilated kernel.</exception>
    public static int OutputSize(int input, int kernel, int stride, int padding, int dilation)
    {
        if (input < 1) throw new ArgumentException($"Conv2d: input size must be at least 1, got {input}.", nameof(input));
        if (kernel < 1) throw new ArgumentException($"Conv2d: kernel size must be at least 1, got {kernel}.", nameof(kernel));
        if (stride < 1) throw new ArgumentException($"Conv2d: stride must be at least 1, got {stride}.", nameof(stride));
        if (padding < 0) throw new ArgumentException($"Conv2d: padding must be at least 0, got {padding}.", nameof(padding));
        if (dilation < 1) throw new ArgumentException($"Conv2d: dilation must be at least 1, got {dilation}.", nameof(dilation));
        long padded = (long)input + 2L * padding, span = (long)dilation * (kernel - 1) + 1;
        if (padded < span)
            throw new ArgumentException(dilation == 1
                ? $"Conv2d: input size {input} with padding {padding} is smaller than the kernel size {kernel}."
                : $"Conv2d: input size {input} with padding {padding} is smaller than the kernel size {kernel} dilated by {dilation} ({span}).", nameof(input));
        return (int)((padded - span) / stride + 1);
    }

    /// <summary>
    /// y = conv(x, w) + b. <paramref name="y"/> is overwritten; <paramref name="b"/> may be null (no bias).
    /// </summary>
    /// <param name="x">Input [N, Cin, H, W].</param>
    /// <param name="w">Weights [Cout, Cin, K, K].</param>
    /// <param name="b">Bias [Cout], or null.</param>
    /// <param name="y">Output [N, Cout, Ho, Wo], Ho and Wo from <see cref="OutputSize(int, int, int, int)"/>.</param>
    /// <param name="relu">Write max(0, conv(x, w) + b) instead: the ReLU of a layer whose batch norm was folded into w and b.</param>
    public static void Forward(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int padding, bool relu = false) =>
        Forward(x, w, b, y, stride, padding, algorithm: null, relu: relu);

    /// <summary>
    /// y = conv(x, w) + b with dilated kernels and grouped channels (PyTorch's nn.Conv2d(dilation, groups)).
    /// <paramref name="y"/> is overwritten; <paramref name="b"/> may be null (no bias).
    /// </summary>
    /// <param name="x">Input [N, Cin, H, W].</param>
    /// <param name="w">Weights [Cout, Cin/groups, K, K].</param>
    /// <param name="b">Bias [Cout], or null.</param>
    /// <param name="y">Output [N, Cout, Ho, Wo], Ho and Wo from <see cref="OutputSize(int, int, int, int, int)"/>.</param>
    /// <param name="dilation">Spacing of the kernel's taps (1: adjacent pixels).</param>
    /// <param name="groups">Independent convolutions over channel slices; Cin and Cout must be multiples (Cin: depthwise).</param>
    /// <param name="relu">Write max(0, conv(x, w) + b) instead.</param>
    public static void Forward(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int padding, int dilation, int groups, bool relu = false) =>
        Forward(x, w, b, y, stride, padding, algorithm: null, relu: relu, dilation: dilation, groups: groups);

    /// <summary><see cref="Forward(Tensor, Tensor, Tensor?, Tensor, int, int, int, int, bool)"/> with the CPU algorithm forced (tests; null: <see cref="ChooseCpuAlgorithm"/>).</summary>
    internal static void Forward(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int padding, CpuAlgorithm? algorithm,
        Gemm.CpuKernel kernel = Gemm.CpuKernel.Auto, bool relu = false, int dilation = 1, int groups = 1)
    {
        const string op = "Conv2d.Forward";
        Check.SameDevice(op, x, w, b, y);
        var s = Shape(op, x, w, stride, padding, dilation, groups);
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

    /// <summary>
    /// The gradients of <see cref="Forward(Tensor, Tensor, Tensor?, Tensor, int, int, int, int, bool)"/>, accumulated:
    /// dx += (skipped when null), dw += [Cout, Cin/groups, K, K], db += (skipped when null).
    /// </summary>
    public static void Backward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db, int stride, int padding, int dilation, int groups) =>
        Backward(x, w, dy, dx, dw, db, stride, padding, algorithm: null, dilation: dilation, groups: groups);

    /// <summary><see cref="Backward(Tensor, Tensor, Tensor, Tensor?, Tensor, Tensor?, int, int, int, int)"/> with the CPU algorithm of the input gradient forced (tests).</summary>
    internal static void Backward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db, int stride, int padding, CpuAlgorithm? algorithm,
        Gemm.CpuKernel kernel = Gemm.CpuKernel.Auto, int dilation = 1, int groups = 1)
    {
        const string op = "Conv2d.Backward";
        Check.SameDevice(op, x, w, dy, dx, dw, db);
        var s = Shape(op, x, w, stride, padding, dilation, groups);
        Check.Shape(op, "output gradient dy", dy, s.N, s.Cout, s.Ho, s.Wo);
        if (dx is not null) Check.Shape(op, "input gradient dx", dx, s.N, s.Cin, s.H, s.W);
        Check.Shape(op, "weight gradient dw", dw, s.Cout, s.GroupCin, s.K, s.K);
        if (db is not null) Check.Shape(op, "bias gradient db", db, s.Cout);
        if (dy.Length == 0) return;
        if (x.Device is GpuDevice gpu) BackwardGpu(gpu, s, x, w, dy, dx, dw, db);
        else BackwardCpu(s, x, w, dy, dx, dw, db, CheckAlgorithm(s, algorithm), kernel);
    }

    static CpuAlgorithm CheckAlgorithm(in ConvArgs s, CpuAlgorithm? forced)
    {
        if (forced is not { } a) return ChooseCpuAlgorithm(s);
        if (a == CpuAlgorithm.Winograd4x4 && !IsWinogradShape(s))
            throw new ArgumentException($"Conv2d: Winograd needs a 3x3 kernel, stride 1, padding 0..2, dilation 1 and one group, got {s.K}x{s.K}, " +
                $"stride {s.Stride}, padding {s.Pad}, dilation {s.Dilation}, {s.Groups} groups.");
        return a;
    }

    /// <summary>Checks x and w against each other and derives every size of the convolution.</summary>
    static ConvArgs Shape(string op, Tensor x, Tensor w, int stride, int padding, int dilation, int groups)
    {
        Check.Rank(op, "input x", x, 4);
        Check.Rank(op, "weight w", w, 4);
        if (stride < 1) throw new ArgumentException($"{op}: stride must be at least 1, got {stride}.", nameof(stride));
        if (padding < 0) throw new ArgumentException($"{op}: padding must be at least 0, got {padding}.", nameof(padding));
        if (dilation < 1) throw new ArgumentException($"{op}: dilation must be at least 1, got {dilation}.", nameof(dilation));
        if (groups < 1) throw new ArgumentException($"{op}: groups must be at least 1, got {groups}.", nameof(groups));
        int n = x.Dim(0), cin = x.Dim(1), h = x.Dim(2), wd = x.Dim(3);
        int cout = w.Dim(0), k = w.Dim(2);
        if (w.Dim(3) != k) throw new ArgumentException($"{op}: weight w must have a square kernel [Cout, Cin/groups, K, K], got {w.ShapeString}.");
        if (cin % groups != 0)
            throw new ArgumentException($"{op}: input x {x.ShapeString} has {cin} channels, not a multiple of {groups} groups.");
        if (cout % groups != 0)
            throw new ArgumentException($"{op}: weight w {w.ShapeString} has {cout} output channels, not a multiple of {groups} groups.");
        if (w.Dim(1) != cin / groups)
            throw new ArgumentException(groups == 1
                ? $"{op}: weight w {w.ShapeString} expects {w.Dim(1)} input channels, but input x {x.ShapeString} has {cin}."
                : $"{op}: weight w {w.ShapeString} expects {w.Dim(1)} input channels per group, but input x {x.ShapeString} has {cin} in {groups} groups ({cin / groups} each).");
        if (k < 1) throw new ArgumentException($"{op}: weight w {w.ShapeString} has an empty kernel.");
        if (cin < 1 || h < 1 || wd < 1) throw new ArgumentException($"{op}: input x {x.ShapeString} has no channels or an empty image.");
        long span = (long)dilation * (k - 1) + 1;
        if (h + 2L * padding < span || wd + 2L * padding < span)
            throw new ArgumentException(dilation == 1
                ? $"{op}: input x {x.ShapeString} with padding {padding} is smaller than the {k}x{k} kernel."
                : $"{op}: input x {x.ShapeString} with padding {padding} is smaller than the {k}x{k} kernel dilated by {dilation} ({span}x{span}).");
        int ho = OutputSize(h, k, stride, padding, dilation), wo = OutputSize(wd, k, stride, padding, dilation);
        return new ConvArgs(n, cin, h, wd, cout, k, stride, padding, ho, wo, 0, n, 0, ho, dilation, groups);
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
    /// output rows [Row0, Row0+Rows) of each, channel group <see cref="Group"/>), passed to GPU kernels as one struct (public because
    /// ILGPU's CPU accelerator emits code in another assembly that must see kernel parameter types).
    /// Cin and Cout count every channel of x and y (their image strides); one group's product has
    /// <see cref="GroupCout"/> rows and <see cref="Ckk"/> = <see cref="GroupCin"/> K K depth.
    /// </summary>
    public readonly record struct ConvArgs(int N, int Cin, int H, int W, int Cout, int K, int Stride, int Pad, int Ho, int Wo,
        int Image0, int Images, int Row0, int Rows, int Dilation = 1, int Groups = 1, int Group = 0)
    {
        /// <summary>Input channels of one group: the channels one output channel reads.</summary>
        public int GroupCin => Cin / Groups;
        /// <summary>Output channels of one group.</summary>
        public int GroupCout => Cout / Groups;
        /// <summary>Rows of one group's column matrix (and length of a weight row): one per (input channel of the group, kernel row, kernel column).</summary>
        public int Ckk => GroupCin * K * K;
        public int HW => H * W;
        public int HoWo => Ho * Wo;
        /// <summary>Input pixels the dilated kernel spans along one axis: dilation (K - 1) + 1.</summary>
        public int Span => Dilation * (K - 1) + 1;
        /// <summary>First input channel of the chunk's group.</summary>
        public int XChannel0 => Group * GroupCin;
        /// <summary>First output channel of the chunk's group.</summary>
        public int YChannel0 => Group * GroupCout;
        /// <summary>Columns one image contributes to the chunk.</summary>
        public int ChunkPixels => Rows * Wo;
        /// <summary>Columns of the chunk's column matrix [Ckk, Width]: image-major, then output row, then x.</summary>
        public int Width => Images * Rows * Wo;
        /// <summary>1x1 stride-1 unpadded (dilation moves nothing with one tap): the columns of one image and group are the group's channels of the image itself.</summary>
        public bool IsPointwise => K == 1 && Stride == 1 && Pad == 0;
        /// <summary>First input row the chunk's output rows read.</summary>
        public int InputRow0 => Row0 * Stride - Pad < 0 ? 0 : Row0 * Stride - Pad;
        /// <summary>One past the last input row the chunk's output rows read.</summary>
        public int InputRowEnd => (Row0 + Rows - 1) * Stride - Pad + Span > H ? H : (Row0 + Rows - 1) * Stride - Pad + Span;
    }

    /// <summary>Plain float64 implementation, the reference for tests.</summary>
    public static class Reference
    {
        /// <summary>Direct convolution; <paramref name="bias"/> may be null. Returns y [N, Cout, Ho, Wo].</summary>
        public static double[] Forward(double[] x, int n, int cin, int h, int w, double[] weight, double[]? bias,
            int cout, int k, int stride, int padding) =>
            Forward(x, n, cin, h, w, weight, bias, cout, k, stride, padding, dilation: 1, groups: 1);

        /// <summary>
        /// Direct convolution with dilated kernels and grouped channels, by the definition in <see cref="Conv2d"/>:
        /// weight [Cout, Cin/groups, K, K]; <paramref name="bias"/> may be null. Returns y [N, Cout, Ho, Wo].
        /// </summary>
        public static double[] Forward(double[] x, int n, int cin, int h, int w, double[] weight, double[]? bias,
            int cout, int k, int stride, int padding, int dilation, int groups)
        {
            var (gcin, gcout) = CheckSizes(x, n, cin, h, w, weight, cout, k, groups);
            if (bias is not null && bias.Length != cout) throw new ArgumentException($"Conv2d.Reference: bias has {bias.Length} values, expected {cout}.");
            int ho = OutputSize(h, k, stride, padding, dilation), wo = OutputSize(w, k, stride, padding, dilation);
            var y = new double[n * cout * ho * wo];
            for (int img = 0; img < n; img++)
                for (int o = 0; o < cout; o++)
                {
                    int c0 = o / gcout * gcin;   // the group's first input channel
                    for (int i = 0; i < ho; i++)
                        for (int j = 0; j < wo; j++)
                        {
                            double sum = bias is null ? 0 : bias[o];
                            for (int c = 0; c < gcin; c++)
                                for (int u = 0; u < k; u++)
                                {
                                    int iy = i * stride - padding + u * dilation;
                                    if (iy < 0 || iy >= h) continue;
                                    for (int v = 0; v < k; v++)
                                    {
                                        int ix = j * stride - padding + v * dilation;
                                        if (ix < 0 || ix >= w) continue;
                                        sum += weight[((o * gcin + c) * k + u) * k + v] * x[((img * cin + c0 + c) * h + iy) * w + ix];
                                    }
                                }
                            y[((img * cout + o) * ho + i) * wo + j] = sum;
                        }
                }
            return y;
        }

        /// <summary>
        /// The gradients of <see cref="Forward(double[], int, int, int, int, double[], double[], int, int, int, int)"/> for output gradient <paramref name="dy"/>, by the
        /// definition (every (n, o, i, j, c, u, v) term once): returns (dx, dw, db), each starting at 0.
        /// </summary>
        public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] x, int n, int cin, int h, int w, double[] weight,
            double[] dy, int cout, int k, int stride, int padding) =>
            Backward(x, n, cin, h, w, weight, dy, cout, k, stride, padding, dilation: 1, groups: 1);

        /// <summary>
        /// The gradients of <see cref="Forward(double[], int, int, int, int, double[], double[], int, int, int, int, int, int)"/>
        /// (dilated, grouped) for output gradient <paramref name="dy"/>, by the definition: returns (dx, dw [Cout, Cin/groups, K, K], db), each starting at 0.
        /// </summary>
        public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] x, int n, int cin, int h, int w, double[] weight,
            double[] dy, int cout, int k, int stride, int padding, int dilation, int groups)
        {
            var (gcin, gcout) = CheckSizes(x, n, cin, h, w, weight, cout, k, groups);
            int ho = OutputSize(h, k, stride, padding, dilation), wo = OutputSize(w, k, stride, padding, dilation);
            if (dy.Length != n * cout * ho * wo) throw new ArgumentException($"Conv2d.Reference: dy has {dy.Length} values, expected {n * cout * ho * wo}.");
            var dx = new double[x.Length]; var dw = new double[weight.Length]; var db = new double[cout];
            for (int img = 0; img < n; img++)
                for (int o = 0; o < cout; o++)
                {
                    int c0 = o / gcout * gcin;
                    for (int i = 0; i < ho; i++)
                        for (int j = 0; j < wo; j++)
                        {
                            double g = dy[((img * cout + o) * ho + i) * wo + j];
                            db[o] += g;
                            for (int c = 0; c < gcin; c++)
                                for (int u = 0; u < k; u++)
                                {
                                    int iy = i * stride - padding + u * dilation;
                                    if (iy < 0 || iy >= h) continue;
                                    for (int v = 0; v < k; v++)
                                    {
                                        int ix = j * stride - padding + v * dilation;
                                        if (ix < 0 || ix >= w) continue;
                                        int xi = ((img * cin + c0 + c) * h + iy) * w + ix, wi = ((o * gcin + c) * k + u) * k + v;
                                        dw[wi] += g * x[xi];
                                        dx[xi] += g * weight[wi];
                                    }
                                }
                        }
                }
            return (dx, dw, db);
        }

        /// <summary>Checks the reference's array lengths and groups; returns the channels per group (in, out).</summary>
        static (int GroupCin, int GroupCout) CheckSizes(double[] x, int n, int cin, int h, int w, double[] weight, int cout, int k, int groups)
        {
            if (groups < 1 || cin % groups != 0 || cout % groups != 0)
                throw new ArgumentException($"Conv2d.Reference: {groups} groups must divide {cin} input and {cout} output channels.");
            int gcin = cin / groups;
            if (x.Length != n * cin * h * w) throw new ArgumentException($"Conv2d.Reference: x has {x.Length} values, expected {n * cin * h * w}.");
            if (weight.Length != cout * gcin * k * k) throw new ArgumentException($"Conv2d.Reference: weight has {weight.Length} values, expected {cout * gcin * k * k}.");
            return (gcin, cout / groups);
        }
    }
}
