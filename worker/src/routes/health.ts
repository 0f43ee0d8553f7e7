import { createRoute, z } from "@hono/zod-openapi";
import { openApiRouter } from "../http/openapi";

/**
 * Liveness and readiness of the edge: readiness checks that each storage binding answers,
 * so a misconfigured deployment is visible before the first customer request.
 */
const liveness = createRoute({
  method: "get",
  path: "/healthz",
  operationId: "getHealth",
  summary: "Liveness: the worker answers",
  tags: ["health"],
  security: [],
  responses: {
    200: { description: "Alive", content: { "application/json": { schema: z.object({ status: z.literal("ok") }) } } },
  },
});

const readinessSchema = z
  .object({
    status: z.enum(["ready", "degraded"]),
    modelVersion: z.string().openapi({ description: "The model this deployment's runners must serve (MODEL_VERSION)" }),
    checks: z.object({ d1: z.boolean(), r2: z.boolean() }),
  })
  .openapi("Readiness", { example: { status: "ready", modelVersion: "hvar@2.8.0-floor", checks: { d1: true, r2: true } } });

const readiness = createRoute({
  method: "get",
  path: "/readyz",
  operationId: "getReadiness",
  summary: "Readiness: D1 and R2 answer",
  tags: ["health"],
  security: [],
  responses: {
    200: { description: "Ready", content: { "application/json": { schema: readinessSchema } } },
    503: { description: "A storage binding does not answer", content: { "application/json": { schema: readinessSchema } } },
  },
});

export const health = openApiRouter()
  .openapi(liveness, (c) => c.json({ status: "ok" as const }, 200))
  .openapi(readiness, async (c) => {
    const checks = {
      d1: await probe(() => c.env.DB.prepare("SELECT 1").first()),
      r2: await probe(() => c.env.RESULTS.head("readyz-probe")),
    };
    const ready = Object.values(checks).every((ok) => ok);
    return c.json({ status: ready ? ("ready" as const) : ("degraded" as const), modelVersion: c.env.MODEL_VERSION, checks }, ready ? 200 : 503);
  });

async function probe(check: () => Promise<unknown>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch {
    return false;
  }
}
