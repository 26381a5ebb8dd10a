#!/usr/bin/env bash
# Prints the path of a Node.js binary of the given major line (e.g. 24), taken from the npm registry's
# node-linux-<arch> package (the binary the `node` npm package installs; npm checks its integrity) and
# unpacked into node_modules/.cache/vigil-node/<major>/ of this working tree. The machine's own Node.js
# is not touched. Used by scripts/test-node-lines.sh and the Debian package test.
set -euo pipefail
major="${1:?usage: $0 MAJOR (e.g. 24)}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/node_modules/.cache/vigil-node/$major"
if [ ! -x "$dir/bin/node" ]; then
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "node-line: no Node.js package for $(uname -m)" >&2; exit 1 ;; esac
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  tgz="$(cd "$tmp" && npm pack --silent "node-linux-$arch@$major" | tail -n 1)"
  mkdir -p "$dir.part"
  tar -xzf "$tmp/$tgz" -C "$dir.part" --strip-components=1 package/bin/node package/LICENSE
  rm -rf "$dir"
  mv "$dir.part" "$dir"
fi
echo "$dir/bin/node"
