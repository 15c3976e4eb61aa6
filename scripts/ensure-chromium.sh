#!/usr/bin/env bash
# Debian's headless Chromium for the browser tests (a test tool's own browser download is
# not reachable here). Idempotent.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "ensure-chromium: installing chromium from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
