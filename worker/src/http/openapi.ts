import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { ProblemError } from "./problem";

/** Problem+json as documented in the OpenAPI spec (the shape of `problemResponse`). */
export const problemSchema = z
  .object({
    type: z.string(),
    status: z.number().int(),
    code: z.string().openapi({ description: "Stable machine-readable error code" }),
    title: z.string(),
    detail: z.string().optional(),
  })
  .openapi("Problem");

export const problemContent = { "application/problem+json": { schema: problemSchema } };

export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(statuses.map((status) => [status, { description: "Problem", content: problemContent }]));
}

/**
 * Every router is an OpenAPIHono whose zod failures become 400 `invalid_request` problems, so
 * request validation errors look like every other error.
 */
export function openApiRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        throw new ProblemError({
          status: 400,
          code: "invalid_request",
          title: "The request is invalid",
          detail: z.prettifyError(result.error),
        });
      }
    },
  });
}
