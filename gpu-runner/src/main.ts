import { serve } from "@hono/node-server";
import { pino } from "pino";
import { hmacSecret, loadConfig } from "./config";
import { assembleRunner } from "./runner";

const config = loadConfig();
const log = pino({ level: config.HVAR_LOG_LEVEL, base: { service: "gpu-runner" } });
const secret = hmacSecret(config);
if (secret === undefined) {
  log.fatal("RUNNER_HMAC_SECRET is not set (and no .dev.vars has it): the runner cannot authenticate the worker");
  process.exit(1);
}

const { app, metricsApp, shutdown, lost } = await assembleRunner(config, secret, log);
// A runner whose model thread is gone can run nothing: exit, as a crash would, to be restarted (its
// jobs' heartbeats stop, and other replicas take them over).
void lost?.then((error) => {
  log.fatal({ reason: error.message }, "the model's thread is gone: exiting");
  process.exit(1);
});
const server = serve({ fetch: app.fetch, hostname: config.HVAR_RUNNER_HOST, port: config.HVAR_RUNNER_PORT }, (info) =>
  log.info({ address: info.address, port: info.port }, "runner listening"),
);
// Metrics on a port of their own: unauthenticated scrapes never share the API's port (or its Service).
const metricsServer = serve({ fetch: metricsApp.fetch, hostname: config.HVAR_RUNNER_HOST, port: config.HVAR_METRICS_PORT }, (info) =>
  log.info({ address: info.address, port: info.port }, "metrics listening"),
);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    // Keep the listener open while draining: status polls and output downloads for the jobs in
    // flight must still be answered; /readyz turns 503 so load balancers stop sending new work.
    log.info({ signal }, "draining: finishing jobs in flight");
    void shutdown().then(
      () => {
        log.info("jobs finished, closing");
        metricsServer.close();
        server.close(() => process.exit(0));
        // Idle keep-alive connections would otherwise hold close() open.
        if ("closeAllConnections" in server) server.closeAllConnections();
      },
      (error: unknown) => {
        log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
