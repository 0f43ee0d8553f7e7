// @hono/zod-openapi gives zod schemas `.openapi()`; index.ts loads it first, before the contract builds its schemas.
import "@hono/zod-openapi";
import { jobErrorSchema as contractJobError, modelSchema as contractModel, outputSchema as contractOutput } from "@hvar/contract";

/**
 * The schemas of packages/contract (@hvar/contract) that the worker's OpenAPI document shows, under
 * the names it shows them by. The definitions, their types and the storage keys live in the package;
 * this file only names them, so storage, dispatch and the routes all document the same objects.
 */
export const outputSchema = contractOutput.openapi("RunnerOutput");
export const modelSchema = contractModel.openapi("Model");
export const jobErrorSchema = contractJobError.openapi("JobError");
