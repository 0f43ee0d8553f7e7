import { z } from "zod";
import { JOB_ID, parseResultKey } from "./keys.ts";
import { AUTO_CLEANUP, CONTENT_TYPES, DEFAULT_QUALITY, MAX_QUALITY, MIN_QUALITY, OUTPUT_FORMATS, SCALES, isScale } from "./vocabulary.ts";

/**
 * A job as the worker hands it to a runner and as the runner reports it (gpu-runner/API.md): the
 * query of `POST /v1/jobs` (or the queue message that carries the same options), and the `Job` that
 * `GET /v1/jobs/<id>` answers and `jobs/<id>.json` stores. The runner parses the request with these
 * schemas and the worker parses the answer with them, so neither side can drift from the other.
 *
 * The worker's OpenAPI document names some of them (`Model`, `JobError`, `UpscaleOptions`); it does so
 * with `.openapi(name)` on its side, which keeps this package free of OpenAPI.
 */

const [x1, x2, x4] = SCALES;
export const scaleSchema = z.union([z.literal(x1), z.literal(x2), z.literal(x4)]);
export const outputFormatSchema = z.enum(OUTPUT_FORMATS);
export const jobIdSchema = z.string().regex(JOB_ID, "job ids are 1-128 characters of A-Z a-z 0-9 _ -");
export const jobStatusSchema = z.enum(["queued", "running", "succeeded", "failed"]);

/** `1,2,4` as text (an `x` before a scale is allowed): sorted unique scales; every scale when absent. */
export const scaleListSchema = z
  .string()
  .default(SCALES.join(","))
  .transform((list, ctx) => {
    const scales = list.split(",").map((s) => Number(s.trim().replace(/^x/i, "")));
    if (!scales.every(isScale)) {
      ctx.addIssue({ code: "custom", message: `scales is a comma-separated subset of ${SCALES.join(", ")}` });
      return z.NEVER;
    }
    return [...new Set(scales)].sort((a, b) => a - b);
  });

/** A clean-up strength as text (a query string, a CLI flag) or JSON: a number from 0 to 1, or `auto`. */
export const cleanupSchema = z.union([z.literal(AUTO_CLEANUP), z.coerce.number().min(0).max(1)]);
export type Cleanup = z.infer<typeof cleanupSchema>;

/** The quality of lossy formats as text (a query string, a CLI flag); DEFAULT_QUALITY when absent. */
export const qualitySchema = z.coerce.number().int().min(MIN_QUALITY).max(MAX_QUALITY).default(DEFAULT_QUALITY);

/** What a job makes: its one normalized form, the same in the cache key, the queue message and the query. */
export const jobOptionsSchema = z.object({
  scales: z.array(scaleSchema),
  format: outputFormatSchema,
  /** Null for PNG, where it means nothing. */
  quality: z.number().int().nullable(),
  temperature: z.number(),
  /**
   * How strongly x1 cleans the input before it is upscaled: 1 fully (the model as trained), 0 not at
   * all, or AUTO_CLEANUP, chosen from the image by the runner. Absent (a job stored or queued before
   * the setting): 1, what every job made until then (new jobs default to AUTO_CLEANUP).
   */
  cleanup: z.union([z.number(), z.literal(AUTO_CLEANUP)]).default(1),
});
export type JobOptions = z.infer<typeof jobOptionsSchema>;

/** An image's size in pixels as it decodes, EXIF orientation applied: the size the worker billed and limited. */
export const imageSizeSchema = z.object({ width: z.number().int().positive(), height: z.number().int().positive() });
export type ImageSize = z.infer<typeof imageSizeSchema>;

/** `<width>x<height>` as text (the job query's `size`). */
export const imageSizeTextSchema = z
  .string()
  .regex(/^[1-9]\d{0,5}x[1-9]\d{0,5}$/, "size is <width>x<height>")
  .transform((text): ImageSize => {
    const [width, height] = text.split("x").map(Number) as [number, number];
    return { width, height };
  });

/** The query of `POST /v1/jobs`. */
export const jobQuerySchema = z.object({
  id: jobIdSchema,
  scales: scaleListSchema,
  format: outputFormatSchema.default("png"),
  quality: qualitySchema,
  temperature: z.coerce.number().min(0).max(10).default(0),
  cleanup: cleanupSchema.default(AUTO_CLEANUP),
  /** A storage key to read the image from instead of the body. */
  source: z
    .string()
    .regex(/^[A-Za-z0-9._\-/]{1,512}$/)
    .optional(),
  /** The size the worker billed: a runner refuses an image that decodes to any other (`image_size_mismatch`). */
  size: imageSizeTextSchema.optional(),
});
export type JobQuery = z.infer<typeof jobQuerySchema>;

