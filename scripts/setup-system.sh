#!/usr/bin/env bash
# Installs the Debian packages one use of this repository needs, and nothing else:
#
#   scripts/setup-system.sh demo           what `npm run demo` needs (scripts/packages/demo.txt)
#   scripts/setup-system.sh test           the demo's list and every scripts/packages/test-*.txt (`npm test`)
#   scripts/setup-system.sh bench [NAME]   the demo's list and scripts/packages/bench-NAME.txt if there is one
#                                          (no NAME: every bench-*.txt)
#
# Safe to run again. It never stops, disables, restarts or kills a service: packages are installed
# with a policy-rc.d that forbids starting their services (a benchmark baseline such as keepalived or a
# test's database server is started by the benchmark or test itself, with its own configuration), and
# services that were already running are left exactly as they were.
# VIGIL_SETUP_SKIP_NPM=1 skips the npm step (tests that run this script inside a shared working tree).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lists="$here/packages"

usage() {
  echo "usage: $0 demo | test | bench [NAME]" >&2
  exit 2
}

files=("$lists/demo.txt")
case "${1:-}" in
  demo) ;;
  test) files+=("$lists"/test-*.txt) ;;
  bench)
    if [ -n "${2:-}" ]; then
      # a benchmark without a list of its own needs only what the demo needs
      [ -f "$lists/bench-$2.txt" ] && files+=("$lists/bench-$2.txt")
    else
      files+=("$lists"/bench-*.txt)
    fi
    ;;
  *) usage ;;
esac

mapfile -t pkgs < <(cat "${files[@]}" | sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' | sort -u)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system: missing packages ${missing[*]}; run as root (sudo) to install them" >&2
    exit 1
  fi
  # One setup at a time: the policy-rc.d below belongs to the run that placed it.
  exec 9>/run/vigil-setup.lock
  flock 9
  policy=/usr/sbin/policy-rc.d
  ours=""
  if [ ! -e "$policy" ] || grep -q 'vigil scripts/setup-system.sh' "$policy"; then
    # invoke-rc.d and deb-systemd-invoke ask this before starting (or stopping) any service: 101 = not allowed.
    # (A copy with our marker is a leftover of an interrupted run: ours to remove too.)
    printf '#!/bin/sh\n# placed by vigil scripts/setup-system.sh while it installs packages; removed when it ends\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=1
    trap 'rm -f "$policy"' EXIT
  else
    echo "setup-system: keeping the existing $policy (it decides whether installed packages start their services)" >&2
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "setup-system: installing ${missing[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
  if [ -n "$ours" ]; then rm -f "$policy"; trap - EXIT; fi
fi

# Ensure /dev/fuse exists (some minimal images lack the node).
[ -e /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229 || true

if [ "${VIGIL_SETUP_SKIP_NPM:-}" != 1 ]; then
  cd "$here/.."
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
