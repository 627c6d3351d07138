#!/usr/bin/env python3
"""Golden tensors from PyTorch for Chroma's parity checks.

Writes into OUT/:
  model.safetensors     random weights (and non-trivial batch-norm running statistics) with Chroma's names
  input.safetensors     local [N,1,S,S], target_ab, label (int64)        -- for `chroma forward --train`
  infer.safetensors     local [N,1,H,W], global [N,1,S,S]                -- for `chroma forward` (inference)
  expected.safetensors  float64 results: train.ab, train.logits, train.loss, train.grad.NAME,
                        infer.ab, infer.logits; and the float32 PyTorch results under f32.* so a
                        test can compare Chroma's error with PyTorch's own float32 error.

Usage: /usr/bin/python3 tools/torch/make_golden.py --width 0.0625 --input-size 64 --n 2 --h 48 --w 40 --out DIR
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from colorizer import Colorizer, joint_loss  # noqa: E402
import safetensors_io  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=float, default=0.0625)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--fusion-kernel", type=int, default=1)
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--h", type=int, default=48)
    ap.add_argument("--w", type=int, default=40)
    ap.add_argument("--alpha", type=float, default=1.0 / 300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    s = a.input_size

    model = Colorizer(a.width, a.classes, a.fusion_kernel, s).double()
    with torch.no_grad():
        for name, t in model.named_chroma_tensors():
            if name.endswith("running_mean"):
                t.copy_(torch.randn_like(t) * 0.1)
            elif name.endswith("running_var"):
                t.copy_(torch.rand_like(t) + 0.5)
            elif name.endswith(".weight") and ".bn" in name or ".fcbn" in name and name.endswith(".weight"):
                t.copy_(torch.rand_like(t) + 0.5)          # gamma away from 0
            elif name.endswith(".bias"):
                t.copy_(torch.randn_like(t) * 0.1)
    meta = {"format": "chroma-colorizer", "format_version": "1", "width": repr(a.width), "classes": str(a.classes),
            "fusion_kernel": str(a.fusion_kernel), "input_size": str(s)}
    weights = {n: t.detach().float().numpy() for n, t in model.named_chroma_tensors()}
    safetensors_io.save(os.path.join(a.out, "model.safetensors"), weights, meta)
    # the float64 model holds exactly the float32-rounded weights
    with torch.no_grad():
        for n, t in model.named_chroma_tensors():
            t.copy_(torch.from_numpy(weights[n]).double())
    model32 = Colorizer(a.width, a.classes, a.fusion_kernel, s)
    with torch.no_grad():
        for (n, t32), (_, t64) in zip(model32.named_chroma_tensors(), model.named_chroma_tensors()):
            t32.copy_(t64.float())

    # training-mode batch: one low-level pass on S x S
    local = torch.rand(a.n, 1, s, s).float()
    target = torch.rand(a.n, 2, s // 2, s // 2).float()
    label = torch.randint(0, a.classes, (a.n,))
    safetensors_io.save(os.path.join(a.out, "input.safetensors"),
                        {"local": local.numpy(), "target_ab": target.numpy(), "label": label.numpy().astype(np.int64)})
    # inference: another size on the local path, a separate global image
    ilocal = torch.rand(a.n, 1, a.h, a.w).float()
    iglobal = torch.rand(a.n, 1, s, s).float()
    safetensors_io.save(os.path.join(a.out, "infer.safetensors"), {"local": ilocal.numpy(), "global": iglobal.numpy()})

    expected = {}
    for prefix, m, dt in (("", model, torch.float64), ("f32.", model32, torch.float32)):
        m.train()
        m.zero_grad()
        ab, logits = m(local.to(dt))
        loss = joint_loss(ab, logits, target.to(dt), label, a.alpha)
        loss.backward()
        expected[prefix + "train.ab"] = ab.detach().numpy()
        expected[prefix + "train.logits"] = logits.detach().numpy()
        expected[prefix + "train.loss"] = loss.detach().reshape(1).numpy()
        for n, t in m.named_chroma_tensors():
            if "running" not in n:
                expected[prefix + "train.grad." + n] = t.grad.detach().numpy()
        # restore running statistics changed by the training-mode pass, then infer
        with torch.no_grad():
            for n, t in m.named_chroma_tensors():
                if "running" in n:
                    t.copy_(torch.from_numpy(weights[n]).to(dt))
        m.eval()
        with torch.no_grad():
            iab, ilogits = m(ilocal.to(dt), iglobal.to(dt))
        expected[prefix + "infer.ab"] = iab.numpy()
        expected[prefix + "infer.logits"] = ilogits.numpy()
    safetensors_io.save(os.path.join(a.out, "expected.safetensors"), expected)
    print(f"wrote golden tensors to {a.out}: {sum(v.size for v in weights.values())} weights")


if __name__ == "__main__":
    main()