/** `/v1/jobs?...`: the path and query that submit a job of an image of `size`, as the worker signs and sends it. */
export function createJobPath(id: string, { scales, format, quality, temperature, cleanup }: JobOptions, size: ImageSize): string {
  const query: Record<string, string> = { id, scales: scales.join(","), format, temperature: String(temperature), cleanup: String(cleanup), size: `${size.width}x${size.height}` };
  if (quality !== null) query.quality = String(quality);
  return `/v1/jobs?${Object.entries(query)
    .map(([name, value]) => `${name}=${encodeURIComponent(value)}`)
    .join("&")}`;
}

export const jobPath = (id: string) => `/v1/jobs/${encodeURIComponent(id)}`;
export const outputPath = (id: string, scale: number) => `${jobPath(id)}/outputs/${scale}`;
/** `POST` here (signed like every request) stops a job; the answer is the job as it ended (JOB_CANCELED). */
export const cancelJobPath = (id: string) => `${jobPath(id)}/cancel`;

/** The model a runner serves, from its manifest. */
export const modelSchema = z.object({ id: z.string(), version: z.string() });
export type Model = z.infer<typeof modelSchema>;

/**
 * `<id>@<version>`: the worker's MODEL_VERSION names the model its runners must serve this way, and
 * it is part of every cache key. A runner that reports another model is not used (the worker's dispatch).
 */
export const modelName = ({ id, version }: Model) => `${id}@${version}`;

export const jobErrorSchema = z.object({ code: z.string(), title: z.string() });
export type JobError = z.infer<typeof jobErrorSchema>;

/**
 * How a job the worker canceled ends on its runner: `failed` with this error, stored like any ended
 * job. A runner has no status of its own for it; the worker shows such a job as `canceled`.
 */
export const JOB_CANCELED = { code: "job_canceled", title: "The job was canceled." } as const satisfies JobError;

/** Whether a runner's job ended because it was canceled (`POST /v1/jobs/<id>/cancel`). */
export const isCanceled = (job: { status: string; error?: JobError | undefined }) => job.status === "failed" && job.error?.code === JOB_CANCELED.code;

/** Tiles of the image through the model so far, of all the job's tiles. */
export const progressSchema = z.object({ tilesDone: z.number().int().nonnegative(), tilesTotal: z.number().int().nonnegative() });
export type Progress = z.infer<typeof progressSchema>;

/** One stored output; its key is always `results/<job>/x<scale>.<format>` (keys.ts), of its own scale and type. */
export const outputSchema = z
  .object({
    scale: scaleSchema,
    key: z.string().refine((key) => parseResultKey(key) !== null, "not a result key (results/<job>/x<scale>.<format>)"),
    contentType: z.string(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    bytes: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .refine((output) => {
    const key = parseResultKey(output.key);
    return key?.scale === output.scale && CONTENT_TYPES[key.format] === output.contentType;
  }, "an output's key names another scale or format");
export type Output = z.infer<typeof outputSchema>;

/** A runner's job: `outputs` once it succeeded (stored before it says so), `error` once it failed (JOB_CANCELED once canceled). */
export const runnerJobSchema = z.object({
  id: jobIdSchema,
  status: jobStatusSchema,
  model: modelSchema,
  input: z.object({ width: z.number().int(), height: z.number().int() }),
  /** The clean-up strength the model applies: the job's own, or the one `auto` chose for this image. */
  cleanup: z.number().optional(),
  progress: progressSchema,
  outputs: z.array(outputSchema).optional(),
  runnerMs: z.number().int().nonnegative().optional(),
  error: jobErrorSchema.optional(),
});
export type RunnerJob = z.infer<typeof runnerJobSchema>;

/**
 * A job for runners that pull (the worker's queue backend). Messages are small (a queue's limit is
 * 128 KB), so the image waits in storage at `inputs/<job>` and the message points at it.
 */
export const queueMessageSchema = z.object({
  v: z.literal(1),
  id: jobIdSchema,
  /** `width` x `height`: the size the worker billed; a consumer refuses an image that decodes to another. */
  input: z.object({ key: z.string(), contentType: z.string(), bytes: z.number().int(), sha256: z.string(), ...imageSizeSchema.shape }),
  ...jobOptionsSchema.shape,
  /** The X-Request-Id of the request that created the job: a consumer logs the job under it, as a runner does over HTTP. */
  requestId: z.string().nullable().optional(),
});
export type QueueMessage = z.infer<typeof queueMessageSchema>;
