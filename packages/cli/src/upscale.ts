import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { HvarClient, Upscale } from "../../client/src/index.js";
import { type UpscaleArgs, UsageError } from "./args.js";
import { isUrlInput, outputName } from "./naming.js";
import { Progress, type TextOut } from "./progress.js";

/** A local failure after the API answered: an output that could not be downloaded or written (exit 3). */
export class OutputError extends Error {
  override readonly name = "OutputError";
  constructor(
    readonly code: "download_failed" | "write_failed",
    message: string,
    readonly jobId: string,
  ) {
    super(message);
  }
}

export interface Upscaled {
  input: string;
  /** The files written, in the job's order of scales. */
  files: string[];
  job: Upscale;
}

/**
 * Every input can be read (files) or parsed (URLs) and the output folder can be made, before any
 * upload: a mistyped name costs nothing and nothing is half done.
 */
export async function checkUpscaleInputs(args: UpscaleArgs): Promise<void> {
  for (const input of args.inputs) {
    if (isUrlInput(input)) {
      if (!URL.canParse(input)) throw new UsageError(`${input}: not a URL`);
      continue;
    }
    const found = await stat(input).catch(() => undefined);
    if (found === undefined) throw new UsageError(`${input}: no such file`);
    if (!found.isFile()) throw new UsageError(`${input}: not a file`);
  }
  try {
    await mkdir(args.out, { recursive: true });
  } catch (error) {
    throw new UsageError(`cannot create the output folder ${args.out}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Upscales one input (a file's bytes, or a URL the worker fetches), showing its progress on `progress`
 * until it ends, then downloads every output into `args.out` as `<input-stem>.x<scale>.<ext>`.
 */
export async function upscaleOne(
  hvar: HvarClient,
  input: string,
  args: UpscaleArgs,
  context: { progress: TextOut; fetch: typeof fetch; signal?: AbortSignal; onJob?: (job: Upscale) => void },
): Promise<Upscaled> {
  const progress = new Progress(context.progress, input);
  const image = isUrlInput(input) ? { url: input } : await readFile(input);
  let job: Upscale;
  try {
    job = await hvar.upscale(image, {
      ...(args.scales ? { scales: args.scales } : {}),
      ...(args.format ? { format: args.format } : {}),
      ...(args.quality === undefined ? {} : { quality: args.quality }),
      ...(args.temperature === undefined ? {} : { temperature: args.temperature }),
      ...(args.cleanup === undefined ? {} : { cleanup: args.cleanup }),
      timeoutMs: args.timeoutS * 1000,
      ...(context.signal ? { signal: context.signal } : {}),
      onStatus: (j) => {
        context.onJob?.(j);
        progress.status(j.status === "succeeded" ? "done, downloading" : j.status);
      },
      onProgress: (p) => progress.tiles(p.tilesDone, p.tilesTotal),
    });
  } finally {
    progress.clear();
  }

  const files: string[] = [];
  for (const output of job.outputs ?? []) {
    const path = join(args.out, outputName(input, output.scale, output.contentType));
    // Signed URLs: the key is not sent with them (and need not be: the signature is the permission).
    const response = await context.fetch(new URL(output.url, `${hvar.baseUrl}/`), context.signal ? { signal: context.signal } : {}).catch((error: unknown) => {
      throw new OutputError("download_failed", `x${output.scale}: ${messageOf(error)}`, job.id);
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new OutputError("download_failed", `x${output.scale}: HTTP ${response.status} from its signed URL`, job.id);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    await writeFile(path, bytes).catch((error: unknown) => {
      throw new OutputError("write_failed", `${path}: ${messageOf(error)}`, job.id);
    });
    files.push(path);
  }
  return { input, files, job };
}

/** The line `hvar upscale` prints per image: `photo.jpg -> out/photo.x2.png (512x340), ...`. */
export function renderUpscaled({ input, files, job }: Upscaled): string {
  const sizes = (job.outputs ?? []).map((output, i) => `${files[i]} (${output.width}x${output.height})`);
  return `${input} -> ${sizes.join(", ")}\n`;
}

export const messageOf = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error);
  // fetch's "fetch failed" says why only in its cause (ECONNREFUSED, ENOTFOUND, ...).
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
};
