/**
 * @hvar/contract: what the worker, the GPU runner and the worker's test runner stub agree on, in one
 * place (gpu-runner/API.md describes it in words).
 *
 * - vocabulary.ts: scales, output formats and content types, the default quality and clean-up, the problem type
 * - keys.ts: where inputs, outputs (each job's under its own prefix) and job records live in storage
 * - signing.ts: the string the worker signs and the runner verifies
 * - job.ts: the job request (query or queue message), the runner's Job with its progress, and how a
 *   canceled job ends (the cancel path, JOB_CANCELED), as zod schemas and paths
 * - limits.ts: how large an image hvar processes (both sides' settings default to it), and what a
 *   runner says it accepts (`GET /v1/model`)
 * - errors.ts: DomainError, the one error type of both services (a stable code and a kind)
 * - problem.ts: the problem+json body, and the one mapping from an error's kind to its status
 * - replicate.ts: the input and output of a prediction of the hvar model on Replicate (infra/replicate)
 */
export * from "./vocabulary.ts";
export * from "./keys.ts";
export * from "./signing.ts";
export * from "./job.ts";
export * from "./limits.ts";
export * from "./errors.ts";
export * from "./problem.ts";
export * from "./replicate.ts";
