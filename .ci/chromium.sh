#!/usr/bin/env bash
# Installs Debian's Chromium, its chromedriver and a Chinese font (the screens are zh-CN) when
# missing, for the browser tests (tests/browser); prints the chromedriver path to export as
# GOVFUSION_TEST_CHROMEDRIVER (everything else goes to stderr).  Usage: .ci/chromium.sh
set -euo pipefail
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null \
  || ! fc-list 2>/dev/null | grep -qi "wenquanyi"; then
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
      chromium chromium-driver fonts-wqy-microhei; } >&2
fi
dpkg-query -W chromium chromium-driver >&2
command -v chromedriver
