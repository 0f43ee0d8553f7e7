#!/usr/bin/env bash
# The local stack, with no cloud account: the worker under `wrangler dev` (local R2, D1, KV and
# Durable Objects persisted in .wrangler/state, migrations applied), the runner on the CPU with the
# model in gpu-runner/models (or $HVAR_MODELS_DIR), a development API key (.dev.key), the URLs
# printed. Ctrl-C stops everything. The steps are in scripts/stack.ts, which the e2e tests share.
#
# Signals: npm runs this with `sh -c`, and a shell between npm and the stack would swallow what npm
# forwards (SIGINT, SIGTERM): so package.json says `exec bash scripts/start.sh`, and this execs node.
# npm, then, is the stack's parent: stack.ts stops everything on SIGINT, SIGTERM or SIGHUP, and when
# npm itself dies (SIGHUP or SIGKILL to it, which npm does not forward). test/e2e/npm-start.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
# HVAR_NO_SETUP=1 skips the install check: test/e2e/npm-start.test.ts runs beside the e2e stack, under
# which a reinstall of node_modules (package.json edited since the last setup) would pull the files.
[ -n "${HVAR_NO_SETUP:-}" ] || bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
exec node --import tsx scripts/stack.ts
