#!/usr/bin/env bash
# The ops page is tested in headless Chromium (Debian's package, driven by playwright-core).
# Installs it when missing and this user may; otherwise says what to install.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then exit 0; fi
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "warning: /usr/bin/chromium is missing; the ops page test needs it (apt-get install -y chromium)" >&2
fi
