# syntax=docker/dockerfile:1.7
# hvar GPU runner: Node 22 + onnxruntime-node with its CUDA 12 execution provider, on CUDA 12 + cuDNN 9.
# Build from the repository root (the context must be the root: the runner is an npm workspace):
#   docker build -f infra/runner.Dockerfile -t hvar-runner .
# Run (needs the NVIDIA container toolkit):
#   docker run --gpus all -p 8788:8788 -e RUNNER_HMAC_SECRET=... -e HVAR_STORAGE=s3 ... hvar-runner
# Settings are environment variables, all listed in gpu-runner/src/config.ts and infra/README.md.

ARG NODE_IMAGE=node:22-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ── deps: production node_modules, with the CUDA provider files fetched by onnxruntime-node ──────
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY gpu-runner/package.json gpu-runner/
COPY worker/package.json worker/
COPY packages/contract/package.json packages/contract/
# package.json's allowScripts refuses onnxruntime-node's install script everywhere, so the CUDA files
# are fetched by running that script explicitly, here and only here (the build, never at run time).
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
RUN --mount=type=cache,target=/root/.npm \
    npm ci --workspace gpu-runner --include-workspace-root=false --omit=dev --no-audit --no-fund \
    && node node_modules/onnxruntime-node/script/install.js --onnxruntime-node-install=cuda12 \
    && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so

# ── runtime ───────────────────────────────────────────────────────────────────────────────────────
FROM ${CUDA_IMAGE}
# Node 22 from the official image: Ubuntu's own nodejs is too old for the runner.
COPY --from=deps /usr/local/bin/node /usr/local/bin/node
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 hvar && useradd --system --uid 10001 --gid hvar --home-dir /app hvar \
    && mkdir -p /data && chown hvar:hvar /data
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY package.json tsconfig.json ./
COPY gpu-runner/package.json gpu-runner/tsconfig.json gpu-runner/
COPY gpu-runner/src gpu-runner/src
# The worker-runner contract (packages/contract), linked from node_modules/@hvar/contract.
COPY packages/contract/package.json packages/contract/
COPY packages/contract/src packages/contract/src
COPY gpu-runner/bin gpu-runner/bin
# The shipped models (gpu-runner/models/<id>/{model.onnx,manifest.json}); their sha256 is checked at start.
COPY gpu-runner/models gpu-runner/models

ENV NODE_ENV=production \
    HVAR_RUNNER_HOST=0.0.0.0 \
    HVAR_RUNNER_PORT=8788 \
    HVAR_METRICS_PORT=9464 \
    HVAR_DEVICE=cuda \
    HVAR_STORAGE_DIR=/data \
    HVAR_GRAPH_CACHE_DIR=/tmp/hvar-graphs
# 8788: the API (health, signed job routes); 9464: /metrics for the scraper, not for the Service.
EXPOSE 8788 9464
USER 10001:10001
# Liveness only: /readyz (model loaded, not draining) is for the load balancer, not for restarts.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:8788/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node runs the TypeScript through tsx's loader in-process (no npx, no wrapper process), so SIGTERM
# reaches the runner itself and it drains its jobs before exiting. uv-threads.cjs sizes libuv's thread
# pool, where sharp encodes, from HVAR_CPUS (the pod's CPU request) before Node starts the pool.
STOPSIGNAL SIGTERM
CMD ["node", "--require", "./gpu-runner/bin/uv-threads.cjs", "--import", "tsx", "gpu-runner/src/main.ts"]
