#!/usr/bin/env python3
"""PyTorch peer of NetworkBenchmark: the same network (tools/torch/colorizer.py), 2 threads.

Prints the median and best time of one 512x512 inference and one 224x224 training step
(forward, joint loss, backward, Adadelta) at the given widths. Run with Debian's torch:
    /usr/bin/python3 Chroma.Benchmarks/peer/network_torch.py --widths 0.25 1.0
"""
import argparse, os, sys, time, statistics
import torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "torch"))
from colorizer import Colorizer, joint_loss  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--widths", type=float, nargs="+", default=[0.25, 1.0])
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeats", type=int, default=7)
ap.add_argument("--device", default="cpu", help="cpu or cuda")
ap.add_argument("--gemm", type=int, default=0, help="also time a square float32 matrix product of this size")
ap.add_argument("--json", action="store_true", help="print the timings as one JSON object (as `chroma bench --json`), nothing else")
ap.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN try its algorithms per shape (torch.backends.cudnn.benchmark)")
a = ap.parse_args()
if a.cudnn_benchmark:
    torch.backends.cudnn.benchmark = True
entries = []
_print = print
def print(*args, **kwargs):  # noqa: A001 - with --json only the JSON object goes to stdout
    if not a.json:
        _print(*args, **kwargs)
torch.set_num_threads(a.threads)
torch.manual_seed(0)

dev = torch.device(a.device)
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

def timeit(fn, repeats):
    fn(); sync()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts)

print(f"torch {torch.__version__} on {a.device}" + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else f", {a.threads} threads"))
if a.gemm:
    n = a.gemm
    A, B = torch.rand(n, n, device=dev), torch.rand(n, n, device=dev)
    med, best = timeit(lambda: torch.mm(A, B), a.repeats)
    print(f"GEMM {n}^3: median {med*1e3:.2f} ms, best {best*1e3:.2f} ms, {2*n**3/best/1e9:.1f} GFLOP/s (best)")
    entries.append({"what": "gemm", "size": n, "median_ms": med * 1e3, "best_ms": best * 1e3, "gflops": 2 * n**3 / best / 1e9})

for w in a.widths:
    m = Colorizer(w, 205).to(dev)
    m.eval()
    local, glob = torch.rand(1, 1, 512, 512, device=dev), torch.rand(1, 1, 224, 224, device=dev)
    def infer():
        with torch.no_grad():
            m(local, glob)
    med, best = timeit(infer, a.repeats)
    print(f"width {w}: inference 512x512 median {med*1e3:.1f} ms, best {best*1e3:.1f} ms")
    entries.append({"what": "inference 512x512", "width": w, "batch": 1, "median_ms": med * 1e3, "best_ms": best * 1e3})
    b = 4 if w >= 1.0 else 16
    x, t, lab = torch.rand(b, 1, 224, 224, device=dev), torch.rand(b, 2, 112, 112, device=dev), torch.randint(0, 205, (b,), device=dev)
    opt = torch.optim.Adadelta(m.parameters(), lr=1.0, rho=0.9, eps=1e-6)
    m.train()
    def step():
        opt.zero_grad()
        ab, logits = m(x)
        joint_loss(ab, logits, t, lab).backward()
        opt.step()
    med, best = timeit(step, max(3, a.repeats // 2))
    print(f"width {w}: training step 224x224 batch {b} median {med*1e3:.0f} ms ({b/med:.2f} images/s), best {best*1e3:.0f} ms")
    entries.append({"what": "training step 224x224", "width": w, "batch": b, "median_ms": med * 1e3, "best_ms": best * 1e3})

if a.json:
    import json
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    _print(json.dumps({"device": f"torch {torch.__version__} on {a.device} ({name})", "cudnn_benchmark": a.cudnn_benchmark, "entries": entries}))
