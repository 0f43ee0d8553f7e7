/**
 * The words every part of hvar uses for what it makes: scales, output formats, their content types,
 * the quality of lossy formats, and the type URL of a problem. Defined here once; the worker, the
 * runner, the test runner stub and the published client (packages/client) all import this file.
 *
 * No dependencies and no runtime APIs: the client's published build includes this file as it is.
 */
/** What one model pass gives: x1 (the input cleaned of noise, blur and compression), x2 and x4. */
export const SCALES = [1, 2, 4];
export const OUTPUT_FORMATS = ["png", "webp", "avif", "jpeg"];
/** The content type of each output format; a format's name is also its file extension (`x2.jpeg`). */
export const CONTENT_TYPES = {
    png: "image/png",
    webp: "image/webp",
    avif: "image/avif",
    jpeg: "image/jpeg",
};
export const isScale = (value) => SCALES.includes(value);
export const isOutputFormat = (value) => OUTPUT_FORMATS.includes(value);
/**
 * The quality of lossy formats (WebP, AVIF, JPEG) when none is asked for, everywhere: API jobs, CDN
 * URLs, the runner's HTTP API and its CLI. 85 is the web's usual choice (Cloudflare Images' default
 * too), and it is what CDN URLs have always been signed with: their normalized options spell it out,
 * so another value would change every unsigned-quality URL's signature and cache key. PNG has none.
 */
export const DEFAULT_QUALITY = 85;
export const MIN_QUALITY = 1;
export const MAX_QUALITY = 100;
/** Errors are RFC 9457 problem+json, with this content type, from the worker and the runner alike. */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";
/** A problem's `type` names its stable `code`, so the two always agree. */
export const problemType = (code) => `https://hvar.dev/problems/${code}`;
