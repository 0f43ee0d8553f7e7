/**
 * `wrangler dev` for the benchmarks, started through wrangler's own API (`unstable_startWorker`, what the
 * CLI calls) so that the DevTools inspector can be left out: the CLI always attaches one, and it carries
 * every `console.log` of the worker to wrangler, which costs the isolate more than a bare route (README.md).
 * Production has no inspector, so the timing runs leave it out; `--inspector-port` attaches it (profile.ts
 * needs it). Run as its own process, as the CLI is, so that wrangler does not share the load generator's
 * event loop:
 *
 *   tsx bench/worker/dev-server.ts --config wrangler.toml --port 8787 [--inspector-port 9229]
 *     [--persist-to DIR] [--env-file FILE] [--var NAME:value ...]
 *
 * It prints `ready <url>` once the worker answers, and stops the worker on SIGTERM.
 */
import { parseArgs } from "node:util";
import { unstable_startWorker } from "wrangler";

const { values } = parseArgs({
  options: {
    config: { type: "string", default: "wrangler.toml" },
    port: { type: "string" },
    "inspector-port": { type: "string" },
    "persist-to": { type: "string" },
    "env-file": { type: "string" },
    var: { type: "string", multiple: true, default: [] },
  },
});
const port = Number(values.port);
const inspectorPort = values["inspector-port"] === undefined ? undefined : Number(values["inspector-port"]);
for (const [flag, value] of [["--port", port], ["--inspector-port", inspectorPort ?? 1]] as const) {
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`${flag} takes a TCP port (1-65535)`);
}

const vars = Object.fromEntries(
  values.var.map((pair) => {
    const at = pair.indexOf(":");
    if (at < 1) throw new Error(`--var takes NAME:value, not ${pair}`);
    return [pair.slice(0, at), { type: "plain_text" as const, value: pair.slice(at + 1) }];
  }),
);

const worker = await unstable_startWorker({
  config: values.config,
  envFiles: values["env-file"] ? [values["env-file"]] : undefined,
  bindings: vars,
  dev: {
    server: { hostname: "127.0.0.1", port },
    inspector: inspectorPort === undefined ? false : { hostname: "127.0.0.1", port: inspectorPort },
    persist: values["persist-to"] ?? false,
    logLevel: "error",
    watch: false,
    // The worker's log lines are dropped here, as the CLI's output is by the benchmarks.
    structuredLogsHandler: () => {},
  },
});
// Before `ready`: a benchmark that gives up while the worker starts must not leave workerd behind.
process.once("SIGTERM", () => void worker.dispose().finally(() => process.exit(0)));
await worker.ready;
console.log(`ready ${(await worker.url).toString()}`);
