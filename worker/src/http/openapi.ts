import { DomainError } from "@hvar/contract";
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { PROBLEM_CONTENT_TYPE, problemSchema as contractProblem } from "@hvar/contract";
import type { AppEnv } from "../env";

/** Problem+json as documented in the OpenAPI spec (packages/contract's shape, that `problemResponse` writes). */
export const problemSchema = contractProblem.openapi("Problem", {
  example: { type: "https://hvar.dev/problems/quota_exceeded", status: 429, code: "quota_exceeded", title: "The monthly quota of this key is used up", detail: "This image needs 0.5 MP; 0.2 MP remain this month." },
});

export const problemContent = { [PROBLEM_CONTENT_TYPE]: { schema: problemSchema } };

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
        throw new DomainError({
          kind: "invalid_input",
          code: "invalid_request",
          title: "The request is invalid",
          detail: z.prettifyError(result.error),
        });
      }
    },
  });
}
