using ILGPU;
using ILGPU.Runtime;

namespace Chroma.Kernels;

public static partial class Conv2d
{
    /// <summary>
    /// Largest column buffer the GPU path allocates, in floats (256 MB). Tests shrink it to
    /// exercise chunking.
    /// </summary>
    internal static long GpuColumnBudget = 64L << 20;

    /// <summary>Threads per group of the bias-gradient reduction (a power of two, capped by the device).</summary>
    const int ReductionGroupSize = 256;

    // The column buffer (and, when a chunk holds several images, the [Cout, Width] product or
    // gathered dY) lives in the device's workspaces: every element is written before it is read
    // (im2col writes the padding zeros too), and stream order makes reuse safe without waiting.

    static void ForwardGpu(GpuDevice gpu, ConvArgs s, Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        var (images, rows) = PlanChunks(s, GpuColumnBudget, 0);
        var first = s with { Images = images, Rows = rows };
        bool direct = s.IsPointwise && images == 1;
        var cols = direct ? null : gpu.Workspace("conv2d.cols", first.Ckk * first.Width);
        var product = images > 1 ? gpu.Workspace("conv2d.product", s.Cout * first.Width) : null;
        var xv = x.View; var wv = w.View; var yv = y.View;
        var bv = b?.View ?? yv; // any valid view when there is no bias; the kernels do not read it then
        int hasBias = b is null ? 0 : 1;

        for (int n0 = 0; n0 < s.N; n0 += images)
            for (int r0 = 0; r0 < s.Ho; r0 += rows)
            {
                var c = s with { Image0 = n0, Images = Math.Min(images, s.N - n0), Row0 = r0, Rows = Math.Min(rows, s.Ho - r0) };
                ArrayView<float> colView; int colLd;
                if (direct) (colView, colLd) = (xv.SubView(c.Image0 * c.Cin * c.HW + c.Row0 * c.W), c.HW);
                else
                {
                    colView = cols!.View.SubView(0, (long)c.Ckk * c.Width);
                    gpu.Kernel<ConvArgs, ArrayView<float>, ArrayView<float>>(Im2ColKernel)(c.Ckk * c.Width, c, xv, colView);
                    colLd = c.Width;
                }

                if (c.Images == 1)
                {
                    var yChunk = yv.SubView(c.Image0 * c.Cout * c.HoWo + c.Row0 * c.Wo);
                    Gemm.Gpu(gpu, false, false, c.Cout, c.Width, c.Ckk, 1f, wv, c.Ckk, colView, colLd, 0f, yChunk, c.HoWo);
                    if (hasBias != 0)
                        gpu.Kernel<ConvArgs, ArrayView<float>, ArrayView<float>>(AddBiasKernel)(c.Cout * c.Width, c, bv, yv);
                }
                else
                {
                    var p = product!.View.SubView(0, (long)c.Cout * c.Width);
                    Gemm.Gpu(gpu, false, false, c.Cout, c.Width, c.Ckk, 1f, wv, c.Ckk, colView, colLd, 0f, p, c.Width);
                    gpu.Kernel<ConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ScatterOutputKernel)(
                        c.Cout * c.Width, c, p, bv, yv, hasBias);
                }
            }
    }

    static void BackwardGpu(GpuDevice gpu, ConvArgs s, Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db)
    {
        if (db is not null)
        {
            int groupSize = ReductionGroupSize;
            while (groupSize > gpu.Target.MaxGroupSize) groupSize >>= 1;
            gpu.GroupedKernel<ConvArgs, ArrayView<float>, ArrayView<float>>(BiasGradientKernel)(
                new KernelConfig(s.Cout, groupSize), s, dy.View, db.View);
        }

        var (images, rows) = PlanChunks(s, GpuColumnBudget, 0);
        var first = s with { Images = images, Rows = rows };
        bool direct = s.IsPointwise && images == 1;
        // cols also holds dcols once dW has been accumulated, so direct chunks need it only for dx.
        var cols = direct ? null : gpu.Workspace("conv2d.cols", first.Ckk * first.Width);
        var gathered = images > 1 ? gpu.Workspace("conv2d.product", s.Cout * first.Width) : null;
        var xv = x.View; var wv = w.View; var dyv = dy.View; var dwv = dw.View;

        for (int n0 = 0; n0 < s.N; n0 += images)
            for (int r0 = 0; r0 < s.Ho; r0 += rows)
            {
                var c = s with { Image0 = n0, Images = Math.Min(images, s.N - n0), Row0 = r0, Rows = Math.Min(rows, s.Ho - r0) };
                int xChunk = c.Image0 * c.Cin * c.HW + c.Row0 * c.W;
                ArrayView<float> colView; int colLd;
                if (direct) (colView, colLd) = (xv.SubView(xChunk), c.HW);
                else
                {
                    colView = cols!.View.SubView(0, (long)c.Ckk * c.Width);
                    gpu.Kernel<ConvArgs, ArrayView<float>, ArrayView<float>>(Im2ColKernel)(c.Ckk * c.Width, c, xv, colView);
                    colLd = c.Width;
                }

                ArrayView<float> dyChunk; int dyLd;
                if (c.Images == 1) (dyChunk, dyLd) = (dyv.SubView(c.Image0 * c.Cout * c.HoWo + c.Row0 * c.Wo), c.HoWo);
                else
                {
                    dyChunk = gathered!.View.SubView(0, (long)c.Cout * c.Width);
                    gpu.Kernel<ConvArgs, ArrayView<float>, ArrayView<float>>(GatherOutputGradientKernel)(c.Cout * c.Width, c, dyv, dyChunk);
                    dyLd = c.Width;
                }

                // dW [Cout, Ckk] += dY [Cout, Width] * cols^T
                Gemm.Gpu(gpu, false, true, c.Cout, c.Ckk, c.Width, 1f, dyChunk, dyLd, colView, colLd, 1f, dwv, c.Ckk);

                if (dx is null) continue;
                if (direct)
                    Gemm.Gpu(gpu, true, false, c.Ckk, c.Width, c.Cout, 1f, wv, c.Ckk, dyChunk, dyLd, 1f, dx.View.SubView(xChunk), c.HW);
                else
                {
                    Gemm.Gpu(gpu, true, false, c.Ckk, c.Width, c.Cout, 1f, wv, c.Ckk, dyChunk, dyLd, 0f, colView, c.Width);
                    int inputRows = c.InputRowEnd - c.InputRow0;
                    if (inputRows > 0)
                        gpu.Kernel<ConvArgs, ArrayView<float>, ArrayView<float>>(Col2ImKernel)(c.Images * c.Cin * inputRows * c.W, c, colView, dx.View);
                }
            }
    }

    /// <summary>
    /// One thread per element of cols [Ckk, Width]: row (ch, u, v), column (image, i, j) gets
    /// x[Image0 + image, ch, (Row0 + i)*stride - pad + u, j*stride - pad + v], or 0 in the padding.
    /// Consecutive threads write consecutive columns.
    /// </summary>
    static void Im2ColKernel(Index1D index, ConvArgs a, ArrayView<float> x, ArrayView<float> cols)
    {
        int width = a.Width, pixels = a.ChunkPixels;
        int row = index / width, col = index - row * width;
        int img = col / pixels, q = col - img * pixels;
        int i = a.Row0 + q / a.Wo, j = q - (q / a.Wo) * a.Wo;
        int v = row % a.K, t = row / a.K;
        int u = t % a.K, ch = t / a.K;
        int iy = i * a.Stride - a.Pad + u, ix = j * a.Stride - a.Pad + v;
        float value = 0f;
        if (iy >= 0 && iy < a.H && ix >= 0 && ix < a.W)
            value = x[(((long)(a.Image0 + img) * a.Cin + ch) * a.H + iy) * a.W + ix];
        cols[index] = value;
    }

    /// <summary>
    /// One thread per dx pixel of the input rows the chunk read: gathers the dcols entries that were
    /// read from this pixel (at most K*K of them), so no two threads write the same element.
    /// </summary>
    static void Col2ImKernel(Index1D index, ConvArgs a, ArrayView<float> dcols, ArrayView<float> dx)
    {
        int row0 = a.InputRow0, inputRows = a.InputRowEnd - row0;
        int perImage = a.Cin * inputRows * a.W;
        int img = index / perImage, r = index - img * perImage;
        int ch = r / (inputRows * a.W); r -= ch * inputRows * a.W;
        int iy = row0 + r / a.W, ix = r - (r / a.W) * a.W;
        int width = a.Width, pixels = a.ChunkPixels;
        float sum = 0f;
        for (int u = 0; u < a.K; u++)
        {
            int ty = iy + a.Pad - u; // = i * stride for the output row i that read this pixel with kernel row u
            if (ty < 0 || ty % a.Stride != 0) continue;
            int i = ty / a.Stride - a.Row0;
            if (i < 0 || i >= a.Rows) continue;
            for (int v = 0; v < a.K; v++)
            {
                int tx = ix + a.Pad - v;
                if (tx < 0 || tx % a.Stride != 0) continue;
                int j = tx / a.Stride;
                if (j >= a.Wo) continue;
                sum += dcols[(long)((ch * a.K + u) * a.K + v) * width + img * pixels + i * a.Wo + j];
            }
        }
        dx[(((long)(a.Image0 + img) * a.Cin + ch) * a.H + iy) * a.W + ix] += sum;
    }

    /// <summary>One thread per element of a one-image chunk of y [Cout, Rows*Wo]: y += b[o].</summary>
    static void AddBiasKernel(Index1D index, ConvArgs a, ArrayView<float> bias, ArrayView<float> y)
    {
        int pixels = a.ChunkPixels;
        int o = index / pixels, q = index - o * pixels;
        y[((long)a.Image0 * a.Cout + o) * a.HoWo + a.Row0 * a.Wo + q] += bias[o];
    }

    /// <summary>
    /// One thread per element of product [Cout, Width] (images side by side): writes it, plus b[o]
    /// when hasBias is 1, to y[Image0 + image, o, rows of the chunk].
    /// </summary>
    static void ScatterOutputKernel(Index1D index, ConvArgs a, ArrayView<float> product, ArrayView<float> bias, ArrayView<float> y, int hasBias)
    {
        int width = a.Width, pixels = a.ChunkPixels;
        int o = index / width, col = index - o * width;
        int img = col / pixels, q = col - img * pixels;
        float value = product[index];
        if (hasBias != 0) value += bias[o];
        y[((long)(a.Image0 + img) * a.Cout + o) * a.HoWo + a.Row0 * a.Wo + q] = value;
    }

    /// <summary>One thread per element of gathered [Cout, Width]: the chunk's dY with images side by side.</summary>
    static void GatherOutputGradientKernel(Index1D index, ConvArgs a, ArrayView<float> dy, ArrayView<float> gathered)
    {
        int width = a.Width, pixels = a.ChunkPixels;
        int o = index / width, col = index - o * width;
        int img = col / pixels, q = col - img * pixels;
        gathered[index] = dy[((long)(a.Image0 + img) * a.Cout + o) * a.HoWo + a.Row0 * a.Wo + q];
    }

    /// <summary>
    /// One group per output channel o: its threads stride over the N*Ho*Wo values of dy[:, o]
    /// (consecutive threads read consecutive pixels), then reduce their partial sums in shared memory;
    /// db[o] += total. The group size must be a power of two of at most <see cref="ReductionGroupSize"/>.
    /// </summary>
    static void BiasGradientKernel(ConvArgs a, ArrayView<float> dy, ArrayView<float> db)
    {
        var partial = SharedMemory.Allocate<float>(ReductionGroupSize);
        int o = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        int pixels = a.HoWo, total = a.N * pixels;
        float sum = 0f;
        for (int e = tid; e < total; e += threads)
        {
            int n = e / pixels;
            sum += dy[((long)n * a.Cout + o) * pixels + (e - n * pixels)];
        }
        partial[tid] = sum;
        Group.Barrier();
        for (int half = threads / 2; half > 0; half /= 2)
        {
            if (tid < half) partial[tid] += partial[tid + half];
            Group.Barrier();
        }
        if (tid == 0) db[o] += partial[0];
    }
}
