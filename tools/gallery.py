#!/usr/bin/env python3
"""Builds the model card's before/after gallery with the `chroma` tool.

    /usr/bin/python3 tools/gallery.py --chroma Chroma.Cli/bin/Release/net10.0/chroma \
        --bw DATA/bw --val DATA/val --out docs/gallery    # DATA: the photo set (docs/model/DATA_README.md)

Colorizes every image of --bw and the first image of each class folder of --val with the
default model (or --model), runs two global-prior transfers (--global-from), writes small JPEG
thumbnails into --out and prints the Markdown tables for docs/MODEL_CARD.md. Needs Pillow
(Debian: python3-pil) for the thumbnails only.
"""
import argparse, os, subprocess, sys, tempfile
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("--chroma", required=True)
ap.add_argument("--model")
ap.add_argument("--bw", required=True)
ap.add_argument("--val", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--side", type=int, default=320)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
tmp = tempfile.mkdtemp(prefix="chroma-gallery-")


def colorize(src, dst, global_from=None):
    cmd = [a.chroma, "colorize", src, "-o", dst, "--overwrite"]
    if a.model: cmd += ["--model", a.model]
    if global_from: cmd += ["--global-from", global_from]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def thumb(src, name, gray=False):
    im = Image.open(src)
    im = im.convert("L" if gray else "RGB")
    im.thumbnail((a.side, a.side))
    im.save(os.path.join(a.out, name), quality=85)
    return f"gallery/{name}"


print("### Black-and-white photographs (`bw/` of the photo set)\n")
print("| input | Chroma |\n|---|---|")
for f in sorted(os.listdir(a.bw)):
    stem = os.path.splitext(f)[0]
    out = os.path.join(tmp, stem + "-color.png")
    colorize(os.path.join(a.bw, f), out)
    print(f"| ![]({thumb(os.path.join(a.bw, f), 'bw-' + stem + '-in.jpg', gray=True)}) | ![]({thumb(out, 'bw-' + stem + '-chroma.jpg')}) |")

print("\n### Validation photos (`val/` of the photo set, first image of each class)\n")
print("| gray input | Chroma | original |\n|---|---|---|")
val_firsts = []
for cls in sorted(os.listdir(a.val)):
    files = sorted(os.listdir(os.path.join(a.val, cls)))
    if not files: continue
    src = os.path.join(a.val, cls, files[0]); stem = f"val-{cls}"
    val_firsts.append(src)
    out = os.path.join(tmp, stem + "-color.png")
    colorize(src, out)
    print(f"| ![]({thumb(src, stem + '-in.jpg', gray=True)}) | ![]({thumb(out, stem + '-chroma.jpg')}) | ![]({thumb(src, stem + '-orig.jpg')}) |")

def mean_abs_diff(p, q):
    x, y = Image.open(p).convert("RGB"), Image.open(q).convert("RGB")
    px, py = x.tobytes(), y.tobytes()
    return sum(abs(u - v) for u, v in zip(px, py)) / len(px)


print("\n### Global features: the same photo with another photo's global features (`--global-from`)\n")
print("| input | own global features | global features from | result | mean abs. RGB change (0-255) |\n|---|---|---|---|---|")
pairs = [(os.path.join(a.bw, "french-alpine-landscape.jpg"), next(v for v in val_firsts if "/sky/" in v or "/landscape/" in v)),
         (os.path.join(a.bw, "march-pastoral.jpg"), next(v for v in val_firsts if "/flower/" in v))]
for i, (src, style) in enumerate(pairs):
    own = os.path.join(tmp, f"g{i}-own.png"); other = os.path.join(tmp, f"g{i}-other.png")
    colorize(src, own); colorize(src, other, global_from=style)
    print(f"| ![]({thumb(src, f'global{i}-in.jpg', gray=True)}) | ![]({thumb(own, f'global{i}-own.jpg')}) | ![]({thumb(style, f'global{i}-from.jpg')}) | ![]({thumb(other, f'global{i}-result.jpg')}) | {mean_abs_diff(own, other):.1f} |")
