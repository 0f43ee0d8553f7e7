import { z } from "zod";
import { AUTO_CLEANUP, AUTO_CLEANUP_RULE, DEFAULT_QUALITY, MAX_QUALITY, MIN_QUALITY, OUTPUT_FORMATS, SCALES } from "./vocabulary.ts";

/**
 * The hvar model on Replicate (infra/replicate/predict.py, packaged with Cog): the `input` of a
 * prediction the worker creates and the `output` of one that succeeded. The worker builds its input and
 * parses the output with these schemas. infra/replicate/schema.json is the same contract in the shape Cog
 * gives a predictor's OpenAPI `Input` and `Output` (test/contract/replicate.test.ts keeps it equal to
 * these), and the predictor's own test reads the schema Cog would make of predict.py against that file,
 * so the worker, the JSON and the predictor cannot drift apart.
 *
 * Input order is Cog's `x-order`: the order of predict()'s parameters.
 */

/** `2,4`: the scales to make, as the runner's query takes them. */
export const REPLICATE_SCALES_PATTERN = `^[${SCALES.join("")}](,[${SCALES.join("")}])*$`;

/** `640x480`, the job query's `size` (imageSizeTextSchema), or empty for none: Cog's optional strings are empty, not absent. */
export const REPLICATE_SIZE_PATTERN = "^([1-9][0-9]{0,5}x[1-9][0-9]{0,5})?$";

/** `auto`, or a strength from 0 to 1 (`0.5`, `1`), as the job query's `cleanup` takes it: Cog has no union of string and number. */
export const REPLICATE_CLEANUP_PATTERN = "^(auto|0(\\.[0-9]{1,3})?|1(\\.0{1,3})?)$";

export const replicateInputSchema = z.object({
  image: z.string().meta({ format: "uri" }).describe("The image to upscale: a URL or a data URI (PNG, JPEG, WebP, AVIF, GIF)."),
  scales: z
    .string()
    .regex(new RegExp(REPLICATE_SCALES_PATTERN))
    .default(SCALES.join(","))
    .describe(`Comma-separated scales to make, of ${SCALES.join(", ")}.`),
  format: z.enum(OUTPUT_FORMATS).default("png").describe("The outputs' format."),
  quality: z.number().int().min(MIN_QUALITY).max(MAX_QUALITY).default(DEFAULT_QUALITY).describe("The quality of lossy formats; ignored for PNG."),
  temperature: z.number().min(0).max(10).default(0).describe(
    "Sampling temperature of the generated detail; 0 is greedy. A deterministic model (the hvar 2.x floor) makes the same pixels at every temperature and runs at 0.",
  ),
  cleanup: z
    .string()
    .regex(new RegExp(REPLICATE_CLEANUP_PATTERN))
    .default(AUTO_CLEANUP)
    .describe(
      `How strongly x1 cleans the input of noise, blur and compression before it is upscaled: 1 fully, 0 not at all (the input's grain kept), or ${AUTO_CLEANUP} (the default): ${AUTO_CLEANUP_RULE}. A model without the setting cleans fully.`,
    ),
  size: z
    .string()
    .regex(new RegExp(REPLICATE_SIZE_PATTERN))
    .default("")
    .describe("The size the image must decode to, <width>x<height> (what the caller billed), else the prediction fails with image_size_mismatch; empty: any."),
});
export type ReplicateInput = z.input<typeof replicateInputSchema>;

/**
 * One output per scale, `x<scale>`: a file Replicate serves by URL, or null for a scale that was not asked
 * for. Cog writes every field of the predictor's Output object, unset ones as null.
 */
export const replicateOutputSchema = z.object(
  Object.fromEntries(SCALES.map((scale) => [`x${scale}`, z.url().nullable().meta({ format: "uri" })])) as Record<`x${(typeof SCALES)[number]}`, z.ZodNullable<z.ZodURL>>,
);
export type ReplicateOutput = z.infer<typeof replicateOutputSchema>;
