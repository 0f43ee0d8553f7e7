#!/usr/bin/env bash
# Installs whatever is missing, and nothing that is already there: npm packages and the Python
# virtual environment of model/, and with --browser (npm test) Debian's chromium for the browser
# test. Safe to run any number of times; npm test and npm start call it.
set -euo pipefail
cd "$(dirname "$0")/.."

# onnxruntime-node would fetch CUDA libraries from the internet; locally the bundled CPU build is
# all we need. The production container sets cuda12 (infra/runner.Dockerfile).
export ONNXRUNTIME_NODE_INSTALL=skip

stamp() { sha256sum "$@" | sha256sum | cut -c1-16; }

npm_stamp=$(stamp package.json package-lock.json worker/package.json gpu-runner/package.json packages/contract/package.json packages/client/package.json packages/cli/package.json)
if [ "$(cat node_modules/.hvar-stamp 2>/dev/null)" != "$npm_stamp" ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_stamp" > node_modules/.hvar-stamp
fi

py_stamp=$(stamp model/pyproject.toml)
if [ "$(cat model/.venv/.hvar-stamp 2>/dev/null)" != "$py_stamp" ]; then
  python=${PYTHON:-python3}
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "setup: Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
  echo "setup: installing model/.venv from the local package mirror"
  model/.venv/bin/python -c '' 2>/dev/null || { rm -rf model/.venv && "$python" -m venv model/.venv; }
  # --retries 0: an unreachable default index fails at once instead of after minutes of backoff;
  # the packages come from the mirror that pip is configured with.
  model/.venv/bin/pip install --retries 0 --timeout 10 -e 'model[dev]' > model/.venv/install.log 2>&1 ||
    { tail -n 30 model/.venv/install.log >&2; echo "setup: pip install failed (model/.venv/install.log)" >&2; exit 1; }
  echo "$py_stamp" > model/.venv/.hvar-stamp
fi

# The demo page's browser test drives Debian's chromium through playwright-core; Playwright never
# downloads a browser. CI starts from a clean machine, so the test setup installs it (as root, or
# with passwordless sudo); HVAR_CHROMIUM names another binary instead.
if [ "${1:-}" = "--browser" ] && [ -z "${HVAR_CHROMIUM:-}" ] &&
  ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "setup: installing chromium (apt-get) for the browser test"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
    > /tmp/hvar-apt-chromium.log 2>&1 ||
    { tail -n 20 /tmp/hvar-apt-chromium.log >&2; echo "setup: could not install chromium: run apt-get install chromium as root, or set HVAR_CHROMIUM" >&2; exit 1; }
fi
