/**
 * The words every part of hvar uses for what it makes: scales, output formats, their content types,
 * the quality of lossy formats, and the type URL of a problem. Defined here once; the worker, the
 * runner, the test runner stub and the published client (packages/client) all import this file.
 *
 * No dependencies and no runtime APIs: the client's published build includes this file as it is.
 */

/** What one model pass gives: x1 (the input cleaned of noise, blur and compression), x2 and x4. */
export const SCALES = [1, 2, 4] as const;
export type Scale = (typeof SCALES)[number];

export const OUTPUT_FORMATS = ["png", "webp", "avif", "jpeg"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The content type of each output format; a format's name is also its file extension (`x2.jpeg`). */
export const CONTENT_TYPES = {
  png: "image/png",
  webp: "image/webp",
  avif: "image/avif",
  jpeg: "image/jpeg",
} as const satisfies Record<OutputFormat, `image/${string}`>;

export const isScale = (value: unknown): value is Scale => SCALES.includes(value as Scale);
export const isOutputFormat = (value: unknown): value is OutputFormat => OUTPUT_FORMATS.includes(value as OutputFormat);

/**
 * The quality of lossy formats (WebP, AVIF, JPEG) when none is asked for, everywhere: API jobs, CDN
 * URLs, the runner's HTTP API and its CLI. 85 is the web's usual choice (Cloudflare Images' default
 * too), and it is what CDN URLs have always been signed with: their normalized options spell it out,
 * so another value would change every unsigned-quality URL's signature and cache key. PNG has none.
 */
export const DEFAULT_QUALITY = 85;
export const MIN_QUALITY = 1;
export const MAX_QUALITY = 100;

/**
 * The runner's output encoding, by number: one more whenever what a format and quality encode to
 * changes (an encoder's settings, the quality scale). The result cache keys on it beside the model
 * version, so the same request after such a change is encoded anew instead of answered for up to
 * RESULT_TTL_DAYS with files of the old encoding. 2: AVIF on JPEG's quality scale.
 * test/gpu-runner/image.test.ts holds it to a fingerprint of gpu-runner/src/image/encode.ts's settings.
 */
export const ENCODING_VERSION = 2;

/**
 * How strongly x1 cleans a photo that is not plainly noisy before it is upscaled (1: fully, as the
 * model was trained; 0: the input as it is). A blind restorer cannot tell a camera's grain from noise:
 * over 300 images x scales x damages, 0.75 is as good as 1 or better on clean photos and JPEGs (up to
 * +0.28 dB at x2, x1 up to +0.78 dB), and within 0.11 dB of it on heavy damage
 * (model/checkpoints/floor-x2/eval/cleanup-sweep.md). A job stored before the setting existed was made
 * at 1 (job.ts).
 */
export const DEFAULT_CLEANUP = 0.75;

/**
 * A JPEG file saved at quality 90 or finer (read from its own quantization table) holds little
 * compression damage: a photo sent so that is not noisy is cleaned less, [quality at or above,
 * strength], finest first. Over the dev and held-out photos at quality 95, 0.25 against
 * DEFAULT_CLEANUP: x2 −0.01 to +0.33 dB, x1 +0.02 to +1.53; at 90, 0.5: x2 −0.02 to +0.18, x1 +0.06 to
 * +0.60 (model/checkpoints/floor-x2/eval/finejpeg.md). Coarser JPEGs want the default.
 */
export const FINE_JPEG_CLEANUP: readonly (readonly [quality: number, cleanup: number])[] = [
  [95, 0.25],
  [90, 0.5],
];

/**
 * The clean-up strength every job gets unless it asks for one, everywhere (API jobs, CDN URLs,
 * Replicate, the runner's HTTP API and its CLI): the runner reads the image's noise and cleans a
 * plainly noisy photo fully (1), one sent as a JPEG of quality 90 or finer by FINE_JPEG_CLEANUP, any
 * other at DEFAULT_CLEANUP (gpu-runner/src/image/noise.ts). Under noise of 10 / 25 levels that is
 * +0.2 / +0.7 dB at x2 over 0.75, and it leaves clean photos and coarser JPEGs as 0.75 does
 * (model/checkpoints/floor-x2/eval/noise-rule-probe.md).
 */
export const AUTO_CLEANUP = "auto";

/** What `auto` does, in the words of every API description. */
export const AUTO_CLEANUP_RULE = `1 for a plainly noisy photo; for one sent as a JPEG, ${FINE_JPEG_CLEANUP.map(([quality, cleanup]) => `${cleanup} from quality ${quality}`).join(", ")}; else ${DEFAULT_CLEANUP}`;

/** Errors are RFC 9457 problem+json, with this content type, from the worker and the runner alike. */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** A problem's `type` names its stable `code`, so the two always agree. */
export const problemType = (code: string) => `https://hvar.dev/problems/${code}`;
