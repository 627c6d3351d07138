#!/usr/bin/env bash
# Runs Chroma's whole test suite against a real OpenCL runtime without a GPU: PoCL 6 (CPU device)
# from Debian 13 (trixie), in a chroot, with CHROMA_TEST_GPU=opencl, so the "gpu" path of every op
# test runs ILGPU's OpenCL C kernels as an OpenCL driver compiles and executes them.
#
#   scripts/test-opencl.sh [--no-build] [xunit arguments...]
#
#   --no-build        use the tree already built by `dotnet build -c Release` (as .ci/run does)
#   xunit arguments   go to the test executable, e.g. `-class Chroma.Tests.Kernels.GemmTests`
#
# Why a chroot: ILGPU 1.5.3 accepts only OpenCL devices with the generic address space; Debian 12's
# PoCL 3.1 reports none, and Mesa's rusticl aborts on dynamic shared memory. PoCL 6.0 runs the
# whole suite. The chroot is made once with debootstrap (about 2 minutes, 750 MB) and reused; a
# marker file written at the end of a complete setup tells a finished chroot from one an
# interrupted run left half-built, which is removed and made again.
#
# Needs root (debootstrap, mount, chroot) and the .NET SDK on the host. Environment:
#   CHROMA_POCL_CHROOT    where the chroot lives (default /var/cache/chroma/pocl-trixie)
#   CHROMA_DEBIAN_MIRROR  the Debian mirror (default: the one this machine's apt sources name)
#
# The host's /proc, /sys (PoCL needs it to size the device), /dev, the .NET SDK folder and this
# checkout are bind-mounted into the chroot at the same paths for the run, and unmounted on exit
# (success, failure or Ctrl-C). Exits with the test run's status.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd -P)
source "$repo/scripts/debian-mirror.sh"

build=1
if [[ "${1:-}" == --no-build ]]; then build=0; shift; fi

chroot_dir="${CHROMA_POCL_CHROOT:-/var/cache/chroma/pocl-trixie}"
chroot_dir="${chroot_dir%/}"
suite=trixie
packages=(pocl-opencl-icd ocl-icd-opencl-dev libicu76 libfontconfig1)
marker="$chroot_dir/.chroma-chroot-complete"
test_bin="$repo/Chroma.Tests/bin/Release/net10.0"
test_exe="$test_bin/Chroma.Tests"

