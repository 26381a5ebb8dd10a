#!/usr/bin/env bash
# Installs the Debian packages Vigil's daemon, demo, tests and benchmarks use.
# Called by `npm run demo`, `npm run test:all` and .ci/run; safe to run again.
set -euo pipefail
# Package lists, one per line: scripts/packages/demo.txt (the demo and daemon), test-*.txt and bench-*.txt
# (what a suite or benchmark needs; each area keeps its own list).
mapfile -t pkgs < <(cat "$(dirname "$0")"/packages/*.txt | sed -e 's/#.*//' -e '/^[[:space:]]*$/d' | sort -u)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system: missing packages ${missing[*]}; run as root (sudo) to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# keepalived is only a benchmark baseline: never let the package's own service run.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now keepalived >/dev/null 2>&1 || true; fi
pkill -x keepalived 2>/dev/null || true
# Ensure /dev/fuse exists (some minimal images lack the node).
[ -e /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229 || true
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
