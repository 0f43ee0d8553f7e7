import { AUTO_CLEANUP, AUTO_CLEANUP_RULE, scaleSchema } from "@hvar/contract";
import { createRoute, z } from "@hono/zod-openapi";
import { apiKeyAuth } from "../auth/middleware";
import { configOf } from "../config";
import { dispatcherFor, edgeLimits } from "../dispatch";
import { openApiRouter, problemResponses } from "../http/openapi";
import { rateLimit } from "../meter/middleware";
import { servedCleanup } from "../validate/options";

/**
 * What this deployment serves, so that a client (the demo among them) can offer only what changes the
 * pictures: the model's version, its scales, the limits an upload is checked against, whether a
 * temperature draws generated detail or the model is deterministic, and whether the strength of its
 * clean-up can be chosen.
 */
const modelSchema = z
  .object({
    version: z.string().openapi({ description: "The model the runners serve (id@version)" }),
    scales: z.array(scaleSchema),
    limits: z.object({
      maxInputPixels: z.number().int().openapi({ description: "Input pixels at x1; at scale s also at most maxOutputPixels / s²" }),
      maxOutputPixels: z.number().int(),
      maxUploadBytes: z.number().int(),
    }),
    detail: z.object({
      sampling: z.boolean().openapi({
        description:
          "Whether the model draws generated detail, so that `temperature` changes the pixels. False: the model is the restoration stage alone, deterministic, and every temperature gives the greedy result",
      }),
    }),
    cleanup: z.object({
      adjustable: z.boolean().openapi({
        description:
          "Whether `cleanup` changes the pixels: how strongly x1 cleans the input before it is upscaled. False: the model always cleans fully",
      }),
      default: z.union([z.number(), z.literal(AUTO_CLEANUP)]).openapi({
        description: `The strength a job without \`cleanup\` gets: \`${AUTO_CLEANUP}\` (${AUTO_CLEANUP_RULE}), or 1 where it is not adjustable`,
      }),
    }),
  })
  .openapi("ServedModel", {
    example: {
      version: "hvar@2.8.0-floor",
      scales: [1, 2, 4],
      limits: { maxInputPixels: 4_194_304, maxOutputPixels: 67_108_864, maxUploadBytes: 26_214_400 },
      detail: { sampling: false },
      cleanup: { adjustable: true, default: AUTO_CLEANUP },
    },
  });

const route = createRoute({
  method: "get",
  path: "/v1/model",
  operationId: "getModel",
  summary: "The model this deployment serves: version, scales, upload limits, and what its detail and clean-up settings change",
  tags: ["model"],
  security: [{ apiKey: [] }],
  responses: {
    200: { description: "The served model, as its runners describe it", content: { "application/json": { schema: modelSchema } } },
    ...problemResponses(401, 403, 429),
  },
});

export const model = openApiRouter();
model.use("/v1/model", apiKeyAuth({ scope: "upscale" }), rateLimit());
model.openapi(route, async (c) => {
  const config = configOf(c.env);
  const limits = await edgeLimits(config, dispatcherFor(c.env, config));
  return c.json(
    {
      version: config.MODEL_VERSION,
      scales: [...limits.scales],
      limits: { maxInputPixels: limits.maxInputPixels, maxOutputPixels: limits.maxOutputPixels, maxUploadBytes: limits.maxBytes },
      detail: { sampling: limits.sampling },
      cleanup: { adjustable: limits.cleanup, default: servedCleanup(AUTO_CLEANUP, limits.cleanup) },
    },
    200,
  );
});
