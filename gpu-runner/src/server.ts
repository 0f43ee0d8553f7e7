import { Hono } from "hono";
import type { Discovery } from "./model/manifest";

/** The runner's HTTP API. Job routes join here as the runner grows; health comes first. */
export function createApp(discovery: Discovery) {
  return new Hono()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", (c) => {
      const models = discovery.models.map((m) => ({ id: m.manifest.id, version: m.manifest.version }));
      const ready = models.length > 0;
      return c.json({ status: ready ? "ready" : "no_model", models, rejected: discovery.rejected }, ready ? 200 : 503);
    });
}
