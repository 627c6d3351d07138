#!/usr/bin/env bash
# The one prepared GPU run: the test suite against CUDA, then Chroma and the PyTorch + cuDNN peer timed
# on the same card in one run (alternating, 3 rounds), a short table last.
#
#   scripts/gpu-bench.sh build   here (needs the .NET SDK): publishes the suite and `chroma`
#                                self-contained via scripts/test-cuda.sh build into
#                                publish/chroma-tests-linux-x64.tar.gz (carry that one file)
#   scripts/gpu-bench.sh run     on the GPU machine (needs the NVIDIA driver, and python3 with torch
#                                for the peer): unpacks, runs the suite with CHROMA_TEST_GPU=cuda,
#                                then the benchmarks; writes every log and JSON file to $OUT (or
#                                ./gpu-bench-out) and prints the table last
#
# Environment: ROUNDS (3), REPEATS (20 timed runs per figure), SUITE_TIMEOUT (300 s),
# SKIP_SUITE=1 to time only. The peer runs with cuDNN's default algorithm choice and again with
# torch.backends.cudnn.benchmark (its best case), both in every round.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
tarball=publish/chroma-tests-linux-x64.tar.gz

if [[ "$mode" == build ]]; then
  bash scripts/test-cuda.sh build
  exit 0
fi
[[ "$mode" == run ]] || { echo "usage: scripts/gpu-bench.sh build|run" >&2; exit 2; }

out="${OUT:-$PWD/gpu-bench-out}"
mkdir -p "$out"
rounds="${ROUNDS:-3}" repeats="${REPEATS:-20}"
[[ -x publish/tests/Chroma.Tests ]] || tar -C publish -xzf "$tarball"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt" || true

suite="skipped"
if [[ "${SKIP_SUITE:-0}" != 1 ]]; then
  echo "== suite against CUDA"
  set +e
  CHROMA_TEST_GPU=cuda timeout "${SUITE_TIMEOUT:-300}" publish/tests/Chroma.Tests > "$out/suite.log" 2>&1
  rc=$?
  set -e
  tail -n 8 "$out/suite.log"
  suite="exit $rc: $(grep -E '^\s*(total|failed|succeeded):' "$out/suite.log" | tr -s ' ' | tr '\n' ' ')"
fi

echo "== benchmarks, $rounds rounds alternating"
for round in $(seq 1 "$rounds"); do
  publish/tests/chroma bench --device cuda --json --gemm 4096 --repeats "$repeats" > "$out/chroma-$round.json" 2> "$out/chroma-$round.err" \
    || echo "chroma bench failed in round $round (see chroma-$round.err)"
  python3 Chroma.Benchmarks/peer/network_torch.py --device cuda --json --gemm 4096 --repeats "$repeats" > "$out/torch-$round.json" 2> "$out/torch-$round.err" \
    || echo "peer failed in round $round (see torch-$round.err)"
  python3 Chroma.Benchmarks/peer/network_torch.py --device cuda --json --gemm 0 --repeats "$repeats" --cudnn-benchmark > "$out/torchbm-$round.json" 2> "$out/torchbm-$round.err" \
    || echo "peer (cudnn.benchmark) failed in round $round"
done

echo "== suite: $suite"
python3 - "$out" "$rounds" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(prefix):
    runs = []
    for r in range(1, rounds + 1):
        try:
            with open(os.path.join(out, f"{prefix}-{r}.json")) as f: runs.append(json.load(f))
        except (OSError, ValueError): pass
    return runs
def key(e): return (e["what"], e.get("width"), e.get("batch"), e.get("size"))
def medians(runs):
    by = {}
    for run in runs:
        for e in run["entries"]: by.setdefault(key(e), []).append(e["median_ms"])
    return {k: statistics.median(v) for k, v in by.items()}
chroma, torch, torchbm = load("chroma"), load("torch"), load("torchbm")
c, t, tb = medians(chroma), medians(torch), medians(torchbm)
logs = {}
for run in chroma:
    for e in run["entries"]: logs[key(e)] = e
if chroma: print("chroma:", chroma[0]["device"])
if torch: print("peer:  ", torch[0]["device"])
print(f"{'what':<36}{'chroma ms':>11}{'torch ms':>10}{'bm ms':>8}{'ratio':>7}  launches copies syncs allocs")
for k in sorted(set(c) | set(t), key=str):
    what = f"{k[0]}" + (f" w{k[1]}" if k[1] is not None else "") + (f" b{k[2]}" if k[2] and k[0] != "gemm" else "") + (f" {k[3]}^3" if k[3] else "")
    cm, tm, bm = c.get(k), t.get(k), tb.get(k)
    peer = min(x for x in (tm, bm) if x is not None) if (tm or bm) else None
    ratio = f"{cm / peer:.2f}" if cm and peer else "-"
    l = logs.get(k, {})
    fmt = lambda v: f"{v:.2f}" if v is not None else "-"
    print(f"{what:<36}{fmt(cm):>11}{fmt(tm):>10}{fmt(bm):>8}{ratio:>7}  {l.get('launches','-')} {l.get('copies','-')} {l.get('syncs','-')} {l.get('allocations','-')}")
print("ratio = Chroma's median over the peer's better median (default or cudnn.benchmark); medians of", rounds, "rounds")
print("targets (issue 10): training step <= 3x, inference <= 2x")
PY
