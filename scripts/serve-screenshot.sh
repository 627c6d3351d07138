#!/usr/bin/env bash
# Makes docs/serve-screenshot.png: the page of `chroma serve` in headless Chromium with
# examples/colorado-national-park-1941.png colorized by the built-in default model. It is the
# screenshot the browser test (Chroma.Tests/Serve/ServeBrowserTests.cs) takes, saved where
# CHROMA_SERVE_SCREENSHOT says.
#
#   scripts/serve-screenshot.sh [--no-build]
#
# Needs Chromium and its driver (scripts/install-chromium.sh) and the .NET SDK.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$repo"
if [[ "${1:-}" != --no-build ]]; then dotnet build Chroma.Tests -c Release -v q; fi
cd Chroma.Tests
CHROMA_SERVE_SCREENSHOT="$repo/docs/serve-screenshot.png" \
  dotnet test --no-build -c Release -- --filter-method '*A_chosen_photo_is_shown_before_and_after*'
echo "serve-screenshot: wrote $repo/docs/serve-screenshot.png"
