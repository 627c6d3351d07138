#!/usr/bin/env bash
# Runs Chroma's test suite against a real GPU (CUDA) instead of ILGPU's CPU accelerator.
#
#   scripts/test-cuda.sh build   publish the suite self-contained for linux-x64 into
#                                publish/tests and pack it as publish/chroma-tests-linux-x64.tar.gz
#                                (needs the .NET SDK; the GPU machine needs none). The `chroma`
#                                tool is published into the same folder (one runtime for both),
#                                so `publish/tests/chroma bench --device cuda` times the GPU too.
#   scripts/test-cuda.sh run     unpack (if needed) and run it with CHROMA_TEST_GPU=cuda
#                                (needs only the NVIDIA driver)
#   scripts/test-cuda.sh         both
#
# Needs nothing on the GPU machine but the NVIDIA driver: the suite is self-contained, and SkiaSharp's
# native library is the NoDependencies build (no libfontconfig1).
# Extra arguments after the mode go to the xunit runner, e.g. `run -class Chroma.Tests.Kernels.GemmTests`.
# CHROMA_TEST_GPU=opencl runs the same suite on an OpenCL device instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"; shift || true
out=publish/tests
tarball=publish/chroma-tests-linux-x64.tar.gz

if [[ "$mode" == build || "$mode" == all ]]; then
  rm -rf "$out"
  for project in Chroma.Tests Chroma.Cli; do
    dotnet publish "$project" -c Release -r linux-x64 --self-contained \
      -p:InvariantGlobalization=true -o "$out"
  done
  tar -C publish -czf "$tarball" tests
  echo "packed $(du -h "$tarball" | cut -f1) into $tarball"
fi

if [[ "$mode" == run || "$mode" == all ]]; then
  [[ -x "$out/Chroma.Tests" ]] || tar -C publish -xzf "$tarball"
  export CHROMA_TEST_GPU="${CHROMA_TEST_GPU:-cuda}"
  echo "running the suite with CHROMA_TEST_GPU=$CHROMA_TEST_GPU"
  "$out/Chroma.Tests" "$@"
fi
