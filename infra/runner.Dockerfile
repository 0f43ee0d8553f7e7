# GPU runner container: Node 22 with the CUDA 12 build of onnxruntime-node.
# Build from the repository root:  docker build -f infra/runner.Dockerfile -t hvar-runner .
FROM node:22-bookworm-slim AS node

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
# Node 22 from the official image (Ubuntu's own nodejs is too old for the runner).
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && useradd --create-home node

WORKDIR /app
COPY package.json package-lock.json ./
COPY gpu-runner/package.json gpu-runner/
COPY worker/package.json worker/
# Production is the one place where onnxruntime-node fetches its CUDA execution provider.
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
RUN npm ci --workspace gpu-runner --include-workspace-root=false --omit=dev --no-audit --no-fund \
    && node node_modules/onnxruntime-node/script/install --onnxruntime-node-install=cuda12
COPY gpu-runner/ gpu-runner/

ENV HVAR_RUNNER_HOST=0.0.0.0 HVAR_RUNNER_PORT=8788
EXPOSE 8788
USER node
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8788/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["npx", "tsx", "gpu-runner/src/main.ts"]
