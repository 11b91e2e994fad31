#!/usr/bin/env bash
# Installs everything pocketvec needs on a fresh Debian machine: the venv with the Python package,
# the system tools (poppler, librsvg, chromium) and the sample app's npm packages. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3.11 -m venv "$VENV" || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch==2.14.1 / torchvision==0.29.1 come from this machine's wheel cache (pinned in pyproject.toml)
"$VENV/bin/python" -m pip install -q -e '.[dev]'

# Debian tools: PDF pages (pdftoppm), SVG flags (rsvg-convert), the browser for the sample-app tests.
need=()
for pkg in poppler-utils librsvg2-bin chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if [ -f sample_app/package-lock.json ]; then
  (cd sample_app && npm ci --no-audit --no-fund --loglevel=error)
fi
touch "$VENV/.installed"
