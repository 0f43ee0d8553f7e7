#!/usr/bin/env bash
# The local stack, with no cloud account: the worker under `wrangler dev` (local R2, D1, KV and
# Durable Objects persisted in .wrangler/state, migrations applied), the runner on the CPU with the
# model in gpu-runner/models (or $HVAR_MODELS_DIR), a development API key (.dev.key), the URLs
# printed. Ctrl-C stops everything. The steps are in scripts/stack.ts, which the e2e tests share.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
exec node --import tsx scripts/stack.ts
