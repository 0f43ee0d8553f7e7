import { MAX_INPUT_PIXELS, MAX_OUTPUT_PIXELS } from "@hvar/contract";
import { z } from "zod";
import type { Bindings } from "./env";

/**
 * The worker's settings, parsed from wrangler.toml vars and secrets with zod, so that a bad
 * deployment fails loudly on the first request instead of misbehaving later.
 */
const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Unset and empty are the same for optional secrets (`.dev.vars` may list them blank). */
const optional = z.preprocess((value) => (value === "" ? undefined : value), z.string().min(1).optional());

export const backendSchema = z.enum(["runner-pool", "queue", "replicate"]);

const configSchema = z.object({
  MODEL_VERSION: z.string().min(1),
  RUNNER_URLS: z
    .string()
    .transform((list) => list.split(",").map((url) => url.trim().replace(/\/+$/, "")).filter(Boolean))
    .pipe(z.array(z.url())),
  MAX_UPLOAD_BYTES: int(25 * 1024 * 1024),
  // The edge's own ceilings: packages/contract's limits.ts by default (the largest input of any job,
  // and the largest output: an input for scale s may have this over s² pixels). The runners' own
  // limits (their model manifest, GET /v1/model) narrow them where lower (dispatch/index.ts, edgeLimits).
  MAX_INPUT_PIXELS: int(MAX_INPUT_PIXELS),
  MAX_OUTPUT_PIXELS: int(MAX_OUTPUT_PIXELS),
  RESULT_URL_TTL_S: int(24 * 3600),
  // Retention (jobs/retention.ts): a job's results, and its Idempotency-Key, are kept this many days
  // after its creation; its row (GET answers 410 job_expired) until JOB_ROW_TTL_DAYS, then 404.
  RESULT_TTL_DAYS: int(30),
  JOB_ROW_TTL_DAYS: int(90),
  RUNNER_TIMEOUT_MS: int(10_000),
  JOB_TIMEOUT_S: int(600),
  MAX_WAIT_S: int(60),
  CDN_SOURCE_TIMEOUT_MS: int(10_000),
  CDN_MAX_AGE_S: int(24 * 3600),
  // Exact origins only ("http://127.0.0.1:8790"), so that a typo cannot open a whole host or scheme.
  ALLOW_INSECURE_ORIGINS: z
    .string()
    .default("")
    .transform((list) => list.split(",").map((origin) => origin.trim()).filter(Boolean))
    .pipe(z.array(z.url({ protocol: /^https?$/ }).refine((url) => new URL(url).origin === url, "ALLOW_INSECURE_ORIGINS lists origins such as http://127.0.0.1:8790 (no path, no trailing slash)"))),
  DISPATCH_BACKEND: backendSchema.default("runner-pool"),
  REPLICATE_MODEL_VERSION: optional,
  REPLICATE_API_TOKEN: optional,
  REPLICATE_WEBHOOK_SECRET: optional,
  RUNNER_HMAC_SECRET: z.string().min(1),
  RESULT_SIGNING_KEYS: z
    .string()
    .transform((json, ctx) => {
      try {
        return JSON.parse(json) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "RESULT_SIGNING_KEYS is not JSON" });
        return z.NEVER;
      }
    })
    .pipe(z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, "key ids start with a letter, so JSON keeps their order"), z.string().min(16)))
    .refine((keys) => Object.keys(keys).length > 0, "RESULT_SIGNING_KEYS needs at least one key"),
})
  .refine((config) => config.JOB_ROW_TTL_DAYS >= config.RESULT_TTL_DAYS, "JOB_ROW_TTL_DAYS must be at least RESULT_TTL_DAYS: a job's row outlives its results")
  .refine(
    (config) => config.DISPATCH_BACKEND !== "replicate" || (config.REPLICATE_API_TOKEN && config.REPLICATE_MODEL_VERSION),
    "DISPATCH_BACKEND=replicate needs REPLICATE_API_TOKEN and REPLICATE_MODEL_VERSION",
  );

export type Config = z.infer<typeof configSchema>;

const parsed = new WeakMap<object, Config>();

export function configOf(env: Bindings): Config {
  let config = parsed.get(env);
  if (!config) {
    config = configSchema.parse(env);
    parsed.set(env, config);
  }
  return config;
}
