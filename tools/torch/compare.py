#!/usr/bin/env python3
"""Compares `chroma forward` outputs with make_golden.py's expected tensors.

Usage: compare.py EXPECTED.safetensors TRAIN_OUT.safetensors INFER_OUT.safetensors
Prints, per tensor, Chroma's max error against float64 PyTorch beside PyTorch float32's own error.
"""
import sys
import numpy as np
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

exp, _ = safetensors_io.load(sys.argv[1])
train, _ = safetensors_io.load(sys.argv[2])
infer, _ = safetensors_io.load(sys.argv[3])
worst_ratio, rows = 0.0, []
for key, ref in exp.items():
    if key.startswith("f32."):
        continue
    kind, name = key.split(".", 1)
    got = (train if kind == "train" else infer).get(name)
    if got is None:
        print("missing", key); sys.exit(1)
    ref32 = exp["f32." + key]
    scale = max(np.abs(ref).max(), 1e-30)
    err = np.abs(got.astype(np.float64) - ref).max() / scale
    err32 = np.abs(ref32.astype(np.float64) - ref).max() / scale
    ratio = err / max(err32, 1e-12)
    worst_ratio = max(worst_ratio, ratio) if "grad" in name else worst_ratio
    rows.append((key, err, err32, ratio))
rows.sort(key=lambda r: -r[3])
print(f"{'tensor':45s} {'chroma rel.err':>14s} {'torch f32 rel.err':>18s} {'ratio':>7s}")
for r in rows[:25]:
    print(f"{r[0]:45s} {r[1]:14.3e} {r[2]:18.3e} {r[3]:7.2f}")
for k in ("train.ab", "train.logits", "infer.ab", "infer.logits", "train.loss"):
    r = next(x for x in rows if x[0] == k)
    print(f"{k}: max relative error {r[1]:.2e}")
print(f"worst gradient error ratio (chroma / torch float32): {worst_ratio:.2f}")
