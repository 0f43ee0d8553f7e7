#!/usr/bin/env bash
# Every suite of the project, in order; ends with one summary line and fails if any suite failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser || { echo "hvar test: FAILED (setup)"; exit 1; }

export PATH="$PWD/node_modules/.bin:$PATH"   # Node 22 from the node@22 dev dependency comes first
export WRANGLER_SEND_METRICS=false
py=model/.venv/bin

passed=() failed=()
suite() {
  local name=$1; shift
  local start=$SECONDS
  echo "━━ $name: $*"
  if "$@"; then passed+=("$name"); else failed+=("$name"); fi
  echo "━━ $name: $((SECONDS - start))s"
}

start=$SECONDS
suite wrangler-types npm run --silent types -- --check
suite tsc-worker tsc -p worker
suite tsc-runner tsc -p gpu-runner
suite tsc-demo tsc -p worker/tsconfig.demo.json
suite tsc-contract bash -c "tsc -p packages/contract && tsc -p test/contract"
suite tsc-client bash -c "tsc -p packages/client && tsc -p test/client"
suite tsc-cli bash -c "tsc -p packages/cli && tsc -p test/cli"
suite eslint eslint . --max-warnings 0
# The worker's OpenAPI document (docs/openapi.json; test/client/openapi.test.ts keeps it equal to what the
# worker serves) under Redocly's recommended rules (redocly.yaml). Offline: no telemetry, no update check.
suite openapi-lint env REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true redocly lint --format=stylish docs/openapi.json
suite ruff bash -c "$py/ruff check model bench infra/replicate && $py/ruff format --check model bench infra/replicate"
suite vitest vitest run
suite pytest bash -c "cd model && .venv/bin/pytest -rs"   # -rs: why each test skipped, e.g. no ../shared
# The Replicate model's Cog predictor (infra/replicate): its schema against the worker's contract, and predictions
# through the real runner and model against the CLI's pixels, without Docker (conftest.py stands in for cog).
suite cog-predictor "$py/pytest" -rs infra/replicate

total=$(( ${#passed[@]} + ${#failed[@]} ))
if [ ${#failed[@]} -eq 0 ]; then
  echo "hvar test: ${#passed[@]}/$total suites passed in $((SECONDS - start))s"
else
  echo "hvar test: FAILED ${failed[*]} (${#passed[@]}/$total suites passed) in $((SECONDS - start))s"
  exit 1
fi
