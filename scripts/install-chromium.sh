#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium and its WebDriver (chromium, chromium-driver) for the
# browser test of `chroma serve` (Chroma.Tests/Serve/ServeBrowserTests.cs), which drives
# /usr/bin/chromium through /usr/bin/chromedriver.
#
#   scripts/install-chromium.sh
#
# Idempotent: does nothing when both /usr/bin/chromium and /usr/bin/chromedriver exist. Otherwise
# needs root (apt-get) and this machine's Debian archive; no recommended packages (no fonts beyond
# the dependencies, no GUI extras), so about 100 MB.
set -euo pipefail

say() { echo "install-chromium: $*" >&2; }

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  say "already installed: $(/usr/bin/chromium --version 2>/dev/null || echo chromium), $(/usr/bin/chromedriver --version 2>/dev/null | head -n 1 || echo chromedriver)"
  exit 0
fi
if ((EUID != 0)); then
  say "needs root to install chromium and chromium-driver with apt-get (or install them yourself)"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium chromium-driver
say "installed: $(/usr/bin/chromium --version 2>/dev/null), $(/usr/bin/chromedriver --version 2>/dev/null | head -n 1)"
