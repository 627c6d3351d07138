"""PyTorch (CPU, 2 threads) timing of the square float32 products GemmBenchmark times.

Run with Debian's PyTorch (apt-get install python3-torch libopenblas0-pthread):
    /usr/bin/python3 Chroma.Benchmarks/peer/gemm_torch.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 Chroma.Benchmarks/peer/gemm_torch.py
Prints best and median GFLOP/s (2 N^3 / time) per size.
"""
import statistics
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
for n in (256, 512, 1024):
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    for _ in range(5):
        torch.mm(a, b, out=c)
    reps = max(10, int(2e10 / (2 * n**3)))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - t)
    flop = 2.0 * n**3 / 1e9
    print(f"torch.mm N={n:5d} threads={torch.get_num_threads()}: "
          f"best {flop / min(times):6.1f}  median {flop / statistics.median(times):6.1f} GFLOP/s  ({reps} runs)")
