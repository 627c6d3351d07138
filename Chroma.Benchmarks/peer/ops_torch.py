#!/usr/bin/env python3
"""PyTorch peer of `chroma bench --op NAME`: times one op on the cases of op_shapes.json (the list Chroma's
op harness embeds), forward and forward+backward, the way Chroma's time mode does: one warm-up, then
--repeats runs, each a full pass; median and best.

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 Chroma.Benchmarks/peer/ops_torch.py --op conv2d
    /usr/bin/python3 Chroma.Benchmarks/peer/ops_torch.py --op conv2d --cases w0.25.low1,w0.25.low2 --json

Forward runs under torch.no_grad() (Chroma's forward keeps nothing for backward either); forward+backward
builds the graph and calls backward(dy), so parameter gradients accumulate as Chroma's backward does. A conv
case with "dx": 0 (the network's first layer) computes no input gradient, as Chroma's. adadelta is forward-only
(torch.optim.Adadelta's step on one flat parameter whose gradient is set): its entries have no train_* keys. With --json one object
on stdout: {"device": ..., "op": ..., "threads": 2, "entries": [{"name", "forward_ms": [...], "forward_median_ms",
"forward_best_ms", "train_ms": [...], "train_median_ms", "train_best_ms"}]}.
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--op", required=True, help="an op of op_shapes.json: conv2d, linear, batchnorm, sigmoid, relu, gemm, ...")
ap.add_argument("--shapes", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "op_shapes.json"))
ap.add_argument("--cases", default="", help="comma-separated case names (default: all of the op's cases)")
ap.add_argument("--repeats", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

with open(a.shapes) as f:
    shapes = json.load(f)
if a.op not in shapes or not isinstance(shapes[a.op], list):
    raise SystemExit(f"ops_torch.py: {a.shapes} has no op '{a.op}'; ops: {', '.join(k for k, v in shapes.items() if isinstance(v, list))}")
cases = shapes[a.op]
if a.cases:
    wanted = a.cases.split(",")
    missing = [n for n in wanted if n not in {c["name"] for c in cases}]
    if missing:
        raise SystemExit(f"ops_torch.py: {a.op} has no case {', '.join(missing)}")
    cases = [c for c in cases if c["name"] in wanted]


def rand(*shape, grad=False, lo=-1.0, hi=1.0):
    return (torch.rand(*shape) * (hi - lo) + lo).requires_grad_(grad)


def prepare(c):
    """(forward function of the inputs, dy) for one case; dy None: the op is forward-only."""
    if a.op == "adadelta":
        p = rand(c["Length"])
        p.grad = rand(c["Length"])
        wd = c.get("weight_decay_log10")
        opt = torch.optim.Adadelta([p], lr=c.get("lr%", 100) / 100, rho=c.get("rho%", 90) / 100, eps=10.0 ** c.get("eps_log10", -6),
                                   weight_decay=0 if wd is None else 10.0 ** wd)
        return opt.step, None
    if a.op == "conv2d":
        n, cin, h, w, cout, k = c["N"], c["Cin"], c["H"], c["W"], c["Cout"], c["k"]
        s, p, d, g = c["stride"], c["padding"], c.get("dilation", 1), c.get("groups", 1)
        x = rand(n, cin, h, w, grad=bool(c.get("dx", 1)))
        wt = rand(cout, cin // g, k, k, grad=True)
        b = rand(cout, grad=True) if c.get("bias", 1) else None
        ho = (h + 2 * p - d * (k - 1) - 1) // s + 1
        wo = (w + 2 * p - d * (k - 1) - 1) // s + 1
        return (lambda: F.conv2d(x, wt, b, s, p, d, g)), rand(n, cout, ho, wo)
    if a.op == "gemm":
        # C = alpha op(A) op(B) + beta C0; backward gives dA and dB (the gradient of C0 is not needed, as in Chroma's)
        m, n, k, ta, tb = c["M"], c["N"], c["K"], c.get("transA", 0), c.get("transB", 0)
        alpha, beta = c.get("alpha%", 100) / 100, c.get("beta%", 0) / 100
        A = rand(*((k, m) if ta else (m, k)), grad=True)
        B = rand(*((n, k) if tb else (k, n)), grad=True)
        opA, opB = (lambda: A.t() if ta else A), (lambda: B.t() if tb else B)
        if alpha == 1 and beta == 0:
            return (lambda: torch.matmul(opA(), opB())), rand(m, n)
        c0 = rand(m, n)
        return (lambda: torch.addmm(c0, opA(), opB(), beta=beta, alpha=alpha)), rand(m, n)
    if a.op == "linear":
        x, wt = rand(c["N"], c["In"], grad=True), rand(c["Out"], c["In"], grad=True)
        b = rand(c["Out"], grad=True) if c.get("bias", 1) else None
        return (lambda: F.linear(x, wt, b)), rand(c["N"], c["Out"])
    if a.op == "cross_entropy":
        # backward(1/3): the classification term's weight in training, as Chroma's
        z = rand(c["N"], c["C"], grad=True, lo=-c.get("range", 3), hi=c.get("range", 3))
        labels = torch.randint(c["C"], (c["N"],))
        return (lambda: F.cross_entropy(z, labels)), torch.tensor(1 / 3)
    if a.op == "fusion":
        # [local ; global tiled over H x W] along channels: PyTorch's tile and concatenation
        n, h, w = c["N"], c["H"], c["W"]
        local = rand(n, c["Cl"], h, w, grad=bool(c.get("dlocal", 1)))
        glob = rand(n, c["Cg"], grad=bool(c.get("dglobal", 1)))
        return (lambda: torch.cat([local, glob[:, :, None, None].expand(-1, -1, h, w)], 1)), rand(n, c["Cl"] + c["Cg"], h, w)
    shape = (c["N"], c["C"], c["H"], c["W"])
    if a.op == "bilinear_resize":
        x = rand(*shape, grad=True)
        size = (c["Ho"], c["Wo"])
        return (lambda: F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)), rand(c["N"], c["C"], *size)
    if a.op == "upsample_nearest":
        x = rand(*shape, grad=True)
        return (lambda: F.interpolate(x, scale_factor=2, mode="nearest")), rand(c["N"], c["C"], 2 * c["H"], 2 * c["W"])
    if a.op == "mse_loss":
        # backward(0.75): the colour term's weight, as Chroma's
        p, t = rand(*shape, grad=True), rand(*shape, lo=-0.5, hi=1.5)
        return (lambda: F.mse_loss(p, t)), torch.tensor(0.75)
    if a.op == "batchnorm":
        # U[-1, 1) plus 0, 10, 20 or 30 by channel, as Chroma's harness
        x = (rand(*shape) + 10 * (torch.arange(c["C"]) % 4).view(1, -1, 1, 1).float()).requires_grad_()
        gamma, beta = rand(c["C"], grad=True, lo=0.5, hi=1.5), rand(c["C"], grad=True)
        rm, rv = torch.zeros(c["C"]), torch.ones(c["C"])
        return (lambda: F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)), rand(*shape)
    r = c.get("range", 1)
    x = rand(*shape, grad=True, lo=-r, hi=r)
    f = {"sigmoid": torch.sigmoid, "relu": F.relu}[a.op]
    return (lambda: f(x)), rand(*shape)


def timeit(fn, repeats):
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return ts


entries = []
for c in cases:
    forward, dy = prepare(c)

    def infer():
        with torch.no_grad():
            forward()

    def train():
        forward().backward(dy)

    fw = timeit(infer, a.repeats)
    e = {"name": c["name"], "forward_ms": [t * 1e3 for t in fw], "forward_median_ms": statistics.median(fw) * 1e3,
         "forward_best_ms": min(fw) * 1e3}
    if dy is not None:
        tr = timeit(train, a.repeats)
        e.update({"train_ms": [t * 1e3 for t in tr], "train_median_ms": statistics.median(tr) * 1e3, "train_best_ms": min(tr) * 1e3})
    entries.append(e)
    if not a.json:
        line = f"{c['name']:>20}: forward median {e['forward_median_ms']:9.3f} ms (best {e['forward_best_ms']:9.3f})"
        if dy is not None:
            line += f", forward+backward median {e['train_median_ms']:9.3f} ms (best {e['train_best_ms']:9.3f})"
        print(line, flush=True)

if a.json:
    print(json.dumps({"device": f"torch {torch.__version__} on cpu, {torch.get_num_threads()} threads", "op": a.op,
                      "threads": torch.get_num_threads(), "entries": entries}))
