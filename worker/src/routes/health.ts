import { Hono } from "hono";
import type { AppEnv } from "../env";

/**
 * Liveness and readiness of the edge: readiness checks that each storage binding answers,
 * so a misconfigured deployment is visible before the first customer request.
 */
export const health = new Hono<AppEnv>()
  .get("/healthz", (c) => c.json({ status: "ok" }))
  .get("/readyz", async (c) => {
    const checks = {
      d1: await probe(() => c.env.DB.prepare("SELECT 1").first()),
      r2: await probe(() => c.env.RESULTS.head("readyz-probe")),
    };
    const ready = Object.values(checks).every((ok) => ok);
    return c.json({ status: ready ? "ready" : "degraded", modelVersion: c.env.MODEL_VERSION, checks }, ready ? 200 : 503);
  });

async function probe(check: () => Promise<unknown>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch {
    return false;
  }
}