say() { echo "test-opencl: $*" >&2; }
die() { say "$*"; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (debootstrap, mount and chroot); run it as root or with sudo"
[[ "$chroot_dir" == /* && "$chroot_dir" != / ]] || die "CHROMA_POCL_CHROOT must be an absolute path other than /"
case "$chroot_dir/" in "$repo"/*) die "the chroot ($chroot_dir) must be outside the checkout ($repo)";; esac
command -v dotnet >/dev/null || die "the .NET SDK (dotnet) is not on PATH"
sdk=$(dirname "$(readlink -f "$(command -v dotnet)")")

# One run at a time per chroot: a second run waits rather than mounting over (or unmounting under)
# the first one.
mkdir -p "$(dirname "$chroot_dir")"
exec 9>"$chroot_dir.lock"
if ! flock -n 9; then
  say "another run holds $chroot_dir.lock; waiting for it"
  flock 9
fi

# Mount points at or below the chroot, deepest first (from this process's mount table).
mounts_under() {
  awk -v root="$chroot_dir" '{
      mp = $5
      while (match(mp, /\\[0-7][0-7][0-7]/)) {   # mountinfo escapes spaces etc. as \040
        c = sprintf("%c", (substr(mp, RSTART + 1, 1) * 64) + (substr(mp, RSTART + 2, 1) * 8) + substr(mp, RSTART + 3, 1))
        mp = substr(mp, 1, RSTART - 1) c substr(mp, RSTART + 4)
      }
      if (mp == root || index(mp, root "/") == 1) print length(mp) "\t" mp
    }' /proc/self/mountinfo | sort -rn | cut -f2-
}

unmount_all() {
  local mp
  while IFS= read -r mp; do
    [[ -n "$mp" ]] || continue
    umount "$mp" 2>/dev/null || umount --lazy "$mp" 2>/dev/null || say "could not unmount $mp"
  done < <(mounts_under)
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  unmount_all
  [[ -n "${log:-}" ]] && rm -f "$log"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# bind SOURCE: mounts the host's SOURCE at the same path inside the chroot.
bind() {
  local target="$chroot_dir$1"
  mkdir -p "$target"
  mount --bind "$1" "$target"
}

in_chroot() {
  chroot "$chroot_dir" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# Mounts left by a run that was killed outright (SIGKILL, power loss) are stale: this run holds
# the lock.
if [[ -n "$(mounts_under)" ]]; then
  say "unmounting what an earlier run left mounted under $chroot_dir"
  unmount_all
fi

# install_packages: the PoCL runtime and what .NET and SkiaSharp need, then the marker that says
# the chroot is complete (it records the package list: a chroot made for another list gets the
# missing packages installed rather than being rebuilt).
install_packages() {
  cp -L /etc/resolv.conf "$chroot_dir/etc/resolv.conf" 2>/dev/null || true
  bind /proc; bind /sys; bind /dev
  say "installing ${packages[*]} in the chroot"
  in_chroot apt-get update -qq
  in_chroot apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${packages[@]}" >/dev/null
  in_chroot apt-get clean
  unmount_all
  printf 'suite=%s\nmirror=%s\npackages=%s\ncreated=%s\n' \
    "$suite" "$(debian_mirror)" "${packages[*]}" "$(date -u +%FT%TZ)" > "$marker.part"
  mv -f "$marker.part" "$marker"
}

setup_started=$SECONDS
if [[ -f "$marker" ]] && grep -qxF "packages=${packages[*]}" "$marker"; then
  say "reusing the chroot in $chroot_dir"
elif [[ -f "$marker" ]]; then
  say "the chroot in $chroot_dir was made for other packages; updating it"
  rm -f "$marker"
  install_packages
else
  command -v debootstrap >/dev/null || {
    say "installing debootstrap on the host"
    if ! apt-cache policy debootstrap 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  mirror=$(debian_mirror)
  if [[ -e "$chroot_dir" ]]; then
    [[ -z "$(mounts_under)" ]] || die "$chroot_dir still has mounts; refusing to delete it"
    say "removing the incomplete chroot $chroot_dir (no $(basename "$marker"): an earlier setup was interrupted)"
    rm -rf --one-file-system "$chroot_dir"
  fi
  say "creating a Debian $suite chroot in $chroot_dir from $mirror (1-2 minutes)"
  log=$(mktemp)
  if ! debootstrap --variant=minbase "$suite" "$chroot_dir" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "debootstrap failed (more in $chroot_dir/debootstrap/debootstrap.log)"
  fi
  install_packages
  say "chroot ready in $((SECONDS - setup_started)) s"
fi

if ((build)); then
  say "building (dotnet build -c Release)"
  dotnet build "$repo" -c Release -nologo -v quiet >&2
fi
[[ -x "$test_exe" ]] || die "$test_exe is missing: run dotnet build -c Release (or drop --no-build)"

bind /proc; bind /sys; bind /dev; bind "$sdk"; bind "$repo"

say "running the suite on PoCL's OpenCL device (CHROMA_TEST_GPU=opencl)"
[[ -n "${log:-}" ]] || log=$(mktemp)
tests_started=$SECONDS
set +e
# The chroot has no Chromium: the browser test of `chroma serve`, which has nothing to do with OpenCL
# and runs in the first pass of the suite, is skipped here (CHROMA_SKIP_BROWSER=1).
# shellcheck disable=SC2016  # $1 and $@ are the inner shell's
chroot "$chroot_dir" /usr/bin/env -i HOME=/root PATH="$sdk:/usr/bin:/bin" DOTNET_ROOT="$sdk" \
  CHROMA_TEST_GPU=opencl CHROMA_SKIP_BROWSER=1 /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$test_bin" "$test_exe" -noColor "$@" 2>&1 \
  | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The xunit runner's summary: "Chroma.Tests  Total: 505, Errors: 0, Failed: 0, Skipped: 0, ...".
totals=$(grep -Eo 'Total: [0-9]+, Errors: [0-9]+, Failed: [0-9]+, Skipped: [0-9]+(, Not Run: [0-9]+)?' "$log" | tail -n 1 || true)
echo
if [[ -n "$totals" ]]; then
  echo "OpenCL (PoCL, CHROMA_TEST_GPU=opencl) test totals: $totals (exit code $status, $((SECONDS - tests_started)) s)"
else
  echo "OpenCL (PoCL, CHROMA_TEST_GPU=opencl): no test summary (the test host died?), exit code $status"
  ((status != 0)) || status=1
fi
exit "$status"
