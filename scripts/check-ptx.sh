#!/usr/bin/env bash
# Assembles every ILGPU kernel's PTX with NVIDIA's assembler (ptxas) for sm_80 (A100) and sm_90
# (H100/H200), without a GPU, and prints what ptxas reports for each: registers, shared memory,
# spill stores/loads and stack frame, as a Markdown table.
#
#   scripts/check-ptx.sh [--no-build] [REPORT.md]
#
#   --no-build   use the tree already built by `dotnet build -c Release` (as .ci/run does)
#   REPORT.md    also write the table there (or set CHROMA_PTX_REPORT)
#
# The PTX comes from KernelCompilationTests (Chroma.Tests/Kernels), which writes every
# kernel's PTX and OpenCL C into the folder CHROMA_KERNEL_DUMP names; it generates PTX ISA 8.4,
# the newest this ptxas accepts. ptxas is the one in Debian 13 (trixie)'s non-free
# nvidia-cuda-toolkit 12.4 package: only that .deb is downloaded (87 MB, with `apt-get download`
# under a private apt configuration; the machine's own apt sources and state stay untouched) and
# only usr/bin/ptxas is kept (it links nothing but libc), in a cache folder reused by later runs.
#
# Exits non-zero, naming the kernel, if ptxas rejects any kernel for either architecture.
# Spills are reported in the table, not treated as failures. This checks NVIDIA's assembler only:
# not the driver's loader, nor the numbers a kernel computes (inline PTX such as mma.sync runs only
# on a real GPU).
#
# Environment:
#   CHROMA_PTXAS_CACHE    where ptxas is kept (default /var/cache/chroma/ptxas)
#   CHROMA_DEBIAN_MIRROR  the Debian mirror (default: the one this machine's apt sources name)
#   CHROMA_PTX_REPORT     write the Markdown table to this file too
#   CHROMA_PTX_KEEP       keep the generated .ptx/.cl and ptxas logs in this folder
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd -P)
source "$repo/scripts/debian-mirror.sh"

build=1
if [[ "${1:-}" == --no-build ]]; then build=0; shift; fi
report="${1:-${CHROMA_PTX_REPORT:-}}"
cache="${CHROMA_PTXAS_CACHE:-/var/cache/chroma/ptxas}"
cache="${cache%/}"
ptxas="$cache/usr/bin/ptxas"
archs=(sm_80 sm_90)
test_exe="$repo/Chroma.Tests/bin/Release/net10.0/Chroma.Tests"
test_class=Chroma.Tests.Kernels.KernelCompilationTests

say() { echo "check-ptx: $*" >&2; }
die() { say "$*"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- ptxas -------------------------------------------------------------------------------------
if [[ -x "$ptxas" ]] && "$ptxas" --version >/dev/null 2>&1; then
  say "reusing $ptxas"
else
  started=$SECONDS
  mirror=$(debian_mirror)
  say "fetching nvidia-cuda-toolkit (trixie, non-free) from $mirror for its ptxas"
  apt_dir="$work/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/deb"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie non-free" \
    > "$apt_dir/sources.list"
  apt_options=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o APT::Sandbox::User=root
  )
  apt-get "${apt_options[@]}" -qq update >&2
  (cd "$apt_dir/deb" && apt-get "${apt_options[@]}" -qq download nvidia-cuda-toolkit >&2)
  deb=$(ls "$apt_dir"/deb/nvidia-cuda-toolkit_*.deb)
  mkdir -p "$work/x"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/x" ./usr/bin/ptxas
  "$work/x/usr/bin/ptxas" --version >/dev/null || die "the extracted ptxas does not run on this machine"
  # Into place only once whole: an interrupted fetch leaves no ptxas to reuse.
  mkdir -p "$cache/usr/bin"
  cp "$work/x/usr/bin/ptxas" "$ptxas.part"
  mv -f "$ptxas.part" "$ptxas"
  basename "$deb" > "$cache/SOURCE"
  say "ptxas from $(basename "$deb") in $cache ($((SECONDS - started)) s)"
fi
ptxas_version=$("$ptxas" --version | grep -Eo 'release [0-9.]+, V[0-9.]+' || true)

# --- PTX of every kernel ---------------------------------------------------------------------------
if ((build)); then
  say "building (dotnet build -c Release)"
  dotnet build "$repo" -c Release -nologo -v quiet >&2
fi
[[ -x "$test_exe" ]] || die "$test_exe is missing: run dotnet build -c Release (or drop --no-build)"

