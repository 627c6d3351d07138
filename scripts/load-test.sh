#!/usr/bin/env bash
# Load test of `chroma serve` (Chroma.Tests/Serve/ServeLoadTests.cs, an explicit test the suite
# leaves out): the real command with the built-in default model on the CPU, 2 workers and a queue
# of 4, and 8 concurrent clients for CHROMA_LOAD_SECONDS (default 25) sending valid photos (waiting
# the Retry-After of a 503 before their next request),
# unreadable and truncated files, uploads over the size and pixel limits, a wrong Content-Type and a
# bad option. It fails if any request goes unanswered or gets a status its kind does not allow, if
# the health check fails afterwards, or if Ctrl-C does not stop the server with exit code 130. The
# figures (requests by status, latency median and p95, the server's peak memory) are printed.
#
#   scripts/load-test.sh [--no-build]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$repo"
if [[ "${1:-}" != --no-build ]]; then dotnet build Chroma.Tests -c Release -v q; fi
report="$repo/Chroma.Tests/bin/Release/net10.0/serve-load-report.txt"
rm -f "$report"
rc=0
(cd Chroma.Tests && dotnet test --no-build -c Release -- --filter-class '*ServeLoadTests' --explicit only) || rc=$?
echo
if [[ -f "$report" ]]; then cat "$report"; else echo "load-test: no report was written"; fi
exit "$rc"
