#!/usr/bin/env bash
# The local stack, with no cloud account: the worker under `wrangler dev` (local R2, D1, KV and
# Durable Objects persisted in .wrangler/state) and the runner on the CPU. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false

WORKER_PORT=${HVAR_WORKER_PORT:-8787}
RUNNER_PORT=${HVAR_RUNNER_PORT:-8788}
STATE=.wrangler/state

if [ ! -f .dev.vars ]; then
  # Fresh random secrets for this checkout only; .dev.vars is git-ignored.
  node -e '
    const r = (n) => require("node:crypto").randomBytes(n).toString("base64url");
    console.log(`ADMIN_SECRET=${r(24)}`);
    console.log(`RESULT_SIGNING_KEYS={"dev1":"${r(32)}"}`);
    console.log(`RUNNER_HMAC_SECRET=${r(32)}`);' > .dev.vars
  echo "start: wrote .dev.vars with fresh local secrets"
fi

wrangler d1 migrations apply DB --local --persist-to "$STATE" >/dev/null

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "start: stopping"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

HVAR_RUNNER_PORT=$RUNNER_PORT tsx gpu-runner/src/main.ts &
pids+=($!)
wrangler dev --ip 127.0.0.1 --port "$WORKER_PORT" --persist-to "$STATE" \
  --var "RUNNER_URLS:http://127.0.0.1:$RUNNER_PORT" --show-interactive-dev-session=false &
pids+=($!)

wait_for() {  # name url
  for _ in $(seq 1 120); do
    curl -fs "$2" >/dev/null 2>&1 && return 0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "start: a process exited early" >&2; exit 1; }; done
    sleep 0.5
  done
  echo "start: $1 did not become healthy at $2" >&2; exit 1
}
wait_for worker "http://127.0.0.1:$WORKER_PORT/healthz"
wait_for runner "http://127.0.0.1:$RUNNER_PORT/healthz"

cat <<MSG

  hvar is running
    worker (public API)  http://127.0.0.1:$WORKER_PORT
    runner               http://127.0.0.1:$RUNNER_PORT   (readiness: /readyz)
  Ctrl-C stops both.

MSG
wait -n "${pids[@]}"
