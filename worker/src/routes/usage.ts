import { createRoute, z } from "@hono/zod-openapi";
import { apiKeyAuth } from "../auth/middleware";
import { openApiRouter, problemResponses } from "../http/openapi";
import { usageBucketSchema, usageBy } from "../meter/ledger";
import { meterOf } from "../meter/client";
import { rateLimit } from "../meter/middleware";

const DAY_MS = 86_400_000;
const date = z.iso.date().openapi({ example: "2026-11-01" });

const usageSchema = z
  .object({
    keyId: z.string(),
    granularity: z.enum(["day", "month"]),
    from: date,
    to: date.openapi({ description: "Inclusive" }),
    quota: z.object({
      period: z.string().openapi({ example: "2026-11" }),
      monthlyQuotaMp: z.number(),
      settledMp: z.number(),
      reservedMp: z.number().openapi({ description: "Held by jobs still running" }),
    }),
    buckets: z.array(usageBucketSchema),
  })
  .openapi("Usage", {
    example: {
      keyId: "key_abcdefghijklmnopqrst",
      granularity: "day",
      from: "2026-11-01",
      to: "2026-11-30",
      quota: { period: "2026-11", monthlyQuotaMp: 100, settledMp: 1.31, reservedMp: 0 },
      buckets: [{ period: "2026-11-30", billableMp: 1.31, outputMp: 16.4, jobs: 3, cacheHits: 2, runnerMs: 5120 }],
    },
  });

const route = createRoute({
  method: "get",
  path: "/v1/usage",
  operationId: "getUsage",
  summary: "Usage of the calling key by day or month, and its quota this month",
  tags: ["usage"],
  security: [{ apiKey: [] }],
  request: {
    query: z.object({
      granularity: z.enum(["day", "month"]).default("day"),
      from: date.optional().openapi({ description: "Default: the first day of this month" }),
      to: date.optional().openapi({ description: "Inclusive; default: today" }),
    }),
  },
  responses: {
    200: { description: "Usage of the calling key, from the ledger", content: { "application/json": { schema: usageSchema } } },
    ...problemResponses(400, 401, 403),
  },
});

export const usage = openApiRouter();
usage.use("/v1/usage", apiKeyAuth({ scope: "usage" }), rateLimit());
usage.openapi(route, async (c) => {
  const key = c.get("apiKey");
  const query = c.req.valid("query");
  const today = new Date().toISOString().slice(0, 10);
  const from = query.from ?? `${today.slice(0, 7)}-01`;
  const to = query.to ?? today;
  const meter = meterOf(c.env, key.id);
  const [buckets, current] = await Promise.all([
    usageBy(c.env.DB, key.id, query.granularity, Date.parse(from), Date.parse(to) + DAY_MS),
    meter.usage(),
  ]);
  return c.json(
    {
      keyId: key.id,
      granularity: query.granularity,
      from,
      to,
      quota: { period: current.period, monthlyQuotaMp: key.monthlyQuotaMp, settledMp: current.settledMp, reservedMp: current.reservedMp },
      buckets,
    },
    200,
  );
});
