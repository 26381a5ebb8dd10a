#!/usr/bin/env bash
# `npm test`'s suites on the Node.js lines Vigil supports (README "Node.js lines"):
#   1. every suite (unit, integration, e2e) on the machine's Node.js;
#   2. the unit and integration suites again on Node.js 24 (the active LTS line), a binary from the npm
#      registry (scripts/node-line.sh): unit includes the functions' tests, so they run on the runtime
#      the AWS stack deploys (nodejs24.x);
#   3. the functions' tests on any other Lambda runtime the stacks name (none today).
# Both runs are reported; the script fails if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
vitest=node_modules/vitest/vitest.mjs
status=0

echo "== every suite on the machine's Node.js $(node --version)"
node "$vitest" run || status=1

node24="$(bash scripts/node-line.sh 24)" || exit 1
echo "== unit and integration suites on Node.js $("$node24" --version) (npm registry binary; the functions' tests on the Lambda nodejs24.x runtime's line)"
# The suites spawn `node` (daemons, CLIs): put Node 24 first on the PATH so they run on it too.
PATH="$(dirname "$node24"):$PATH" "$node24" "$vitest" run test/unit test/integration || status=1

for major in $(grep -rhoE 'Runtime\.NODEJS_[0-9]+_X' infra --include='*.ts' | grep -oE '[0-9]+' | sort -u); do
  [ "$major" = 24 ] && continue
  nodeN="$(bash scripts/node-line.sh "$major")" || exit 1
  echo "== the functions' tests on Node.js $("$nodeN" --version) (a Lambda runtime in infra/)"
  PATH="$(dirname "$nodeN"):$PATH" "$nodeN" "$vitest" run test/unit/functions- || status=1
done
exit $status
