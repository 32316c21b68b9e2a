#!/usr/bin/env bash
# Run a command with Debian's chromium and chromium-driver at hand, installed if missing (the
# console's browser tests drive them through Selenium). The command sees CHROMIUM_BINARY and
# CHROMEDRIVER, the paths of both.
set -euo pipefail

find_chromium() { command -v chromium || command -v chromium-browser || true; }

if [ -z "$(find_chromium)" ] || ! command -v chromedriver >/dev/null; then
  echo "with-chromium: installing chromium and chromium-driver from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

export CHROMIUM_BINARY="${CHROMIUM_BINARY:-$(find_chromium)}"
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
"$@"
