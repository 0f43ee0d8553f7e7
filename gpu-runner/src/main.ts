import { serve } from "@hono/node-server";
import { pino } from "pino";
import { loadConfig } from "./config";
import { discoverModels } from "./model/manifest";
import { createApp } from "./server";

const config = loadConfig();
const log = pino({ level: config.HVAR_LOG_LEVEL, base: { service: "gpu-runner" } });

const discovery = await discoverModels(config.HVAR_MODELS_DIR);
for (const { dir, reason } of discovery.rejected) log.warn({ dir, reason }, "model rejected");
log.info({ models: discovery.models.map((m) => m.manifest.id), dir: config.HVAR_MODELS_DIR }, "models discovered");

const server = serve({ fetch: createApp(discovery).fetch, hostname: config.HVAR_RUNNER_HOST, port: config.HVAR_RUNNER_PORT }, (info) =>
  log.info({ address: info.address, port: info.port }, "runner listening"),
);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log.info({ signal }, "shutting down");
    server.close(() => process.exit(0));
  });
}