dump="${CHROMA_PTX_KEEP:-$work/kernels}"
mkdir -p "$dump"
rm -f "$dump"/*.ptx "$dump"/*.cl "$dump"/*.log
say "generating every kernel's PTX ($test_class, CHROMA_KERNEL_DUMP=$dump)"
started=$SECONDS
CHROMA_KERNEL_DUMP="$dump" "$test_exe" -class "$test_class" -noLogo -noColor >&2 \
  || die "$test_class failed: a kernel does not compile (see above)"
shopt -s nullglob
ptx_files=("$dump"/*.ptx)
cl_files=("$dump"/*.cl)
((${#ptx_files[@]} > 0)) || die "$test_class wrote no .ptx file into $dump"
((${#ptx_files[@]} == ${#cl_files[@]})) \
  || die "$test_class wrote ${#ptx_files[@]} .ptx but ${#cl_files[@]} .cl files: some kernel's PTX is missing"
say "${#ptx_files[@]} kernels generated in $((SECONDS - started)) s"

# --- ptxas -v on each, for each architecture -------------------------------------------------------
# ptxas -v prints, per entry function:
#   ptxas info    : Compiling entry function 'NAME' for 'sm_90'
#   ptxas info    : Function properties for NAME
#       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
#   ptxas info    : Used 93 registers, used 1 barriers, 8192 bytes smem, 400 bytes cmem[0]
# (smem is left out when there is none). Non-entry functions (.func) have "Function properties"
# too; only the entry's are taken. Output: "registers smem stores loads stack", the largest of each
# over the file's entries.
parse_v() {
  awk '
    /Compiling entry function/ { entry = $0; sub(/.*entry function ./, "", entry); sub(/. for .*/, "", entry); in_entry = 1; n++ }
    /Function properties for / { name = $0; sub(/.*Function properties for /, "", name); props = (name == entry) ; next }
    props && /stack frame/ {
      match($0, /[0-9]+ bytes stack frame/); v = substr($0, RSTART, RLENGTH) + 0; if (v > stack) stack = v
      match($0, /[0-9]+ bytes spill stores/); v = substr($0, RSTART, RLENGTH) + 0; if (v > stores) stores = v
      match($0, /[0-9]+ bytes spill loads/);  v = substr($0, RSTART, RLENGTH) + 0; if (v > loads) loads = v
      props = 0
    }
    in_entry && /Used [0-9]+ registers/ {
      match($0, /Used [0-9]+ registers/); v = substr($0, RSTART + 5, RLENGTH - 5) + 0; if (v > regs) regs = v
      if (match($0, /[0-9]+ bytes smem/)) { v = substr($0, RSTART, RLENGTH) + 0; if (v > smem) smem = v }
      in_entry = 0
    }
    END { if (n == 0) exit 1; printf "%d %d %d %d %d\n", regs, smem, stores, loads, stack }
  ' "$1"
}

started=$SECONDS
rows=()
failed=()
spilling=()
max_regs=0
max_regs_kernel=""
for file in "${ptx_files[@]}"; do
  kernel=$(basename "$file" .ptx)
  for arch in "${archs[@]}"; do
    log="$dump/$kernel.$arch.log"
    if ! "$ptxas" -arch="$arch" -v -o "$work/out.cubin" "$file" >"$log" 2>&1; then
      say "ptxas -arch=$arch rejects $kernel:"
      sed 's/^/    /' "$log" >&2
      failed+=("$kernel ($arch)")
      rows+=("| $kernel | $arch | **ptxas failed** | | | | |")
      continue
    fi
    if ! stats=$(parse_v "$log"); then
      failed+=("$kernel ($arch): no entry function in ptxas -v output")
      rows+=("| $kernel | $arch | ? | ? | ? | ? | ? |")
      continue
    fi
    read -r regs smem stores loads stack <<<"$stats"
    rows+=("| $kernel | $arch | $regs | $smem | $stores | $loads | $stack |")
    if ((stores > 0 || loads > 0)); then spilling+=("$kernel ($arch)"); fi
    if ((regs > max_regs)); then max_regs=$regs; max_regs_kernel="$kernel ($arch)"; fi
  done
done
say "assembled in $((SECONDS - started)) s"

table() {
  echo "### ptxas ${ptxas_version:-?}: ${#ptx_files[@]} kernels (PTX ISA 8.4) for ${archs[*]}"
  echo
  echo "| kernel | arch | registers | smem (bytes) | spill stores (bytes) | spill loads (bytes) | stack frame (bytes) |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Most registers: $max_regs, ${max_regs_kernel:-none}."
  if ((${#spilling[@]})); then
    echo "Spills: ${spilling[*]}."
  else
    echo "Spills: none."
  fi
  if ((${#failed[@]})); then
    echo "ptxas FAILED: ${failed[*]}."
  else
    echo "All ${#ptx_files[@]} kernels assemble for ${archs[*]}."
  fi
}
if [[ -n "$report" ]]; then
  mkdir -p "$(dirname "$report")"
  table > "$report"
  say "table written to $report"
fi
table

if ((${#failed[@]})); then
  say "ptxas rejected: ${failed[*]}"
  exit 1
fi
